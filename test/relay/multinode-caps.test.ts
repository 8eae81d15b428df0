/**
 * Relay-wide caps over several relay nodes (separate processes on one PostgreSQL and one Redis):
 * the caps that protect the shared store — rooms per account, rooms in total, stored bytes in
 * total — count every node's rooms, so an account (or a crowd of self-minted accounts) spreading
 * its connections over the nodes cannot multiply them by the number of nodes.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { ready } from '../../src/crypto/index.js'
import { makeAccount, NodeWebSocket, sleep, waitFor, type TestAccount } from './helpers.js'
import { POSTGRES_URL, REDIS_URL, warnIfNoServices } from '../helpers/services.js'
import { createDatabase, releaseNodes, startNode, type RelayNode } from '../helpers/relay-nodes.js'

warnIfNoServices('relay-wide caps over relay nodes (test/relay/multinode-caps.test.ts)')

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await releaseNodes()
})

beforeAll(async () => {
  await ready()
})

async function cluster(n: number, args: string[]): Promise<{ nodes: RelayNode[]; db: pg.Client }> {
  const database = await createDatabase(POSTGRES_URL!)
  const first = await startNode(['--store', database, '--redis', REDIS_URL!, ...args])
  const rest = await Promise.all(Array.from({ length: n - 1 }, () => startNode(['--store', database, '--redis', REDIS_URL!, ...args])))
  const db = new pg.Client({ connectionString: database })
  await db.connect()
  cleanups.push(() => db.end())
  return { nodes: [first, ...rest], db }
}

interface Client {
  doc: Y.Doc
  provider: WebsocketProvider
  closes: number[]
}

function stockClient(url: string, who: TestAccount, roomId: string): Client {
  const doc = new Y.Doc()
  // No reconnect storm: a refused client stays refused for the test.
  const provider = new WebsocketProvider(url, roomId, doc, { params: { token: who.token(roomId) }, WebSocketPolyfill: NodeWebSocket, disableBc: true, maxBackoffTime: 60_000 })
  const closes: number[] = []
  provider.on('connection-close', (event: CloseEvent | null) => {
    closes.push(event?.code ?? 0)
    provider.shouldConnect = false
  })
  cleanups.push(() => provider.destroy())
  return { doc, provider, closes }
}

describe.runIf(POSTGRES_URL !== undefined && REDIS_URL !== undefined)('relay-wide caps over three nodes', () => {
  it('an account spreading its rooms over three nodes gets no more rooms with rows than --max-rooms allows', async () => {
    const { nodes, db } = await cluster(3, ['--max-rooms', '2'])
    const alice = makeAccount()
    // Two rooms on each node: each node alone sees two rooms of the account, within its cap.
    const clients = nodes.flatMap((node, n) => [0, 1].map((i) => stockClient(node.url, alice, alice.roomId(`scope-${n}-${i}`))))
    await waitFor(() => clients.every((c) => c.provider.synced), 10_000, 'every client admitted')
    for (const [i, c] of clients.entries()) {
      c.doc.getArray<string>('log').push([`room ${i}`])
      await sleep(100)
    }
    await sleep(500)
    const { rows } = await db.query<{ n: string }>('SELECT count(*) AS n FROM contextsync.rooms WHERE account = $1 AND rows > 0', [alice.account.accountId])
    const refused = clients.filter((c) => c.closes.includes(4414)).length
    console.log(`rooms per account over 3 nodes: ${rows[0]?.n} rooms with rows (cap 2), ${refused} of ${clients.length} connections closed with 4414`)
    expect(Number(rows[0]!.n)).toBe(2)
    expect(refused).toBe(clients.length - 2)
  }, 60_000)

  it('accounts writing through three nodes cannot together pass --max-stored-bytes-total by more than a refresh interval of writes', async () => {
    const TOTAL = 24 * 1024
    const { nodes, db } = await cluster(3, ['--max-stored-bytes-total', '24KiB'])
    // One account per node, each within its own quota; together they would store 72 KiB.
    const clients = nodes.map((node) => {
      const who = makeAccount()
      return stockClient(node.url, who, who.roomId())
    })
    await waitFor(() => clients.every((c) => c.provider.synced), 10_000, 'every client admitted')
    for (let i = 0; i < 12; i++) {
      for (const c of clients) if (c.provider.wsconnected) c.doc.getArray<Uint8Array>('blobs').push([new Uint8Array(2048).fill(i + 1)])
      await sleep(250)
    }
    await sleep(500)
    const { rows } = await db.query<{ bytes: string }>('SELECT COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM contextsync.updates')
    const stored = Number(rows[0]!.bytes)
    const refused = clients.filter((c) => c.closes.includes(4413)).length
    console.log(`stored bytes over 3 nodes: ${stored} stored (cap ${TOTAL}, 72 KiB written), ${refused} of 3 writers closed with 4413`)
    expect(refused).toBeGreaterThan(0)
    // Each node reads the relay-wide figure every second: the others' writes of one second
    // (2 nodes × 4 × 2 KiB) may land past the cap, never a node's whole cap again.
    expect(stored).toBeLessThanOrEqual(TOTAL + 20 * 1024)
  }, 60_000)
})
