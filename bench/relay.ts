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
import { cpus, loadavg } from 'node:os'
import libsodium from 'libsodium-wrappers'
import { cryptoBackend, ready, type CryptoBackendChoice } from '../src/crypto/sodium.js'
import { loadNativeBackend } from '../src/crypto/sodium-native.js'
import { wasmBackend } from '../src/crypto/sodium-wasm.js'
import { fmt, median, percentile, printTable } from './table.js'
import { singleWritesAcrossProcesses } from './relay-processes.js'
import { STORAGE } from './relay-common.js'
import { CRYPTO_OPS, CRYPTO_OP_RUNS, cryptoOperationMedians, type CryptoOp } from './relay-crypto-ops.js'
import { N, SINGLE, SINGLE_WARMUP, WARMUP, burst, contextSyncPair, plainPair, single, type BurstResult, type Pair } from './relay-pairs.js'
import { benchScaling } from './relay-scaling.js'

const RUNS = Number(process.env.BENCH_RELAY_RUNS ?? 3)
const SCALING = process.env.BENCH_RELAY_SCALING !== '0'

// ── part 1: E2EE vs plain Yjs through the relay ──────────────────────────────

async function benchThroughRelay(): Promise<void> {
  await ready()
  const backend = cryptoBackend()!
  await libsodium.ready
  // sodium-native when it loads here, for the crypto table (the devices use whatever `ready()` chose).
  const nativeSodium = (await loadNativeBackend(wasmBackend(libsodium))).backend
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
  const ops = cryptoOperationMedians(nativeSodium)
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

/** Run the relay benchmark and print its tables. */
export async function benchRelay(): Promise<void> {
  console.log(`\nrelay suite: load average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores at start; relay store ${STORAGE}`)
  if (!['relay', 'stock'].includes(process.env.BENCH_RELAY_ONLY ?? '')) await benchThroughRelay()
  if (SCALING) await benchScaling()
}
