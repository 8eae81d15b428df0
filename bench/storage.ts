/**
 * Storage benchmark: a device on `sqliteStorage` vs plain Yjs on the same SQLite adapter.
 *
 * 1. Cold open of a device store holding N memories (default 100k), after compaction:
 *    subject — `ContextSync.open({ storage: sqliteStorage({ path }) })`, then the first
 *    `dev.memory.list()`; baseline — open a sqliteStorage holding `Y.encodeStateAsUpdate` of an
 *    equivalent plain doc (the same items written with `insertMemory`) as one chunk under the same
 *    key layout, load it and `Y.applyUpdate` it into a new doc, then read every item.
 *    Both in this process (page cache and JIT warm after one unmeasured warm-up of each; a full GC
 *    before every measured run).
 * 2. Acknowledged durable writes (`synchronous=FULL`): a burst (`Promise.all` of BURST
 *    `remember`s) and one at a time (SINGLE awaited `remember`s); baseline — a plain doc that
 *    persists every update with `await storage.save(key, update)` to the same adapter (burst: all
 *    saves issued, then awaited — the adapter commits them as one transaction, like the device).
 *
 * Environment: BENCH_STORE_N (100000), BENCH_STORE_BURST (5000), BENCH_STORE_SINGLE (500),
 * BENCH_RUNS (3), BENCH_STORE_DIR (a fresh temp dir; removed afterwards).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import { sqliteStorage } from '../src/adapters/sqlite-storage.js'
import { insertMemory, readAllMemories, type MemoryItem } from '../src/crdt/memory.js'
import { ContextSync, createAccount, plainKeys } from '../src/index.js'
import { collectGarbage } from './bench-kit.js'
import { fmt, median, percentile, printTable } from './table.js'

const N = Number(process.env.BENCH_STORE_N ?? 100_000)
const BURST = Number(process.env.BENCH_STORE_BURST ?? 5_000)
const SINGLE = Number(process.env.BENCH_STORE_SINGLE ?? 500)
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 3))

function text(i: number): string {
  return `Remembered fact number ${i}: likes ${i % 2 ? 'tea' : 'coffee'} at ${i % 24}:00`
}

/** Sum of the sizes of every file of a store (database, -wal, -shm). */
function bytesOnDisk(dir: string, base: string): number {
  return readdirSync(dir)
    .filter((name) => name === base || name.startsWith(`${base}-`))
    .reduce((sum, name) => sum + statSync(join(dir, name)).size, 0)
}

/** Sum of the stored chunk sizes (what the store holds, without SQLite's pages and free space). */
async function payloadBytes(path: string): Promise<number> {
  const storage = sqliteStorage({ path })
  try {
    return (await storage.loadRange([])).reduce((sum, c) => sum + c.data.byteLength, 0)
  } finally {
    await storage.close()
  }
}

function since(start: number): number {
  return performance.now() - start
}


// ── 1. cold open ──────────────────────────────────────────────────────────────

interface Built {
  items: MemoryItem[] | undefined
  roomId: string
  writeMs: number
  compactMs: number
}

/** A pc device holding N memories in `personal`, written in bursts, compacted, closed. */
async function buildDeviceStore(path: string): Promise<Built> {
  const account = await createAccount()
  const storage = sqliteStorage({ path })
  const dev = await ContextSync.open({ account, device: { kind: 'pc', name: 'Bench PC' }, storage, keys: plainKeys() })
  const start = performance.now()
  for (let i = 0; i < N; i += BURST) {
    const burst: Array<Promise<unknown>> = []
    for (let j = i; j < Math.min(N, i + BURST); j++) burst.push(dev.memory.remember({ text: text(j), tags: [`t${j % 10}`] }))
    await Promise.all(burst)
  }
  const writeMs = since(start)
  const compactStart = performance.now()
  await dev.replica('personal')!.compactNow()
  const compactMs = since(compactStart)
  const items = dev.memory.list()
  const roomId = dev.roomId('personal')
  await dev.close()
  await storage.close()
  return { items, roomId, writeMs, compactMs }
}

/** The same items in a plain doc, stored as one state chunk under the same key layout. */
async function buildPlainStore(path: string, built: Built): Promise<void> {
  const items = built.items!
  const doc = new Y.Doc()
  for (let i = 0; i < items.length; i += BURST) {
    doc.transact(() => {
      for (const item of items.slice(i, i + BURST)) insertMemory(doc, item)
    })
  }
  const storage = sqliteStorage({ path })
  await storage.save(['replica', built.roomId, 'log', '000000000000'], Y.encodeStateAsUpdate(doc))
  await storage.close()
  doc.destroy()
}

interface OpenTiming {
  openMs: number
  listMs: number
}

async function openDevice(path: string): Promise<OpenTiming> {
  collectGarbage()
  const start = performance.now()
  const storage = sqliteStorage({ path })
  const dev = await ContextSync.open({ storage, keys: plainKeys() })
  const openMs = since(start)
  const listStart = performance.now()
  const count = dev.memory.list().length
  const listMs = since(listStart)
  if (count !== N) throw new Error(`device store holds ${count} memories, expected ${N}`)
  await dev.close()
  await storage.close()
  return { openMs, listMs }
}

async function openPlain(path: string, roomId: string): Promise<OpenTiming> {
  collectGarbage()
  const start = performance.now()
  const storage = sqliteStorage({ path })
  const doc = new Y.Doc()
  const chunks = await storage.loadRange(['replica', roomId, 'log'])
  doc.transact(() => {
    for (const chunk of chunks) Y.applyUpdate(doc, chunk.data)
  })
  const openMs = since(start)
  const listStart = performance.now()
  const count = readAllMemories(doc).length
  const listMs = since(listStart)
  if (count !== N) throw new Error(`plain store holds ${count} memories, expected ${N}`)
  await storage.close()
  doc.destroy()
  return { openMs, listMs }
}

async function benchColdOpen(dir: string): Promise<void> {
  const devicePath = join(dir, 'device.db')
  const plainPath = join(dir, 'plain.db')
  const buildStart = performance.now()
  const built = await buildDeviceStore(devicePath)
  await buildPlainStore(plainPath, built)
  built.items = undefined // not kept alive (and scanned by every GC) while opening
  const buildMs = since(buildStart)
  console.log(
    `\nbuilt the ${N}-memory device store in ${fmt(buildMs / 1000, 's')} ` +
      `(writes ${fmt(built.writeMs / 1000, 's')} = ${fmt(N / (built.writeMs / 1000), 'w/s')}, compaction ${fmt(built.compactMs, 'ms')})`,
  )

  // One unmeasured warm-up of each, then alternate so drift hits both alike.
  await openDevice(devicePath)
  await openPlain(plainPath, built.roomId)
  const device: OpenTiming[] = []
  const plain: OpenTiming[] = []
  for (let r = 0; r < RUNS; r++) {
    device.push(await openDevice(devicePath))
    plain.push(await openPlain(plainPath, built.roomId))
  }
  const deviceBytes = bytesOnDisk(dir, 'device.db')
  const plainBytes = bytesOnDisk(dir, 'plain.db')
  const devicePayload = await payloadBytes(devicePath)
  const plainPayload = await payloadBytes(plainPath)

  const row = (name: string, runs: OpenTiming[], bytes: number, payload: number): string[] => {
    const open = median(runs.map((r) => r.openMs))
    const list = median(runs.map((r) => r.listMs))
    const total = median(runs.map((r) => r.openMs + r.listMs))
    const base = { open: median(plain.map((r) => r.openMs)), total: median(plain.map((r) => r.openMs + r.listMs)) }
    return [
      name,
      fmt(open, 'ms'),
      fmt(list, 'ms'),
      fmt(total, 'ms'),
      fmt(open / base.open, '×'),
      fmt(total / base.total, '×'),
      fmt(bytes / 1024 / 1024, 'MiB'),
      fmt(payload / 1024 / 1024, 'MiB'),
      fmt(bytes / plainBytes, '×'),
    ]
  }
  printTable(
    `Cold open of a store holding ${N} memories (after compaction), median of ${RUNS} runs; target ≤ 1.5× plain`,
    ['subject', 'open', 'first list', 'open+list', 'open vs plain', 'open+list vs plain', 'on disk', 'payload', 'disk vs plain'],
    [
      row('plain Yjs from sqliteStorage (baseline)', plain, plainBytes, plainPayload),
      row('ContextSync on sqliteStorage', device, deviceBytes, devicePayload),
    ],
  )
}

// ── 2. acknowledged durable writes ────────────────────────────────────────────

interface Writer {
  /** One write; resolves once durable. */
  write(i: number): Promise<unknown>
  close(): Promise<void>
}

async function deviceWriter(path: string): Promise<Writer> {
  const account = await createAccount()
  const storage = sqliteStorage({ path })
  const dev = await ContextSync.open({ account, device: { kind: 'pc', name: 'Bench PC' }, storage, keys: plainKeys() })
  return {
    write: (i) => dev.memory.remember({ text: text(i), tags: [`t${i % 10}`] }),
    close: async () => {
      await dev.close()
      await storage.close()
    },
  }
}

async function plainWriter(path: string): Promise<Writer> {
  const storage = sqliteStorage({ path })
  const doc = new Y.Doc()
  let counter = 0
  let last: Promise<void> = Promise.resolve()
  doc.on('update', (update: Uint8Array) => {
    last = storage.save(['replica', 'plain', 'log', String(counter++).padStart(12, '0')], update)
  })
  const now = Date.now()
  return {
    write: (i) => {
      doc.transact(() =>
        insertMemory(doc, {
          id: `m${i.toString(36).padStart(6, '0')}`,
          text: text(i),
          scope: 'personal',
          kind: 'fact',
          tags: [`t${i % 10}`],
          createdAt: now,
          updatedAt: now,
          source: { deviceId: 'd'.repeat(32) },
        }),
      )
      return last
    },
    close: async () => {
      await storage.close()
      doc.destroy()
    },
  }
}

interface WriteRun {
  ms: number
  latencies: number[]
  bytes: number
}

async function writeRun(dir: string, name: string, make: (path: string) => Promise<Writer>, mode: 'burst' | 'single'): Promise<WriteRun> {
  const path = join(dir, `${name}.db`)
  const writer = await make(path)
  collectGarbage()
  const latencies: number[] = []
  const start = performance.now()
  if (mode === 'burst') {
    const writes: Array<Promise<unknown>> = []
    for (let i = 0; i < BURST; i++) writes.push(writer.write(i))
    await Promise.all(writes)
  } else {
    for (let i = 0; i < SINGLE; i++) {
      const t = performance.now()
      await writer.write(i)
      latencies.push(since(t))
    }
  }
  const ms = since(start)
  await writer.close()
  const bytes = bytesOnDisk(dir, `${name}.db`)
  rmSync(path, { force: true })
  return { ms, latencies, bytes }
}

async function benchWrites(dir: string): Promise<void> {
  const subjects: Array<[string, string, (path: string) => Promise<Writer>]> = [
    ['plain Yjs, save per update (baseline)', 'plain', plainWriter],
    ['ContextSync on sqliteStorage', 'device', deviceWriter],
  ]
  const burst = new Map<string, WriteRun[]>()
  const single = new Map<string, WriteRun[]>()
  for (const [, key] of subjects) {
    burst.set(key, [])
    single.set(key, [])
  }
  for (let r = 0; r < RUNS; r++) {
    for (const [, key, make] of subjects) {
      burst.get(key)!.push(await writeRun(dir, `${key}-burst-${r}`, make, 'burst'))
      single.get(key)!.push(await writeRun(dir, `${key}-single-${r}`, make, 'single'))
    }
  }
  const summary = (runs: WriteRun[]) => ({
    ms: median(runs.map((x) => x.ms)),
    bytes: median(runs.map((x) => x.bytes)),
    p50: median(runs.map((x) => percentile(x.latencies, 50))),
    p99: median(runs.map((x) => percentile(x.latencies, 99))),
  })
  const plainBurst = summary(burst.get('plain')!)
  const plainSingle = summary(single.get('plain')!)
  printTable(
    `Burst: Promise.all of ${BURST} durable writes (synchronous=FULL), median of ${RUNS} runs; bytes = files after close`,
    ['subject', 'throughput', 'time', 'time vs plain', 'on disk', 'disk vs plain'],
    subjects.map(([name, key]) => {
      const s = summary(burst.get(key)!)
      return [name, fmt(BURST / (s.ms / 1000), 'w/s'), fmt(s.ms, 'ms'), fmt(s.ms / plainBurst.ms, '×'), fmt(s.bytes / 1024, 'KiB'), fmt(s.bytes / plainBurst.bytes, '×')]
    }),
  )
  printTable(
    `One at a time: ${SINGLE} awaited durable writes, median of ${RUNS} runs`,
    ['subject', 'throughput', 'p50', 'p99', 'p50 vs plain', 'p99 vs plain', 'on disk', 'disk vs plain'],
    subjects.map(([name, key]) => {
      const s = summary(single.get(key)!)
      return [
        name,
        fmt(SINGLE / (s.ms / 1000), 'w/s'),
        fmt(s.p50, 'ms'),
        fmt(s.p99, 'ms'),
        fmt(s.p50 / plainSingle.p50, '×'),
        fmt(s.p99 / plainSingle.p99, '×'),
        fmt(s.bytes / 1024, 'KiB'),
        fmt(s.bytes / plainSingle.bytes, '×'),
      ]
    }),
  )
}

/** Run the storage benchmark and print its tables. */
export async function benchStorage(): Promise<void> {
  const dir = process.env.BENCH_STORE_DIR ?? mkdtempSync(join(tmpdir(), 'contextsync-bench-storage-'))
  try {
    await benchColdOpen(dir)
    await benchWrites(dir)
  } finally {
    if (!process.env.BENCH_STORE_DIR) rmSync(dir, { recursive: true, force: true })
  }
}
