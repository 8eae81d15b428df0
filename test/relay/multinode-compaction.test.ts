/**
 * Two relay nodes (in this process, so their merge policy can be tightened) sharing one
 * PostgreSQL schema and one Redis, both merging the same room while devices write through both:
 * the compaction lock lets one merge at a time, each merged row replaces only rows its node had
 * applied, and nothing written is lost.
 */
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { postgresStore } from '../../src/relay/postgres-store.js'
import { redisFanout } from '../../src/relay/redis-fanout.js'
import type { CompactResult, RelayStore } from '../../src/relay/store.js'
import { closeRelays, NodeWebSocket, sleep, startRelay, waitFor } from './helpers.js'
import { dropSchema, POSTGRES_URL, REDIS_URL, uniqueSchema, warnIfNoServices } from '../helpers/services.js'

warnIfNoServices('two relay nodes compacting one room (test/relay/multinode-compaction.test.ts)')

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await closeRelays()
})

/** The store, with every compaction's outcome recorded. */
function recording(store: RelayStore, outcomes: CompactResult['status'][]): RelayStore {
  return {
    ...store,
    compact: async (roomId, through, merged) => {
      const result = await store.compact(roomId, through, merged)
      outcomes.push(result.status)
      return result
    },
  }
}

describe.runIf(POSTGRES_URL !== undefined && REDIS_URL !== undefined)('two nodes compacting one room', () => {
  it('merge concurrently under the advisory lock: every write survives, one merged row remains', async () => {
    const url = POSTGRES_URL!
    const schema = uniqueSchema()
    cleanups.push(() => dropSchema(url, schema))
    const outcomes: Array<CompactResult['status'][]> = [[], []]
    const nodes = await Promise.all(
      [0, 1].map(async (i) =>
        startRelay({
          auth: 'none',
          store: recording(await postgresStore(url, { schema }), outcomes[i]!),
          fanout: redisFanout(REDIS_URL!, { node: `compaction-${i}-${schema}` }),
          persistence: { mergeIntervalMs: 25, mergeEveryUpdates: 8 },
          catchUpIntervalMs: 1_000,
        }),
      ),
    )
    const roomId = `acct.${schema}`
    const clients = nodes.map((node) => {
      const doc = new Y.Doc()
      const provider = new WebsocketProvider(node.url, roomId, doc, { WebSocketPolyfill: NodeWebSocket, disableBc: true })
      cleanups.push(() => provider.destroy())
      return { doc, provider, log: doc.getArray<string>('log') }
    })
    await waitFor(() => clients.every((c) => c.provider.synced), 10_000, 'synced')
    const PER_NODE = 120
    for (let i = 0; i < PER_NODE; i++) {
      clients.forEach((c, n) => c.log.push([`node ${n} entry ${i}`]))
      await sleep(3)
    }
    await waitFor(() => clients.every((c) => c.log.length === 2 * PER_NODE), 20_000, 'both clients hold every entry')
    await sleep(200)
    for (const c of clients) c.provider.destroy()
    // Closing merges the room on both nodes, at the same moment.
    await Promise.all(nodes.map((node) => node.close()))

    const check = await postgresStore(url, { schema })
    cleanups.push(() => check.close())
    const rows = await check.load(roomId)
    const doc = new Y.Doc()
    for (const { data } of rows) Y.applyUpdate(doc, data)
    const entries = new Set(doc.getArray<string>('log').toArray())
    console.log(`compaction outcomes: node 0 ${summary(outcomes[0]!)}, node 1 ${summary(outcomes[1]!)}; ${rows.length} row(s) left`)
    expect(entries.size).toBe(2 * PER_NODE)
    expect(outcomes.every((o) => o.includes('merged'))).toBe(true)
    expect(rows).toHaveLength(1)
  }, 60_000)
})

function summary(statuses: string[]): string {
  const counts = new Map<string, number>()
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1)
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ')
}
