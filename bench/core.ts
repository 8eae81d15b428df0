/**
 * Core benchmark: memory-shaped writes between two devices in one process.
 *
 * Baseline: plain Yjs doc-to-doc sync (each update applied to the other doc), the same data — a
 * Y.Map of 6 fields per memory, one transaction per write.
 * Subject: two E2EE replicas (batching, sealing, signing, verifying, decrypting, storing to memory
 * storage), their sealed logs synced doc-to-doc the same way. Also the full `ContextSync` facade
 * (validation, search index, change events) over the loopback network, for reference.
 */
import * as Y from 'yjs'
import { memoryStorage } from '../src/adapters/memory-storage.js'
import { insertMemory, memoriesMap, type MemoryItem } from '../src/crdt/memory.js'
import { createAccountKeys, createDeviceKeys, ownerKeyring, randomBytes, ready, type DeviceKeys } from '../src/crypto/index.js'
import { Replica } from '../src/sync/replica.js'
import { ContextSync, createAccount, loopbackNetwork } from '../src/index.js'
import { fmt, median, percentile, printTable } from './table.js'

const N = Number(process.env.BENCH_WRITES ?? 20_000)
const SINGLE = Number(process.env.BENCH_SINGLE ?? 2_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 3)

function memory(i: number, deviceId: string): MemoryItem {
  const now = Date.now()
  return {
    id: `m${i.toString(36).padStart(6, '0')}`,
    text: `Remembered fact number ${i}: likes ${i % 2 ? 'tea' : 'coffee'} at ${i % 24}:00`,
    scope: 'personal',
    kind: 'fact',
    tags: [`t${i % 10}`],
    createdAt: now,
    updatedAt: now,
    source: { deviceId: 'd'.repeat(32) },
  }
}

interface Pair {
  write(i: number): void
  received(): number
  /** Bytes a holder of the synced state stores. */
  storedBytes(): number
  compact(): Promise<void>
  settle(): Promise<void>
  close(): Promise<void>
}

function plainPair(): Pair {
  const a = new Y.Doc()
  const b = new Y.Doc()
  a.on('update', (u: Uint8Array) => Y.applyUpdate(b, u))
  return {
    write: (i) => a.transact(() => insertMemory(a, memory(i, 'plain'))),
    received: () => memoriesMap(b).size,
    storedBytes: () => Y.encodeStateAsUpdate(b).length,
    compact: async () => {},
    settle: async () => {},
    close: async () => {
      a.destroy()
      b.destroy()
    },
  }
}

async function replicaPair(): Promise<Pair> {
  await ready()
  const account = createAccountKeys()
  const keyring = ownerKeyring(account)
  const devices = [createDeviceKeys(), createDeviceKeys()] as [DeviceKeys, DeviceKeys]
  const directory = {
    resolve: (id: string) => {
      const d = devices.find((x) => x.deviceId === id)
      return d ? ({ status: 'known', signPublicKey: d.signPublicKey } as const) : ({ status: 'unknown' } as const)
    },
  }
  const make = (d: DeviceKeys) =>
    new Replica({
      scope: 'personal',
      roomId: keyring.roomId('personal'),
      keyring,
      directory,
      storage: memoryStorage(),
      atRestKey: randomBytes(32),
      signer: { sender: d.deviceIdBytes, senderId: d.deviceId, signSecretKey: d.signSecretKey },
      compaction: { maxEntries: 256 },
    })
  const a = make(devices[0])
  const b = make(devices[1])
  await a.load()
  await b.load()
  a.outer.on('update', (u: Uint8Array, origin: unknown) => {
    if (origin !== 'peer') Y.applyUpdate(b.outer, u, 'peer')
  })
  b.outer.on('update', (u: Uint8Array, origin: unknown) => {
    if (origin !== 'peer') Y.applyUpdate(a.outer, u, 'peer')
  })
  return {
    write: (i) => a.inner.transact(() => insertMemory(a.inner, memory(i, devices[0].deviceId))),
    received: () => memoriesMap(b.inner).size,
    storedBytes: () => Y.encodeStateAsUpdate(b.outer).length,
    compact: () => a.compactNow(),
    settle: () => a.whenFlushed(),
    close: async () => {
      await a.close()
      await b.close()
    },
  }
}

async function facadePair(): Promise<Pair> {
  const account = await createAccount()
  const net = loopbackNetwork({ seed: 1 })
  const a = await ContextSync.open({ account, device: { kind: 'phone' }, storage: memoryStorage(), transports: [net.transport()] })
  const b = await ContextSync.open({ account, device: { kind: 'pc' }, storage: memoryStorage(), transports: [net.transport()] })
  let count = 0
  b.memory.on('change', (e) => {
    if (e.type === 'added') count++
  })
  return {
    write: (i) => {
      void a.memory.remember({ text: memory(i, '').text, tags: [`t${i % 10}`] })
    },
    received: () => count,
    storedBytes: () => Y.encodeStateAsUpdate(b.replica('personal')!.outer).length,
    compact: () => a.replica('personal')!.compactNow(),
    settle: async () => {
      await a.flush()
      await net.settle()
    },
    close: async () => {
      await a.close()
      await b.close()
      net.destroy()
    },
  }
}

async function waitFor(pair: Pair, count: number): Promise<void> {
  while (pair.received() < count) {
    await pair.settle()
    if (pair.received() < count) await new Promise((r) => setImmediate(r))
  }
}

async function burst(make: () => Promise<Pair> | Pair): Promise<{ ms: number; bytes: number }> {
  const pair = await make()
  const start = performance.now()
  for (let i = 0; i < N; i++) pair.write(i)
  await waitFor(pair, N)
  const ms = performance.now() - start
  await pair.compact()
  await pair.settle()
  const bytes = pair.storedBytes()
  await pair.close()
  return { ms, bytes }
}

async function single(make: () => Promise<Pair> | Pair): Promise<number[]> {
  const pair = await make()
  const latencies: number[] = []
  for (let i = 0; i < SINGLE; i++) {
    const start = performance.now()
    pair.write(i)
    await waitFor(pair, i + 1)
    latencies.push(performance.now() - start)
  }
  await pair.close()
  return latencies
}

/** Run the core benchmark and print its tables. */
export async function benchCore(): Promise<void> {
  const subjects: Array<[string, () => Promise<Pair> | Pair]> = [
    ['plain Yjs doc-to-doc (baseline)', plainPair],
    ['E2EE replicas', replicaPair],
    ['ContextSync facade (loopback)', facadePair],
  ]
  const burstRows: string[][] = []
  const singleRows: string[][] = []
  let plainBurst = 0
  let plainBytes = 0
  let plainP50 = 0
  let plainP99 = 0
  for (const [name, make] of subjects) {
    const runs: Array<{ ms: number; bytes: number }> = []
    for (let r = 0; r < RUNS; r++) runs.push(await burst(make))
    const ms = median(runs.map((x) => x.ms))
    const bytes = runs[0]!.bytes
    if (!plainBurst) {
      plainBurst = ms
      plainBytes = bytes
    }
    const perWriteUs = (ms * 1000) / N
    const extraUs = ((ms - plainBurst) * 1000) / N
    burstRows.push([
      name,
      fmt(N / (ms / 1000), 'w/s'),
      fmt(perWriteUs, 'µs'),
      plainBurst === ms ? '—' : fmt(extraUs, 'µs'),
      fmt(ms / plainBurst, '×'),
      fmt(bytes / 1024, 'KiB'),
      fmt(bytes / plainBytes, '×'),
    ])
    const lat = await single(make)
    const p50 = percentile(lat, 50)
    const p99 = percentile(lat, 99)
    if (!plainP50) {
      plainP50 = p50
      plainP99 = p99
    }
    singleRows.push([name, fmt(SINGLE / (lat.reduce((a, b) => a + b, 0) / 1000), 'w/s'), fmt(p50 * 1000, 'µs'), fmt(p99 * 1000, 'µs'), fmt(p50 / plainP50, '×'), fmt(p99 / plainP99, '×')])
  }
  printTable(
    `Burst: ${N} memory writes, median of ${RUNS} runs (bytes = receiver's sealed log / plain state after compaction)`,
    ['subject', 'throughput', 'per write', 'extra/write', 'time vs plain', 'stored', 'bytes vs plain'],
    burstRows,
  )
  printTable(
    `One at a time: ${SINGLE} writes, each awaited until the receiver has it`,
    ['subject', 'throughput', 'p50', 'p99', 'p50 vs plain', 'p99 vs plain'],
    singleRows,
  )
}
