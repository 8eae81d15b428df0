/**
 * A write whose commit reached PostgreSQL but whose reply was lost with the connection: the store
 * retries it on a fresh connection, and the retry must not store (or count against the account's
 * quota) the update a second time. The connection is cut by a TCP proxy between the store and
 * PostgreSQL right as the server's reply to the append passes — the one moment a
 * `pg_terminate_backend` from outside cannot be aimed at (after the commit, before the reply), and
 * the one at which a retry meets an append that did commit.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createServer, connect, type Server, type Socket } from 'node:net'
import pg from 'pg'
import { postgresStore } from '../../src/relay/postgres-store.js'
import type { RelayStore } from '../../src/relay/store.js'
import { dropSchema, POSTGRES_URL, uniqueSchema, warnIfNoPostgres } from '../helpers/services.js'

warnIfNoPostgres('a retried append after a lost reply is counted once')

/** A TCP proxy to PostgreSQL that, once armed, cuts the connection carrying the next server reply. */
interface CuttingProxy {
  url: string
  /** Cut the next connection that receives data from the server, instead of passing the data on. */
  armCut(): void
  /** How many connections were cut so far. */
  readonly cuts: number
  close(): Promise<void>
}

async function cuttingProxy(target: string): Promise<CuttingProxy> {
  const upstreamUrl = new URL(target)
  const sockets = new Set<Socket>()
  let armed = false
  let cuts = 0
  const server: Server = createServer((client) => {
    const upstream = connect(Number(upstreamUrl.port), upstreamUrl.hostname)
    sockets.add(client).add(upstream)
    const drop = (): void => {
      client.destroy()
      upstream.destroy()
    }
    client.on('close', () => sockets.delete(client) && upstream.destroy())
    upstream.on('close', () => sockets.delete(upstream) && client.destroy())
    client.on('error', drop)
    upstream.on('error', drop)
    client.on('data', (chunk: Buffer) => upstream.write(chunk))
    upstream.on('data', (chunk: Buffer) => {
      if (armed) {
        armed = false
        cuts += 1
        return drop()
      }
      client.write(chunk)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  const url = new URL(target)
  url.hostname = '127.0.0.1'
  url.port = String(typeof address === 'object' && address ? address.port : 0)
  return {
    url: url.toString(),
    armCut: () => (armed = true),
    get cuts() {
      return cuts
    },
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

describe.runIf(POSTGRES_URL !== undefined)('relay on PostgreSQL, a retried append whose first try committed', () => {
  it('stores the update once and counts its bytes once against the account', async () => {
    const url = POSTGRES_URL!
    const schema = uniqueSchema()
    cleanups.push(() => dropSchema(url, schema))
    // Migrate directly, then write through the proxy.
    await (await postgresStore(url, { schema })).close()
    const proxy = await cuttingProxy(url)
    cleanups.push(() => proxy.close())
    let retries = 0
    const store: RelayStore = await postgresStore(proxy.url, { schema, maxConnections: 1, onRetry: () => (retries += 1) })
    cleanups.push(() => store.close())

    const first = new Uint8Array(1000).fill(1)
    expect(await store.append('acct.retry', first, { growth: 1000, maxAccountSize: 10_000 })).toEqual({ ok: true, seq: 1 })
    // The second append commits, and its reply is lost with the connection.
    proxy.armCut()
    const second = new Uint8Array(500).fill(2)
    const result = await store.append('acct.retry', second, { growth: 500, maxAccountSize: 10_000 })
    expect(proxy.cuts).toBe(1)
    expect(retries).toBe(1)

    const direct = new pg.Client({ connectionString: url })
    await direct.connect()
    cleanups.push(() => direct.end())
    // Counted once against the quota, stored once.
    expect(await store.accountSize('acct')).toBe(1500)
    const { rows } = await direct.query<{ seq: string; bytes: number }>(`SELECT seq, length(data) AS bytes FROM ${schema}.updates WHERE room = 'acct.retry' ORDER BY seq`)
    expect(rows.map((r) => [Number(r.seq), r.bytes])).toEqual([
      [1, 1000],
      [2, 500],
    ])
    expect(result).toEqual({ ok: true, seq: 2 })
    // The next append takes the next seq: the retry used none.
    expect(await store.append('acct.retry', new Uint8Array(10), { growth: 10, maxAccountSize: 10_000 })).toEqual({ ok: true, seq: 3 })
  }, 30_000)
})
