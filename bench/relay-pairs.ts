/**
 * The two subjects of part 1 of bench/relay.ts — plain y-websocket clients and ContextSync E2EE
 * devices, each pair on its own relay — and the two measurements run on them: a burst of writes
 * issued at once, and single writes each awaited until the receiver has it.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { memoryStorage } from '../src/adapters/memory-storage.js'
import { websocketTransport } from '../src/adapters/websocket.js'
import type { Transport } from '../src/adapters/transport.js'
import { insertMemory, memoriesMap } from '../src/crdt/memory.js'
import { createAccount } from '../src/facade/account.js'
import { ContextSync } from '../src/facade/context-sync.js'
import type { Relay } from '../src/relay/index.js'
import { fmt } from './table.js'
import { Waiter, WS, plainItem, sleep, startRelay, text, until } from './relay-common.js'

/** Writes of one burst (BENCH_RELAY_WRITES). */
export const N = Number(process.env.BENCH_RELAY_WRITES ?? 20_000)
/** Measured single writes (BENCH_RELAY_SINGLE). */
export const SINGLE = Number(process.env.BENCH_RELAY_SINGLE ?? 1_000)
/** Warm-up writes before a burst. */
export const WARMUP = 200
/** Warm-up writes before the single-write measurements (JIT and caches reach steady state). */
export const SINGLE_WARMUP = Number(process.env.BENCH_RELAY_SINGLE_WARMUP ?? 200)

/** A writer and a receiver on one relay. */
export interface Pair {
  relay: Relay
  /** Issue one write; not awaited. */
  write(i: number): void
  /** Resolves waits on the receiver's count of arrived memories. */
  waiter: Waiter
  /** Compact the writer's stored log (E2EE); no-op for plain Yjs. */
  compact(): Promise<void>
  /** Disconnect and release the clients (the relay keeps running). */
  closeClients(): Promise<void>
  closeServer(): Promise<void>
}

/** Baseline: two stock y-websocket providers on a relay with `auth: 'none'`. */
export async function plainPair(): Promise<Pair> {
  const server = await startRelay('none')
  const room = `plain${randomBytes(8).toString('hex')}.memories`
  const a = new Y.Doc()
  const b = new Y.Doc()
  const options = { WebSocketPolyfill: WS, disableBc: true, resyncInterval: -1, maxBackoffTime: 500 }
  const pa = new WebsocketProvider(server.relay.url, room, a, options)
  const pb = new WebsocketProvider(server.relay.url, room, b, options)
  await until(() => pa.synced && pb.synced, 10_000, 'plain providers to sync')
  const deviceId = 'd'.repeat(32)
  // Count added keys from the events: Y.Map#size walks the whole map (O(n) per call).
  let count = 0
  const waiter = new Waiter(() => count)
  memoriesMap(b).observe((event) => {
    for (const change of event.changes.keys.values()) if (change.action === 'add') count++
    waiter.notify()
  })
  return {
    relay: server.relay,
    write: (i) => a.transact(() => insertMemory(a, plainItem(i, deviceId))),
    waiter,
    compact: async () => {},
    closeClients: async () => {
      if (a.isDestroyed) return
      pa.destroy()
      pb.destroy()
      a.destroy()
      b.destroy()
    },
    closeServer: () => server.close(),
  }
}

/** Subject: two ContextSync owner devices of one account on a relay with the default auth. */
export async function contextSyncPair(): Promise<Pair> {
  const server = await startRelay(undefined)
  const transports: Transport[] = []
  const transport = () => {
    const t = websocketTransport({ url: server.relay.url, WebSocketPolyfill: WS, maxBackoffTime: 500 })
    transports.push(t)
    return t
  }
  const account = await createAccount()
  const a = await ContextSync.open({ account, device: { kind: 'phone' }, storage: memoryStorage(), transports: [transport()] })
  const b = await ContextSync.open({ account, device: { kind: 'pc' }, storage: memoryStorage(), transports: [transport()] })
  let count = 0
  const waiter = new Waiter(() => count)
  b.memory.on('change', (e) => {
    if (e.type === 'added' && e.origin !== 'local') {
      count++
      waiter.notify()
    }
  })
  return {
    relay: server.relay,
    write: (i) => {
      a.memory.remember({ text: text(i), kind: 'fact', tags: [`t${i % 10}`] }).catch((error: unknown) => waiter.fail(error))
    },
    waiter,
    compact: () => a.replica('personal')!.compactNow(),
    closeClients: async () => {
      // ContextSync.close and Transport.close are idempotent.
      await a.close()
      await b.close()
      for (const t of transports) t.close()
    },
    closeServer: () => server.close(),
  }
}

/**
 * Disconnect the clients and read the relay's stored bytes once every room unloaded: the relay
 * merges a room (one row = its merged, GC'd state) when its last connection leaves.
 */
async function storedAfterClose(pair: Pair): Promise<number> {
  await pair.closeClients()
  await until(() => pair.relay.metrics().connections === 0 && pair.relay.metrics().rooms === 0, 10_000, 'clients to leave the relay')
  return pair.relay.metrics().storedBytes
}

/** What one burst cost on the relay, and the stored bytes after it. */
export interface BurstResult {
  ms: number
  /** Relay bytes in + out during the burst. */
  wireIn: number
  wireOut: number
  messagesIn: number
  messagesOut: number
  stored: number
}

/** One burst of {@link N} writes after {@link WARMUP} warm-up writes, on a fresh pair. */
export async function burst(make: () => Promise<Pair>): Promise<BurstResult> {
  const pair = await make()
  try {
    // Warm-up (same count on both sides; it stays in the stored state of both).
    for (let i = 0; i < WARMUP; i++) pair.write(i)
    await pair.waiter.wait(WARMUP, 30_000, 'warm-up writes')
    await sleep(100)
    const m0 = pair.relay.metrics()
    const windowStart = process.hrtime.bigint() / 1000n
    const start = performance.now()
    for (let i = WARMUP; i < WARMUP + N; i++) pair.write(i)
    await pair.waiter.wait(WARMUP + N, 120_000, 'burst writes')
    const ms = performance.now() - start
    // Monotonic µs, comparable with the timestamps of a --cpu-prof profile.
    if (process.env.BENCH_RELAY_DEBUG) console.log(`  burst window (µs): ${windowStart} ${process.hrtime.bigint() / 1000n}`)
    const m1 = pair.relay.metrics()
    await pair.compact()
    const stored = await storedAfterClose(pair)
    return {
      ms,
      wireIn: m1.bytesIn - m0.bytesIn,
      wireOut: m1.bytesOut - m0.bytesOut,
      messagesIn: m1.messagesIn - m0.messagesIn,
      messagesOut: m1.messagesOut - m0.messagesOut,
      stored,
    }
  } finally {
    await pair.closeClients()
    await pair.closeServer()
  }
}

/** Latencies (ms) of {@link SINGLE} writes one at a time after {@link SINGLE_WARMUP} warm-up, on a fresh pair. */
export async function single(make: () => Promise<Pair>): Promise<number[]> {
  const pair = await make()
  try {
    const latencies: number[] = []
    const total = SINGLE_WARMUP + SINGLE
    let windowStart = 0n
    for (let i = 0; i < total; i++) {
      if (i === SINGLE_WARMUP) windowStart = process.hrtime.bigint() / 1000n
      const start = performance.now()
      pair.write(i)
      await pair.waiter.wait(i + 1, 10_000, `single write ${i}`)
      if (i >= SINGLE_WARMUP) latencies.push(performance.now() - start)
    }
    if (process.env.BENCH_RELAY_DEBUG) {
      console.log(`  single window (µs): ${windowStart} ${process.hrtime.bigint() / 1000n}`)
      const slow = latencies.map((ms, i) => [i + SINGLE_WARMUP, ms] as const).sort((a, b) => b[1] - a[1]).slice(0, 12)
      console.log(`  slowest single writes (write #: ms): ${slow.map(([i, ms]) => `${i}: ${fmt(ms)}`).join(', ')}`)
    }
    return latencies
  } finally {
    await pair.closeClients()
    await pair.closeServer()
  }
}
