/**
 * One measurement of one source tree, run as a child process by bench/integrity.ts:
 *
 *   tsx bench/integrity-probe.ts <sourceRoot> <probe> [json args]
 *
 * The library is imported from `<sourceRoot>/src/…` (dynamic `import()` of file URLs), so the
 * baseline and the "after" tree run this very file; only their `src/` differs. Only the public API
 * both trees share is used (`ContextSync`, `createAccount`, `memoryStorage`, `loopbackNetwork`,
 * `sqliteStorage`, `websocketTransport`, `createRelay`) plus `dev.replica(scope).compactNow()`,
 * which bench/storage.ts also uses. Nothing of this tree's `src/` is loaded here (bench-kit.ts loads
 * no library code). Prints one JSON line of results on stdout, last.
 *
 * Probes (args, all optional, default in brackets):
 * - `facade-burst` {n [20000], warmup [200]}: two owner devices of one account on a loopback
 *   network; `warmup` writes, then `n` `memory.remember` calls issued at once, until the other
 *   device has them all → writes/s.
 * - `facade-single` {n [1000], warmup [200]}: `n` writes one at a time, each timed until the other
 *   device has it → p50/p99 µs.
 * - `relay-burst` / `relay-single`: the same, the devices connected through a relay on 127.0.0.1
 *   (`websocketTransport` + `ws`; relay options as in bench/relay.ts: default auth, SQLite store in
 *   a temp dir unless BENCH_RELAY_STORAGE=memory, raised rate limit), both devices in this process.
 * - `local-bytes` {n [5000]}: a writer on a byte-counting `memoryStorage()` makes `n` awaited
 *   writes (default compaction policy); a second device receives them over loopback on its own
 *   counting store → bytes, saves and removes per memory write on each, after both went quiet;
 *   also how long the writes took and when the receiver had them all.
 * - `cold-open-build` {path, n [100000], burst [5000]}: a pc device on `sqliteStorage({ path })`
 *   writes `n` memories in bursts, compacts `personal`, closes.
 * - `cold-open` {path, n [100000], opens [3]}: `ContextSync.open({ storage })` + first
 *   `memory.list()` of that store, one unmeasured warm-up, then `opens` measured (full GC before
 *   each) → medians.
 *
 * @module
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { collectGarbage, LIMITS, MERGE_MS, STORAGE, WS, Waiter, sleep, text } from './bench-kit.js'
import { median, percentile } from './table.js'

// Types only: both trees export these with the same shape (bench/integrity.ts module comment).
type Lib = typeof import('../src/index.js')
type SqliteEntry = typeof import('../src/entries/sqlite.js')
type WebsocketEntry = typeof import('../src/entries/websocket.js')
type RelayEntry = typeof import('../src/relay/index.js')
type ContextSync = import('../src/index.js').ContextSync
type StorageAdapter = import('../src/index.js').StorageAdapter
type StorageKey = import('../src/index.js').StorageKey
type Transport = import('../src/index.js').Transport

/**
 * `keys: plainKeys()` where the tree has key protectors (a durable store needs `keys` said out
 * loud); nothing on a baseline tree from before them, which stored plain records by default.
 */
function plainKeysOf(lib: Lib): { keys?: ReturnType<Lib['plainKeys']> } {
  return typeof lib.plainKeys === 'function' ? { keys: lib.plainKeys() } : {}
}

/** The names of the probes, in the order bench/integrity.ts runs them. */
export const PROBES = ['facade-burst', 'facade-single', 'relay-burst', 'relay-single', 'local-bytes', 'cold-open-build', 'cold-open'] as const
/** One probe name. */
export type ProbeName = (typeof PROBES)[number]

/** What every probe reports besides its figures. */
export interface ProbeCommon {
  /** The libsodium build the tree's devices ran on. */
  crypto: string
  /** `rejected` events on the probe's devices: any is a bug in the probe or the tree (figures then mean little). */
  rejected: number
}

/** Result of `facade-burst` / `relay-burst`. */
export interface BurstResult extends ProbeCommon {
  n: number
  ms: number
  writesPerSecond: number
}

/** Result of `facade-single` / `relay-single`. */
export interface SingleResult extends ProbeCommon {
  n: number
  p50Us: number
  p99Us: number
  maxUs: number
  writesPerSecond: number
}

/** What a counting store saw, per memory write where it says so. */
export interface StoreCounts {
  /** Bytes passed to `save`, per memory write. */
  bytesPerWrite: number
  /** `save` calls per memory write. */
  savesPerWrite: number
  /** `remove` + `removeRange` calls in all. */
  removes: number
  /** Bytes passed to `save` per memory write, by key kind (`log`, `state`, `meta` of a replica; `keys`). */
  bytesPerWriteByKind: Record<string, number>
  /** What the store holds at the end, per memory. */
  heldBytesPerMemory: number
}

/** Result of `local-bytes`. */
export interface LocalBytesResult extends ProbeCommon {
  n: number
  /** The writer's `n` awaited writes, start to last resolved. */
  writerMs: number
  /** Start of the writes until the receiver had all of them. */
  receivedMs: number
  writer: StoreCounts
  receiver: StoreCounts
}

/** Result of `cold-open-build`. */
export interface ColdBuildResult extends ProbeCommon {
  n: number
  writeMs: number
  compactMs: number
  /** Database, -wal and -shm files after close. */
  diskBytes: number
  /** Sum of the stored chunk sizes. */
  payloadBytes: number
  /** Stored chunk bytes by key kind. */
  payloadByKind: Record<string, number>
}

/** Result of `cold-open`. */
export interface ColdOpenResult extends ProbeCommon {
  n: number
  openMs: number
  listMs: number
  totalMs: number
  /** Every measured open+list, in order. */
  runsMs: number[]
}

/** Result of any probe. */
export type ProbeResult = BurstResult | SingleResult | LocalBytesResult | ColdBuildResult | ColdOpenResult

// ── loading a tree ───────────────────────────────────────────────────────────

interface Tree {
  lib: Lib
  sqlite(): Promise<SqliteEntry>
  websocket(): Promise<WebsocketEntry>
  relay(): Promise<RelayEntry>
}

async function importFrom<T>(root: string, path: string): Promise<T> {
  const loaded: unknown = await import(pathToFileURL(join(root, path)).href)
  // The module is the tree's own; its shape is the public API both trees share (module comment).
  return loaded as T
}

async function loadTree(root: string): Promise<Tree> {
  const lib = await importFrom<Lib>(root, 'src/index.ts')
  if (typeof lib.ContextSync?.open !== 'function' || typeof lib.createAccount !== 'function') {
    throw new Error(`${root}/src/index.ts does not export ContextSync and createAccount`)
  }
  return {
    lib,
    sqlite: () => importFrom<SqliteEntry>(root, 'src/entries/sqlite.ts'),
    websocket: () => importFrom<WebsocketEntry>(root, 'src/entries/websocket.ts'),
    relay: () => importFrom<RelayEntry>(root, 'src/relay/index.ts'),
  }
}

// ── two devices of one account ───────────────────────────────────────────────

interface Pair {
  /** Issue write `i`; not awaited (a failure fails the waiter). */
  write(i: number): Promise<unknown>
  /** Resolves waits on the number of memories the receiver got from the writer. */
  waiter: Waiter
  rejected(): number
  close(): Promise<void>
}

/** Wire the receiver's arrivals into a waiter and count `rejected` on both. */
function pairOf(a: ContextSync, b: ContextSync, close: () => Promise<void>): Pair {
  let arrived = 0
  let rejected = 0
  const waiter = new Waiter(() => arrived)
  b.memory.on('change', (e) => {
    if (e.type === 'added' && e.origin !== 'local') {
      arrived++
      waiter.notify()
    }
  })
  a.on('rejected', () => rejected++)
  b.on('rejected', () => rejected++)
  return {
    write: (i) => {
      const written = a.memory.remember({ text: text(i), kind: 'fact', tags: [`t${i % 10}`] })
      written.catch((error: unknown) => waiter.fail(error))
      return written
    },
    waiter,
    rejected: () => rejected,
    close,
  }
}

async function loopbackPair(tree: Tree): Promise<Pair> {
  const { lib } = tree
  const account = await lib.createAccount()
  const net = lib.loopbackNetwork({ seed: 1 })
  const a = await lib.ContextSync.open({ account, device: { kind: 'phone' }, storage: lib.memoryStorage(), transports: [net.transport()] })
  const b = await lib.ContextSync.open({ account, device: { kind: 'pc' }, storage: lib.memoryStorage(), transports: [net.transport()] })
  return pairOf(a, b, async () => {
    await a.close()
    await b.close()
    net.destroy()
  })
}

async function relayPair(tree: Tree): Promise<Pair> {
  const { createRelay, silentLogger } = await tree.relay()
  const { websocketTransport } = await tree.websocket()
  // The options of bench/relay-common.ts `startRelay` (default auth), built from the tree's own createRelay.
  const dataDir = STORAGE === 'sqlite' ? mkdtempSync(join(tmpdir(), 'contextsync-bench-integrity-relay-')) : undefined
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    limits: LIMITS,
    ...(MERGE_MS !== undefined && { persistence: { mergeIntervalMs: MERGE_MS } }),
    ...(dataDir !== undefined && { dataDir }),
  })
  const transports: Transport[] = []
  const transport = () => {
    const t = websocketTransport({ url: relay.url, WebSocketPolyfill: WS, maxBackoffTime: 500 })
    transports.push(t)
    return t
  }
  const { lib } = tree
  const account = await lib.createAccount()
  const a = await lib.ContextSync.open({ account, device: { kind: 'phone' }, storage: lib.memoryStorage(), transports: [transport()] })
  const b = await lib.ContextSync.open({ account, device: { kind: 'pc' }, storage: lib.memoryStorage(), transports: [transport()] })
  return pairOf(a, b, async () => {
    await a.close()
    await b.close()
    for (const t of transports) t.close()
    await relay.close()
    if (dataDir) rmSync(dataDir, { recursive: true, force: true })
  })
}

/** Writes 0..warmup-1, each awaited until it arrived: connections up, JIT and caches warm. */
async function warmUp(pair: Pair, warmup: number): Promise<void> {
  for (let i = 0; i < warmup; i++) {
    void pair.write(i)
    await pair.waiter.wait(i + 1, 30_000, `warm-up write ${i}`)
  }
  await sleep(100)
}

async function burst(tree: Tree, make: (tree: Tree) => Promise<Pair>, n: number, warmup: number): Promise<BurstResult> {
  const pair = await make(tree)
  try {
    await warmUp(pair, warmup)
    const start = performance.now()
    for (let i = warmup; i < warmup + n; i++) void pair.write(i)
    await pair.waiter.wait(warmup + n, 300_000, 'burst writes')
    const ms = performance.now() - start
    return { n, ms, writesPerSecond: n / (ms / 1000), crypto: cryptoOf(tree), rejected: pair.rejected() }
  } finally {
    await pair.close()
  }
}

async function single(tree: Tree, make: (tree: Tree) => Promise<Pair>, n: number, warmup: number): Promise<SingleResult> {
  const pair = await make(tree)
  try {
    await warmUp(pair, warmup)
    const latencies: number[] = []
    for (let i = warmup; i < warmup + n; i++) {
      const start = performance.now()
      const written = pair.write(i)
      await pair.waiter.wait(i + 1, 30_000, `single write ${i}`)
      latencies.push(performance.now() - start)
      // Outside the timed window: the next write starts once this one is durable on the writer too.
      await written
    }
    const total = latencies.reduce((a, b) => a + b, 0)
    return {
      n,
      p50Us: percentile(latencies, 50) * 1000,
      p99Us: percentile(latencies, 99) * 1000,
      maxUs: percentile(latencies, 100) * 1000,
      writesPerSecond: n / (total / 1000),
      crypto: cryptoOf(tree),
      rejected: pair.rejected(),
    }
  } finally {
    await pair.close()
  }
}

function cryptoOf(tree: Tree): string {
  return tree.lib.cryptoBackend() ?? 'not loaded'
}

// ── bytes written to local storage ───────────────────────────────────────────

/** `replica/<room>/<kind>/…` → kind (log, state, meta); `keys/…` → keys. */
function keyKind(key: StorageKey): string {
  return key[0] === 'replica' ? (key[2] ?? 'replica') : (key[0] ?? '?')
}

interface CountingStorage {
  storage: StorageAdapter
  /** Forget what was counted so far (set-up writes are not the cost of a memory write). */
  reset(): void
  counts(writes: number): Promise<StoreCounts>
}

/** A store that counts what passes to `save`, `remove` and `removeRange` of `inner`. */
function countingStorage(inner: StorageAdapter): CountingStorage {
  let saves = 0
  let bytes = 0
  let removes = 0
  let byKind = new Map<string, number>()
  const storage: StorageAdapter = {
    ...(inner.durable !== undefined && { durable: inner.durable }),
    load: (key) => inner.load(key),
    loadRange: (prefix) => inner.loadRange(prefix),
    save: (key, data) => {
      saves++
      bytes += data.byteLength
      byKind.set(keyKind(key), (byKind.get(keyKind(key)) ?? 0) + data.byteLength)
      return inner.save(key, data)
    },
    remove: (key) => {
      removes++
      return inner.remove(key)
    },
    removeRange: (prefix) => {
      removes++
      return inner.removeRange(prefix)
    },
    close: async () => inner.close?.(),
  }
  return {
    storage,
    reset: () => {
      saves = 0
      bytes = 0
      removes = 0
      byKind = new Map()
    },
    counts: async (writes) => {
      const held = (await inner.loadRange([])).reduce((sum, c) => sum + c.data.byteLength, 0)
      return {
        bytesPerWrite: bytes / writes,
        savesPerWrite: saves / writes,
        removes,
        bytesPerWriteByKind: Object.fromEntries([...byKind].sort().map(([k, v]) => [k, v / writes])),
        heldBytesPerMemory: held / writes,
      }
    },
  }
}

async function localBytes(tree: Tree, n: number): Promise<LocalBytesResult> {
  const { lib } = tree
  const account = await lib.createAccount()
  const net = lib.loopbackNetwork({ seed: 1 })
  const writerStore = countingStorage(lib.memoryStorage())
  const receiverStore = countingStorage(lib.memoryStorage())
  const a = await lib.ContextSync.open({ account, device: { kind: 'phone' }, storage: writerStore.storage, ...plainKeysOf(lib), transports: [net.transport()] })
  const b = await lib.ContextSync.open({ account, device: { kind: 'pc' }, storage: receiverStore.storage, ...plainKeysOf(lib), transports: [net.transport()] })
  const pair = pairOf(a, b, async () => {
    await a.close()
    await b.close()
    net.destroy()
  })
  try {
    // One write through, so both are online and enrolled; then what set-up wrote is not counted.
    await pair.write(-1)
    await pair.waiter.wait(1, 30_000, 'first write')
    await quiet(a, b, net)
    writerStore.reset()
    receiverStore.reset()
    const start = performance.now()
    for (let i = 0; i < n; i++) await pair.write(i)
    const writerMs = performance.now() - start
    await pair.waiter.wait(n + 1, 300_000, 'receiver to have every write')
    const receivedMs = performance.now() - start
    // Deferred (idle) compactions and merges are part of the cost: count them too.
    await quiet(a, b, net)
    const writer = await writerStore.counts(n)
    const receiver = await receiverStore.counts(n)
    return { n, writerMs, receivedMs, writer, receiver, crypto: cryptoOf(tree), rejected: pair.rejected() }
  } finally {
    await pair.close()
  }
}

/** Both devices flushed and the network settled, past the default compaction idle time (250 ms). */
async function quiet(a: ContextSync, b: ContextSync, net: { settle(): Promise<void> }): Promise<void> {
  for (let round = 0; round < 2; round++) {
    await a.flush()
    await net.settle()
    await b.flush()
    await sleep(1000)
  }
}

// ── cold open ────────────────────────────────────────────────────────────────

/** Database, -wal and -shm files of the SQLite store at `path`. */
function bytesOnDisk(path: string): number {
  const dir = dirname(path)
  const base = basename(path)
  return readdirSync(dir)
    .filter((name) => name === base || name.startsWith(`${base}-`))
    .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0)
}

/** As bench/storage.ts `buildDeviceStore`: written in bursts, compacted, closed. */
async function coldOpenBuild(tree: Tree, path: string, n: number, burstSize: number): Promise<ColdBuildResult> {
  const { sqliteStorage } = await tree.sqlite()
  const account = await tree.lib.createAccount()
  const storage = sqliteStorage({ path })
  const dev = await tree.lib.ContextSync.open({ account, device: { kind: 'pc', name: 'Bench PC' }, storage, ...plainKeysOf(tree.lib) })
  let rejected = 0
  dev.on('rejected', () => rejected++)
  const start = performance.now()
  for (let i = 0; i < n; i += burstSize) {
    const writes: Array<Promise<unknown>> = []
    for (let j = i; j < Math.min(n, i + burstSize); j++) writes.push(dev.memory.remember({ text: text(j), tags: [`t${j % 10}`] }))
    await Promise.all(writes)
  }
  const writeMs = performance.now() - start
  const compactStart = performance.now()
  await dev.replica('personal')!.compactNow()
  const compactMs = performance.now() - compactStart
  await dev.close()
  await storage.close()
  const reader = sqliteStorage({ path })
  const payloadByKind = new Map<string, number>()
  let payloadBytes = 0
  try {
    for (const chunk of await reader.loadRange([])) {
      payloadBytes += chunk.data.byteLength
      payloadByKind.set(keyKind(chunk.key), (payloadByKind.get(keyKind(chunk.key)) ?? 0) + chunk.data.byteLength)
    }
  } finally {
    await reader.close()
  }
  return {
    n,
    writeMs,
    compactMs,
    diskBytes: bytesOnDisk(path),
    payloadBytes,
    payloadByKind: Object.fromEntries([...payloadByKind].sort()),
    crypto: cryptoOf(tree),
    rejected,
  }
}


async function coldOpen(tree: Tree, path: string, n: number, opens: number): Promise<ColdOpenResult> {
  const { sqliteStorage } = await tree.sqlite()
  let rejected = 0
  const once = async (): Promise<{ openMs: number; listMs: number }> => {
    collectGarbage()
    const start = performance.now()
    const storage = sqliteStorage({ path })
    const dev = await tree.lib.ContextSync.open({ storage, ...plainKeysOf(tree.lib) })
    const openMs = performance.now() - start
    dev.on('rejected', () => rejected++)
    const listStart = performance.now()
    const count = dev.memory.list().length
    const listMs = performance.now() - listStart
    if (count !== n) throw new Error(`store at ${path} holds ${count} memories, expected ${n}`)
    await dev.close()
    await storage.close()
    return { openMs, listMs }
  }
  await once()
  const runs: Array<{ openMs: number; listMs: number }> = []
  for (let r = 0; r < opens; r++) runs.push(await once())
  return {
    n,
    openMs: median(runs.map((r) => r.openMs)),
    listMs: median(runs.map((r) => r.listMs)),
    totalMs: median(runs.map((r) => r.openMs + r.listMs)),
    runsMs: runs.map((r) => r.openMs + r.listMs),
    crypto: cryptoOf(tree),
    rejected,
  }
}

// ── entry ────────────────────────────────────────────────────────────────────

type Args = Record<string, unknown>

function numberArg(args: Args, name: string, fallback: number): number {
  const value = args[name] ?? fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) throw new Error(`probe argument ${name} must be a whole number, got ${JSON.stringify(value)}`)
  return value
}

function pathArg(args: Args): string {
  const value = args.path
  if (typeof value !== 'string' || value === '') throw new Error('probe argument path (the SQLite store) is required')
  return resolve(value)
}

function isProbe(name: string): name is ProbeName {
  return (PROBES as readonly string[]).includes(name)
}

/** Run `probe` on the tree at `root` with `args`. */
export async function runProbe(root: string, probe: ProbeName, args: Args): Promise<ProbeResult> {
  const tree = await loadTree(root)
  const n = (fallback: number) => numberArg(args, 'n', fallback)
  const warmup = numberArg(args, 'warmup', 200)
  switch (probe) {
    case 'facade-burst':
      return burst(tree, loopbackPair, n(20_000), warmup)
    case 'facade-single':
      return single(tree, loopbackPair, n(1_000), warmup)
    case 'relay-burst':
      return burst(tree, relayPair, n(20_000), warmup)
    case 'relay-single':
      return single(tree, relayPair, n(1_000), warmup)
    case 'local-bytes':
      return localBytes(tree, n(5_000))
    case 'cold-open-build':
      return coldOpenBuild(tree, pathArg(args), n(100_000), Math.max(1, numberArg(args, 'burst', 5_000)))
    case 'cold-open':
      return coldOpen(tree, pathArg(args), n(100_000), Math.max(1, numberArg(args, 'opens', 3)))
  }
}

async function main(): Promise<void> {
  const [root, probe, json] = process.argv.slice(2)
  if (root === undefined || probe === undefined || !isProbe(probe)) {
    console.error(`usage: tsx bench/integrity-probe.ts <sourceRoot> <${PROBES.join('|')}> [json args]`)
    process.exit(2)
  }
  const parsed: unknown = json === undefined ? {} : JSON.parse(json)
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('probe arguments must be a JSON object')
  const result = await runProbe(resolve(root), probe, parsed as Args)
  console.log(JSON.stringify(result))
  // Sockets and timers of a closed relay or device must not keep a finished probe alive.
  process.exit(0)
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main()
