/**
 * PostgreSQL connections killed (`pg_terminate_backend`) while a device writes through the relay:
 * every write is retried or refused, never forwarded and then lost — whatever another device
 * received is in PostgreSQL afterwards, and every write arrives in the end.
 */
import { afterEach, describe, expect, it } from 'vitest'
import pg from 'pg'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { postgresStore } from '../../src/relay/postgres-store.js'
import { closeRelays, NodeWebSocket, sleep, startRelay, waitFor } from './helpers.js'
import { dropSchema, POSTGRES_URL, uniqueSchema, warnIfNoPostgres } from '../helpers/services.js'

warnIfNoPostgres('PostgreSQL connections dropped during writes')

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await closeRelays()
})

const WRITES = 150

describe.runIf(POSTGRES_URL !== undefined)('relay on PostgreSQL, connections dropped during writes', () => {
  it.each([
    { attempts: 4, path: 'retried' },
    { attempts: 1, path: 'refused' },
  ] as const)('a write that lost its connection is $path; nothing a device received is missing from PostgreSQL, and every write arrives', async ({ attempts, path }) => {
    const url = POSTGRES_URL!
    const schema = uniqueSchema()
    const application = `contextsync-${schema}`
    let retries = 0
    const store = await postgresStore(url, { schema, attempts, pool: { application_name: application }, onRetry: () => (retries += 1) })
    cleanups.push(() => dropSchema(url, schema))
    const relay = await startRelay({ auth: 'none', store })
    const roomId = 'acct.loss'
    const open = (): { doc: Y.Doc; provider: WebsocketProvider } => {
      const doc = new Y.Doc()
      const provider = new WebsocketProvider(relay.url, roomId, doc, { WebSocketPolyfill: NodeWebSocket, disableBc: true, maxBackoffTime: 200 })
      cleanups.push(() => provider.destroy())
      return { doc, provider }
    }
    const writer = open()
    const reader = open()
    await waitFor(() => writer.provider.synced && reader.provider.synced, 5000, 'both synced')

    // Kill every backend of the relay's pool, over and over, while the writer writes.
    const killer = new pg.Client({ connectionString: url })
    await killer.connect()
    cleanups.push(() => killer.end())
    let kills = 0
    let writing = true
    const killing = (async () => {
      while (writing) {
        const { rowCount } = await killer.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [application])
        kills += rowCount ?? 0
        await sleep(15)
      }
    })()
    const log = writer.doc.getArray<string>('log')
    for (let i = 0; i < WRITES; i++) {
      log.push([`entry-${i}`])
      await sleep(4)
    }
    writing = false
    await killing

    const received = reader.doc.getArray<string>('log')
    await waitFor(() => new Set(received.toArray()).size === WRITES, 20_000, 'every write at the reader')
    // What the reader received is committed: PostgreSQL holds every entry.
    await relay.close()
    const check = await postgresStore(url, { schema })
    const stored = new Y.Doc()
    for (const { data } of await check.load(roomId)) Y.applyUpdate(stored, data)
    await check.close()
    const storedEntries = new Set(stored.getArray<string>('log').toArray())
    console.log(`connection loss: ${kills} backends killed, ${retries} statements retried, ${relay.metrics().rejections[1011] ?? 0} connections closed with 1011; ${storedEntries.size}/${WRITES} entries in PostgreSQL`)
    expect(kills).toBeGreaterThan(0)
    // Writes did hit dead connections: retried on a fresh one, or refused (the room closed with
    // 1011 and its devices sent again what the store lacked).
    if (path === 'retried') expect(retries).toBeGreaterThan(0)
    else expect(relay.metrics().rejections[1011] ?? 0).toBeGreaterThan(0)
    expect(storedEntries.size).toBe(WRITES)
  }, 60_000)
})
