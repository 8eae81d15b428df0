/**
 * Relay benchmark, every figure side by side with its baseline in the same run.
 *
 * Part 1 — E2EE memory writes through the relay vs plain Yjs clients through the same relay code:
 * - baseline: two stock y-websocket `WebsocketProvider`s (with `ws`) on a relay started with
 *   `auth: 'none'`; the writer does one transaction per memory, inserting a Y.Map of the memory
 *   fields (text, scope, kind, tags, createdAt, updatedAt, source — `insertMemory`, the exact shape
 *   the E2EE inner doc holds) into a top-level Y.Map keyed by a random 22-char id;
 * - subject: two `ContextSync` owner devices of one account (memoryStorage, websocketTransport)
 *   on a relay with the default auth (tokens, registry guard); the writer calls
 *   `memory.remember` with the same texts and tags.
 * Devices use the library's default libsodium build — native (sodium-native) on Node;
 * CONTEXTSYNC_CRYPTO=wasm runs them on the WebAssembly build browsers use, and the
 * separate-processes table adds a wasm row either way. A last table times sign, verify and AEAD
 * on both builds side by side (DESIGN's "crypto floor").
 * Both relays run in this process with identical options (SQLite in a temp dir unless
 * BENCH_RELAY_STORAGE=memory; the relay's default merge policy) and the same raised rate limit:
 * the default (200 msg/s, burst 2000 per connection) closes the plain writer's connection with
 * 4429 within the first ~2000 of its 20k one-frame-per-transaction updates (checked).
 * Stored bytes are read after both clients left, when the relay has merged every room into one
 * GC'd row — the same "merged" state a short merge interval would reach, without a 100 ms merge
 * timer re-encoding and rewriting the whole growing room ten times a second during the
 * multi-second plain burst, which would penalise the baseline (BENCH_RELAY_MERGE_MS=100 to see
 * it). With the default policy the relay still merges a room every 500 stored rows, ~14% of the
 * plain burst's CPU profile (`Room.merge` → `Y.encodeStateAsUpdate`).
 * Receivers count arrivals from their own events (plain: added keys of the memories map — not
 * `Y.Map#size`, which walks the whole map; E2EE: `memory.on('change')` 'added' events).
 *
 * Part 2 — relay scaling vs the stock `@y/websocket-server` (no auth, limits or persistence) as
 * baseline. Both servers run in this process; the clients run in a forked child process (raw `ws`
 * sockets speaking the y-protocols sync handshake), so this process's memory and CPU are the
 * server's own (plus a little IPC). Our relay runs with `auth: 'none'` here (token verification is
 * an upgrade-time cost; with tokens each connection also leaves one nonce in the replay cache).
 *
 * Env: BENCH_RELAY_WRITES (20000), BENCH_RELAY_SINGLE (1000), BENCH_RELAY_SINGLE_WARMUP (200), BENCH_RELAY_RUNS (3),
 * BENCH_RELAY_STORAGE (sqlite|memory), BENCH_RELAY_MERGE_MS (relay default 10 000),
 * BENCH_RELAY_SCALING (1; 0 skips part 2), BENCH_RELAY_FANOUT (100000 deliveries per fan-out row),
 * BENCH_RELAY_ROOMS_MSGS (20000 messages per many-rooms row), BENCH_RELAY_ONLY (plain|e2ee|relay|stock, profiling).
 * BENCH_RELAY_DEBUG=1 prints the burst windows in monotonic µs, to cut a `--cpu-prof` profile.
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cpus, loadavg } from 'node:os'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'
import vm from 'node:vm'
import WebSocket, { WebSocketServer } from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { WebsocketProvider } from 'y-websocket'
import { docs as stockDocs, setupWSConnection } from '@y/websocket-server/utils'
import { memoryStorage } from '../src/adapters/memory-storage.js'
import { websocketTransport } from '../src/adapters/websocket.js'
import type { Transport } from '../src/adapters/transport.js'
import { insertMemory, memoriesMap } from '../src/crdt/memory.js'
import { createAccount } from '../src/facade/account.js'
import { ContextSync } from '../src/facade/context-sync.js'
import type { Relay } from '../src/relay/index.js'
import libsodium from 'libsodium-wrappers'
import { randomBytes as cryptoRandomBytes } from '../src/crypto/primitives.js'
import { cryptoBackend, ready, type CryptoBackendChoice, type SodiumBackend } from '../src/crypto/sodium.js'
import { loadNativeBackend } from '../src/crypto/sodium-native.js'
import { wasmBackend } from '../src/crypto/sodium-wasm.js'
import { fmt, median, percentile, printTable } from './table.js'
import { singleWritesAcrossProcesses } from './relay-processes.js'
import { STORAGE, Waiter, WS, plainItem, sleep, startRelay, text, until } from './relay-common.js'

const N = Number(process.env.BENCH_RELAY_WRITES ?? 20_000)
const SINGLE = Number(process.env.BENCH_RELAY_SINGLE ?? 1_000)
const RUNS = Number(process.env.BENCH_RELAY_RUNS ?? 3)
const SCALING = process.env.BENCH_RELAY_SCALING !== '0'
const FANOUT = Number(process.env.BENCH_RELAY_FANOUT ?? 100_000)
const ROOMS_MSGS = Number(process.env.BENCH_RELAY_ROOMS_MSGS ?? 20_000)
const WARMUP = 200
/** Warm-up writes before the single-write measurements (JIT and caches reach steady state). */
const SINGLE_WARMUP = Number(process.env.BENCH_RELAY_SINGLE_WARMUP ?? 200)
// ── part 1: E2EE vs plain Yjs through the relay ──────────────────────────────

const CHILD_ENV = 'CONTEXTSYNC_BENCH_CHILD'

interface Pair {
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

async function plainPair(): Promise<Pair> {
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

async function contextSyncPair(): Promise<Pair> {
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

interface BurstResult {
  ms: number
  /** Relay bytes in + out during the burst. */
  wireIn: number
  wireOut: number
  messagesIn: number
  messagesOut: number
  stored: number
}

async function burst(make: () => Promise<Pair>): Promise<BurstResult> {
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

async function single(make: () => Promise<Pair>): Promise<number[]> {
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

async function benchThroughRelay(): Promise<void> {
  await ready()
  const backend = cryptoBackend()!
  await libsodium.ready
  nativeSodium = (await loadNativeBackend(wasmBackend(libsodium))).backend
  const subjects: Array<[string, () => Promise<Pair>]> = [
    ['plain y-websocket clients (baseline)', plainPair],
    [`ContextSync E2EE devices (${backend} libsodium)`, contextSyncPair],
  ]
  // For profiling one side alone: BENCH_RELAY_ONLY=plain|e2ee (the ratio columns then mean nothing).
  if (process.env.BENCH_RELAY_ONLY === 'plain') subjects.splice(1, 1)
  if (process.env.BENCH_RELAY_ONLY === 'e2ee') subjects.splice(0, 1)
  const bursts = subjects.map(() => [] as BurstResult[])
  // Alternate subjects run by run, so drift (JIT, GC, thermal) hits both alike.
  for (let r = 0; r < RUNS; r++) {
    for (let s = 0; s < subjects.length; s++) bursts[s]!.push(await burst(subjects[s]![1]))
  }
  const singles = subjects.map(() => [] as number[][])
  for (let r = 0; r < RUNS; r++) {
    for (let s = 0; s < subjects.length; s++) singles[s]!.push(await single(subjects[s]![1]))
  }
  const runP = (runs: number[][], p: number) => median(runs.map((lat) => percentile(lat, p)))

  const burstRows: string[][] = []
  const bytesRows: string[][] = []
  const singleRows: string[][] = []
  const base = {
    ms: median(bursts[0]!.map((x) => x.ms)),
    stored: median(bursts[0]!.map((x) => x.stored)),
    wire: median(bursts[0]!.map((x) => x.wireIn + x.wireOut)),
    p50: runP(singles[0]!, 50),
    p99: runP(singles[0]!, 99),
  }
  subjects.forEach(([name], s) => {
    const runs = bursts[s]!
    const ms = median(runs.map((x) => x.ms))
    const stored = median(runs.map((x) => x.stored))
    const wireIn = median(runs.map((x) => x.wireIn))
    const wireOut = median(runs.map((x) => x.wireOut))
    const msgsIn = median(runs.map((x) => x.messagesIn))
    const msgsOut = median(runs.map((x) => x.messagesOut))
    burstRows.push([
      name,
      fmt(N / (ms / 1000), 'w/s'),
      fmt((ms * 1000) / N, 'µs'),
      runs.map((x) => fmt(x.ms, 'ms')).join(' / '),
      fmt(base.ms / ms, '×'),
      s === 0 ? '' : base.ms / ms >= 2 ? 'met' : 'missed',
    ])
    bytesRows.push([
      name,
      fmt(stored / 1024, 'KiB'),
      fmt(stored / base.stored, '×'),
      s === 0 ? '' : stored / base.stored <= 1.1 ? 'met' : 'missed',
      `${fmt(wireIn / 1024, 'KiB')} / ${fmt(wireOut / 1024, 'KiB')}`,
      `${msgsIn} / ${msgsOut}`,
      fmt((wireIn + wireOut) / base.wire, '×'),
    ])
    const singleRuns = singles[s]!
    const p50 = runP(singleRuns, 50)
    const p99 = runP(singleRuns, 99)
    singleRows.push([
      name,
      fmt(median(singleRuns.map((lat) => lat.length / (lat.reduce((a, b) => a + b, 0) / 1000))), 'w/s'),
      fmt(p50, 'ms'),
      singleRuns.map((lat) => fmt(percentile(lat, 50), 'ms')).join(' / '),
      fmt(p99, 'ms'),
      fmt(runP(singleRuns, 100), 'ms'),
      s === 0 ? '—' : `${p50 - base.p50 >= 0 ? '+' : ''}${fmt(p50 - base.p50, 'ms')}`,
      fmt(p50 / base.p50, '×'),
      fmt(p99 / base.p99, '×'),
      s === 0 ? '' : `p50 ${p50 - base.p50 <= 0.5 ? 'met' : 'missed'}, p99 ${p99 / base.p99 <= 2 ? 'met' : 'missed'}`,
    ])
  })
  const storage = STORAGE === 'sqlite' ? 'SQLite' : 'memory'
  printTable(
    `Relay burst: ${N} memory writes issued at once until the receiver has all (after ${WARMUP} warm-up writes), median of ${RUNS} runs — target E2EE ≥ 2× plain`,
    ['subject', 'throughput', 'per write', 'runs', 'speed vs plain', 'target ≥ 2×'],
    burstRows,
  )
  printTable(
    `Relay bytes for that workload (${N + WARMUP} memories; ${storage} relay store, read after the clients left so every room is merged; E2EE: writer's log compacted first, registry room included) — target stored ≤ 1.1× plain; wire = relay bytes in / out during the burst`,
    ['subject', 'stored', 'stored vs plain', 'target ≤ 1.1×', 'wire in / out', 'frames in / out', 'wire vs plain'],
    bytesRows,
  )
  printTable(
    `Relay single writes: ${SINGLE} writes one at a time, each awaited until the receiver has it (after ${SINGLE_WARMUP} warm-up), median of ${RUNS} runs' percentiles — targets p50 ≤ plain + 0.5 ms, p99 ≤ 2× plain`,
    ['subject', 'throughput', 'p50', 'p50 per run', 'p99', 'max', 'p50 − plain', 'p50 vs plain', 'p99 vs plain', 'targets'],
    singleRows,
  )
  // The same single writes with each device in its own process (bench/relay-processes.ts), plus
  // E2EE devices on the WebAssembly libsodium build — what browser and WebView devices run.
  const apartSubjects: Array<[string, 'plain' | 'e2ee', CryptoBackendChoice | undefined]> = subjects.map(([name]) => [
    name,
    subjectKind(name),
    undefined,
  ])
  if (subjects.some(([name]) => subjectKind(name) === 'e2ee') && backend !== 'wasm') {
    apartSubjects.push(['ContextSync E2EE devices (wasm libsodium, as in browsers)', 'e2ee', 'wasm'])
  }
  const apart = apartSubjects.map(() => [] as number[][])
  for (let r = 0; r < RUNS; r++) {
    for (let s = 0; s < apartSubjects.length; s++) {
      const [, kind, crypto] = apartSubjects[s]!
      apart[s]!.push(await singleWritesAcrossProcesses(kind, SINGLE_WARMUP, SINGLE, crypto))
    }
  }
  const apartBase = { p50: runP(apart[0]!, 50), p99: runP(apart[0]!, 99) }
  printTable(
    `Relay single writes, devices in separate processes (writer and receiver forked, relay in the bench process; monotonic-clock latency, IPC not counted), ${SINGLE} writes after ${SINGLE_WARMUP} warm-up, median of ${RUNS} runs' percentiles`,
    ['subject', 'p50', 'p50 per run', 'p99', 'max', 'p50 − plain', 'p50 vs plain', 'p99 vs plain', 'targets'],
    apartSubjects.map(([name], s) => {
      const runs = apart[s]!
      const p50 = runP(runs, 50)
      const p99 = runP(runs, 99)
      return [
        name,
        fmt(p50, 'ms'),
        runs.map((lat) => fmt(percentile(lat, 50), 'ms')).join(' / '),
        fmt(p99, 'ms'),
        fmt(runP(runs, 100), 'ms'),
        s === 0 ? '—' : `${p50 - apartBase.p50 >= 0 ? '+' : ''}${fmt(p50 - apartBase.p50, 'ms')}`,
        fmt(p50 / apartBase.p50, '×'),
        fmt(p99 / apartBase.p99, '×'),
        s === 0 ? '' : `p50 ${p50 - apartBase.p50 <= 0.5 ? 'met' : 'missed'}, p99 ${p99 / apartBase.p99 <= 2 ? 'met' : 'missed'}`,
      ]
    }),
  )
  const ops = cryptoOperationMedians()
  printTable(
    `libsodium builds, one operation on a 300-byte envelope body (median of ${CRYPTO_OP_RUNS} each, same run) — this run's devices used ${backend}`,
    ['operation', 'wasm (baseline)', 'native', 'native speed-up'],
    CRYPTO_OPS.map((op) => [
      op,
      fmt(ops.wasm[op] * 1000, 'µs'),
      ops.native ? fmt(ops.native[op] * 1000, 'µs') : 'did not load',
      ops.native ? fmt(ops.wasm[op] / ops.native[op], '×') : '—',
    ]),
  )
  const floor = (m: Record<CryptoOp, number>) => fmt(m.sign + m.verify, 'ms')
  console.log(
    `Floor inside the single-write p50 gap: one Ed25519 sign + one verify = ${ops.native ? floor(ops.native) : '—'} native, ${floor(ops.wasm)} wasm — every awaited single write is one flush, so one signature.`,
  )
}

function subjectKind(name: string): 'plain' | 'e2ee' {
  return name.startsWith('plain') ? 'plain' : 'e2ee'
}

/** sodium-native when it loads here, for the crypto table (the devices use whatever `ready()` chose). */
let nativeSodium: SodiumBackend | undefined

const CRYPTO_OPS = ['sign', 'verify', 'aead encrypt', 'aead decrypt'] as const
type CryptoOp = (typeof CRYPTO_OPS)[number]
const CRYPTO_OP_RUNS = 2000

/** Median ms of each operation, per libsodium build (`native` undefined when it did not load). */
function cryptoOperationMedians(): { wasm: Record<CryptoOp, number>; native: Record<CryptoOp, number> | undefined } {
  const message = cryptoRandomBytes(300)
  const additionalData = cryptoRandomBytes(40)
  const nonce = cryptoRandomBytes(24)
  const key = cryptoRandomBytes(32)
  const measure = (build: SodiumBackend): Record<CryptoOp, number> => {
    const keys = build.signSeedKeypair(cryptoRandomBytes(32))
    const signature = build.signDetached(message, keys.secretKey)
    const ciphertext = build.aeadEncrypt(message, additionalData, nonce, key)
    const run: Record<CryptoOp, () => unknown> = {
      sign: () => build.signDetached(message, keys.secretKey),
      verify: () => {
        if (!build.verifyDetached(signature, message, keys.publicKey)) throw new Error('bench: signature did not verify')
      },
      'aead encrypt': () => build.aeadEncrypt(message, additionalData, nonce, key),
      'aead decrypt': () => {
        if (!build.aeadDecrypt(ciphertext, additionalData, nonce, key)) throw new Error('bench: ciphertext did not open')
      },
    }
    const out = {} as Record<CryptoOp, number>
    for (const op of CRYPTO_OPS) {
      const times: number[] = []
      for (let i = 0; i < CRYPTO_OP_RUNS; i++) {
        const start = performance.now()
        run[op]()
        times.push(performance.now() - start)
      }
      out[op] = median(times)
    }
    return out
  }
  return { wasm: measure(wasmBackend(libsodium)), native: nativeSodium && measure(nativeSodium) }
}

// ── part 2: relay scaling (clients in a child process) ───────────────────────

type ChildCommand =
  | { type: 'open'; url: string; rooms: string[] }
  | { type: 'fanout'; groups: Array<{ writer: number; readers: number[] }>; k: number }
  | { type: 'close' }

type ChildReply =
  | { type: 'opened'; ms: number; failed: number }
  | { type: 'fanned'; ms: number; delivered: number; expected: number }
  | { type: 'closed' }
  | { type: 'error'; message: string }

/** The forked client process: raw ws sockets doing the y-protocols handshake, then fan-out. */
async function childMain(): Promise<void> {
  const empty = new Y.Doc()
  const frame = (write: (e: encoding.Encoder) => void) => {
    const e = encoding.createEncoder()
    encoding.writeVarUint(e, 0)
    write(e)
    return encoding.toUint8Array(e)
  }
  const step1 = frame((e) => syncProtocol.writeSyncStep1(e, empty))
  const step2 = frame((e) => syncProtocol.writeSyncStep2(e, empty))
  interface Conn {
    ws: WebSocket
    updates: number
    ready: boolean
    reader: boolean
  }
  let conns: Conn[] = []
  let onUpdate: ((conn: Conn) => void) | undefined
  const reply = (m: ChildReply) => process.send!(m)

  const open = async (url: string, rooms: string[]): Promise<void> => {
    const start = performance.now()
    let failed = 0
    const CONCURRENCY = 64
    let next = 0
    const openOne = (room: string) =>
      new Promise<void>((resolve) => {
        const ws = new WebSocket(`${url}/${encodeURIComponent(room)}`, { perMessageDeflate: false })
        const conn: Conn = { ws, updates: 0, ready: false, reader: false }
        conns.push(conn)
        const timer = setTimeout(() => {
          failed++
          resolve()
        }, 20_000)
        ws.binaryType = 'nodebuffer'
        ws.on('open', () => ws.send(step1))
        ws.on('message', (data: Buffer) => {
          if (data[0] !== 0) return
          if (data[1] === 2) {
            conn.updates++
            onUpdate?.(conn)
          } else if (data[1] === 0) ws.send(step2)
          else if (data[1] === 1 && !conn.ready) {
            conn.ready = true
            clearTimeout(timer)
            resolve()
          }
        })
        ws.on('error', () => undefined)
        ws.on('close', () => {
          if (!conn.ready) {
            clearTimeout(timer)
            failed++
            resolve()
          }
        })
      })
    await Promise.all(
      Array.from({ length: Math.min(CONCURRENCY, rooms.length) }, async () => {
        while (next < rooms.length) await openOne(rooms[next++]!)
      }),
    )
    reply({ type: 'opened', ms: performance.now() - start, failed })
  }

  const fanout = async (groups: Array<{ writer: number; readers: number[] }>, k: number): Promise<void> => {
    // Precompute each writer's k updates (one small map entry each) before the clock starts.
    const frames = groups.map(() => [] as Uint8Array[])
    groups.forEach((_, g) => {
      const doc = new Y.Doc()
      doc.on('update', (u: Uint8Array) => frames[g]!.push(frame((e) => syncProtocol.writeUpdate(e, u))))
      const map = doc.getMap<string>('m')
      for (let j = 0; j < k; j++) map.set(`k${j}`, `${'x'.repeat(64)}${j}`)
      doc.destroy()
    })
    for (const c of conns) {
      c.updates = 0
      c.reader = false
    }
    for (const g of groups) for (const r of g.readers) conns[r]!.reader = true
    const expected = groups.reduce((n, g) => n + g.readers.length, 0) * k
    let delivered = 0
    const start = performance.now()
    const done = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 60_000)
      onUpdate = (conn) => {
        if (conn.reader && conn.updates <= k && ++delivered >= expected) {
          clearTimeout(timer)
          resolve(true)
        }
      }
    })
    // Round-robin over writers so rooms progress together.
    for (let j = 0; j < k; j++) for (let g = 0; g < groups.length; g++) conns[groups[g]!.writer]!.ws.send(frames[g]![j]!)
    await done
    const ms = performance.now() - start
    onUpdate = undefined
    reply({ type: 'fanned', ms, delivered, expected })
  }

  const closeAll = async (): Promise<void> => {
    await Promise.all(
      conns.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.ws.readyState === WebSocket.CLOSED) return resolve()
            const timer = setTimeout(() => {
              c.ws.terminate()
              resolve()
            }, 3_000)
            c.ws.once('close', () => {
              clearTimeout(timer)
              resolve()
            })
            c.ws.close()
          }),
      ),
    )
    conns = []
    reply({ type: 'closed' })
  }

  process.on('message', (m: ChildCommand) => {
    const run = m.type === 'open' ? open(m.url, m.rooms) : m.type === 'fanout' ? fanout(m.groups, m.k) : closeAll()
    run.catch((error: unknown) => reply({ type: 'error', message: error instanceof Error ? error.message : String(error) }))
  })
  process.on('disconnect', () => process.exit(0))
}

class ClientProcess {
  private readonly child: ChildProcess
  private pending: ((m: ChildReply) => void) | undefined

  constructor() {
    this.child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, [CHILD_ENV]: 'relay-clients' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.child.on('message', (m: ChildReply) => {
      const p = this.pending
      this.pending = undefined
      p?.(m)
    })
  }

  request<T extends ChildReply['type']>(command: ChildCommand, expect: T, timeoutMs: number): Promise<Extract<ChildReply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`client process: no '${expect}' within ${timeoutMs} ms`)), timeoutMs)
      this.pending = (m) => {
        clearTimeout(timer)
        if (m.type === 'error') reject(new Error(`client process: ${m.message}`))
        else if (m.type !== expect) reject(new Error(`client process: expected ${expect}, got ${m.type}`))
        else resolve(m as Extract<ChildReply, { type: T }>)
      }
      this.child.send(command)
    })
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null) return
    const exited = new Promise<void>((r) => this.child.once('exit', () => r()))
    this.child.disconnect()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 3_000)
    await exited
    clearTimeout(timer)
  }
}

interface ServerUnderTest {
  url: string
  close(): Promise<void>
}

async function startOurRelay(): Promise<ServerUnderTest> {
  const server = await startRelay('none')
  return { url: server.relay.url, close: () => server.close() }
}

/** The stock y-websocket server (`@y/websocket-server`, in-memory docs, no auth or limits). */
async function startStockServer(): Promise<ServerUnderTest> {
  const http: Server = createServer()
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
  const names = new Set<string>()
  http.on('upgrade', (request, socket, head) => {
    wss.handleUpgrade(request, socket, head, (ws) => {
      const docName = decodeURIComponent((request.url ?? '/').slice(1).split('?')[0]!)
      names.add(docName)
      setupWSConnection(ws, request, { docName })
    })
  })
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  return {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      wss.close()
      // Without persistence the stock server never drops a doc; do it so rows stay independent.
      for (const name of names) {
        stockDocs.get(name)?.destroy()
        stockDocs.delete(name)
      }
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
}

const servers: Array<[string, () => Promise<ServerUnderTest>]> = [
  ['@y/websocket-server (baseline)', startStockServer],
  ['contextsync relay', startOurRelay],
]
// For profiling one server alone: BENCH_RELAY_ONLY=relay|stock (the ratio columns then mean nothing).
if (process.env.BENCH_RELAY_ONLY === 'relay') servers.splice(0, 1)
if (process.env.BENCH_RELAY_ONLY === 'stock') servers.splice(1, 1)

let gcFn: (() => void) | undefined
function gc(): void {
  if (!gcFn) {
    v8.setFlagsFromString('--expose-gc')
    gcFn = vm.runInNewContext('gc') as () => void
  }
  gcFn()
}

async function memorySample(): Promise<{ rss: number; heap: number }> {
  // GC until the heap stops shrinking (bounded), so late garbage of earlier rows is gone.
  let last = Infinity
  for (let i = 0; i < 8; i++) {
    gc()
    await sleep(25)
    const heap = process.memoryUsage().heapUsed
    if (Math.abs(last - heap) < 8 * 1024) break
    last = heap
  }
  const m = process.memoryUsage()
  return { rss: m.rss, heap: m.heapUsed + m.external }
}

/** Room ids spread over accounts of at most 100 rooms (the relay's per-account room quota is 256). */
function roomNames(tag: string, rooms: number, connections: number): string[] {
  return Array.from({ length: connections }, (_, i) => {
    const r = i % rooms
    return `${tag}a${Math.floor(r / 100)}.r${r}`
  })
}

let runTag = 0

async function benchScaling(): Promise<void> {
  const client = new ClientProcess()
  try {
    // Idle connections: memory delta per connection.
    const idleConfigs: Array<[number, number]> = [
      [1, 1],
      [100, 1],
      [100, 100],
      [1000, 1],
      [1000, 1000],
    ]
    const idleRows: string[][] = []
    // Warm-up: connect and drop 200 sockets on each server once (JIT, lazy module state).
    for (const [, start] of servers) {
      const server = await start()
      try {
        await client.request({ type: 'open', url: server.url, rooms: roomNames(`w${runTag++}`, 20, 200) }, 'opened', 60_000)
        await client.request({ type: 'close' }, 'closed', 30_000)
      } finally {
        await server.close()
      }
    }
    for (const [connections, rooms] of idleConfigs) {
      // One connection is far below the heap's noise: take the median of several trials.
      const trials = connections === 1 ? 9 : 1
      const perServer: Array<{ rss: number; heap: number; ms: number }> = []
      for (const [, start] of servers) {
        const samples: Array<{ rss: number; heap: number; ms: number }> = []
        for (let t = 0; t < trials; t++) {
          const server = await start()
          try {
            const before = await memorySample()
            const opened = await client.request({ type: 'open', url: server.url, rooms: roomNames(`i${runTag++}`, rooms, connections) }, 'opened', 60_000)
            if (opened.failed > 0) throw new Error(`${opened.failed} of ${connections} connections failed`)
            await sleep(300)
            const after = await memorySample()
            samples.push({ rss: (after.rss - before.rss) / connections, heap: (after.heap - before.heap) / connections, ms: opened.ms })
            await client.request({ type: 'close' }, 'closed', 30_000)
          } finally {
            await server.close()
          }
        }
        perServer.push({ rss: median(samples.map((x) => x.rss)), heap: median(samples.map((x) => x.heap)), ms: median(samples.map((x) => x.ms)) })
      }
      servers.forEach(([name], s) => {
        const x = perServer[s]!
        idleRows.push([
          `${name}: ${connections} conn / ${rooms} room${rooms > 1 ? 's' : ''}${trials > 1 ? ` (median of ${trials})` : ''}`,
          fmt(x.heap / 1024, 'KiB'),
          fmt(x.rss / 1024, 'KiB'),
          fmt(x.ms, 'ms'),
          s === 0 ? '—' : fmt(x.heap / perServer[0]!.heap, '×'),
          servers[s]![1] === startOurRelay ? (x.heap <= 64 * 1024 ? 'met' : 'missed') : '',
        ])
      })
    }
    printTable(
      'Relay memory per idle connection — server in this process, clients (raw ws + y-protocols handshake) in a child process; ' +
        'Δ after GC ÷ connections; relay auth "none" — target heap+external ≤ 64 KiB (1-connection rows: median of 9 trials, still near the noise floor)',
      ['server: connections / rooms', 'heap+ext/conn', 'RSS/conn', 'connect all', 'heap vs stock', 'target ≤ 64 KiB'],
      idleRows,
    )

    // Forwarding: 1 writer + N readers in one room, and R rooms of 1 writer + 1 reader.
    const clamp = (x: number) => Math.max(20, Math.min(5000, Math.round(x)))
    const forwardConfigs: Array<{ label: string; rooms: number; readers: number; k: number }> = [
      { label: '1 room, 1 writer → 1 reader', rooms: 1, readers: 1, k: clamp(ROOMS_MSGS) },
      { label: '1 room, 1 writer → 100 readers', rooms: 1, readers: 100, k: clamp(FANOUT / 100) },
      { label: '1 room, 1 writer → 1000 readers', rooms: 1, readers: 1000, k: clamp(FANOUT / 1000) },
      { label: '100 rooms × (1 writer → 1 reader)', rooms: 100, readers: 1, k: clamp(ROOMS_MSGS / 100) },
      { label: '1000 rooms × (1 writer → 1 reader)', rooms: 1000, readers: 1, k: clamp(ROOMS_MSGS / 1000) },
    ]
    const forwardRows: string[][] = []
    for (const config of forwardConfigs) {
      const results: Array<{ rate: number; cpuUs: number; ms: number; delivered: number }> = []
      for (const [, start] of servers) {
        const server = await start()
        try {
          // Connection i: room i % rooms; the first `rooms` connections are the writers.
          const perRoom = 1 + config.readers
          const total = config.rooms * perRoom
          const rooms = roomNames(`f${runTag++}`, config.rooms, total)
          const opened = await client.request({ type: 'open', url: server.url, rooms }, 'opened', 60_000)
          if (opened.failed > 0) throw new Error(`${opened.failed} of ${total} connections failed`)
          const groups = Array.from({ length: config.rooms }, (_, r) => ({
            writer: r,
            readers: Array.from({ length: config.readers }, (_, j) => r + (j + 1) * config.rooms),
          }))
          await sleep(100)
          const cpu0 = process.cpuUsage()
          const fanned = await client.request({ type: 'fanout', groups, k: config.k }, 'fanned', 90_000)
          const cpu = process.cpuUsage(cpu0)
          if (fanned.delivered < fanned.expected) throw new Error(`fan-out delivered ${fanned.delivered}/${fanned.expected} within 60 s`)
          results.push({
            rate: fanned.delivered / (fanned.ms / 1000),
            cpuUs: (cpu.user + cpu.system) / fanned.delivered,
            ms: fanned.ms,
            delivered: fanned.delivered,
          })
          await client.request({ type: 'close' }, 'closed', 30_000)
        } finally {
          await server.close()
        }
      }
      servers.forEach(([name], s) => {
        const x = results[s]!
        forwardRows.push([
          `${name}: ${config.label}`,
          `${config.k} × ${config.rooms * config.readers}`,
          fmt(x.ms, 'ms'),
          fmt(x.rate, 'msg/s'),
          fmt(x.cpuUs, 'µs'),
          s === 0 ? '—' : fmt(x.rate / results[0]!.rate, '×'),
          s === 0 ? '—' : fmt(x.cpuUs / results[0]!.cpuUs, '×'),
        ])
      })
    }
    printTable(
      'Relay forwarding — a burst of small Yjs updates per writer, until every reader has all; msg/s = deliveries to readers per second; ' +
        'CPU = server-process user+sys ÷ deliveries (clients in a child process; the stock server also echoes each update to its writer)',
      ['server: layout', 'updates × readers', 'time', 'forwarded', 'CPU/msg', 'rate vs stock', 'CPU vs stock'],
      forwardRows,
    )
  } finally {
    await client.stop()
  }
}

/** Run the relay benchmark and print its tables. */
export async function benchRelay(): Promise<void> {
  console.log(`\nrelay suite: load average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores at start; relay store ${STORAGE}`)
  if (!['relay', 'stock'].includes(process.env.BENCH_RELAY_ONLY ?? '')) await benchThroughRelay()
  if (SCALING) await benchScaling()
}

if (process.env[CHILD_ENV] === 'relay-clients') void childMain()
