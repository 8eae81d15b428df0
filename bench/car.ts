/**
 * Head-unit benchmark (BENCH=car): a durable acknowledged write on the car's profile against a
 * plain SQLite insert with the same durability, in the same run.
 *
 * Subject — `car.device.memory.remember({ text })` awaited one at a time on a profile opened by
 * `openCar` (SQLite, WAL, `synchronous=FULL`: the promise resolves once the envelope's chunk is
 * fsynced); the profile is paired with a phone over the in-process loopback network, so no socket
 * is in the measurement. Baseline — better-sqlite3 on its own file with the same pragmas
 * (`journal_mode=WAL`, `synchronous=FULL`), one autocommitted `INSERT` of the same text per write.
 * Both on the same disk, alternating runs; p50 and p99 per write over every run.
 *
 * Then convergence after a real outage of BENCH_CAR_OUTAGE_S seconds (600): a TCP proxy in front
 * of the relay drops every connection and refuses new ones, the same outage for every pair. Behind
 * it: a car profile whose host does not notice (it only backs off, jittered, up to its default
 * cap), a second car whose host reports connectivity at the return (`setNetwork({ online: true })`),
 * and one of two plain y-websocket clients (`WebsocketProvider` with its default backoff, plain
 * `Y.Doc`s, a relay without auth). Each car writes BENCH_CAR_QUEUED memories meanwhile and its
 * phone (on the relay directly) as many; the plain clients set as many map entries of the same
 * texts each. Every client keeps retrying through the whole outage, so its backoff stands where
 * ten minutes leave it; measured from the proxy's return: its first forwarded connection per pair
 * (the reconnect delay) and until both sides hold everything.
 *
 * Environment: BENCH_CAR_WRITES (300 per run), BENCH_CAR_QUEUED (500 per side), BENCH_RUNS (3),
 * BENCH_CAR_OUTAGE_S (600), BENCH_CAR_OUTAGE_RUNS (1 — each run is one whole outage),
 * BENCH_CAR_DIR (where the files go; default a temp dir — on a tmpfs `/tmp` fsync costs nothing,
 * so point it at the disk under test).
 */
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { ContextSync, createAccount, loopbackNetwork, memoryStorage, plainKeys } from '../src/index.js'
import { websocketTransport } from '../src/entries/websocket-node.js'
import { createRelay, silentLogger } from '../src/relay/index.js'
import { CAR_MAX_BACKOFF_MS, openCar } from '../adapters/car/index.js'
import { outageProxy, type OutageProxy } from './outage-proxy.js'
import { fmt, median, percentile, printTable } from './table.js'

const QUEUED = Number(process.env.BENCH_CAR_QUEUED ?? 500)
/** Length of the real outage (s): the backoff state it leaves decides how soon each client returns. */
const OUTAGE_S = Number(process.env.BENCH_CAR_OUTAGE_S ?? 600)
const OUTAGE_RUNS = Math.max(1, Number(process.env.BENCH_CAR_OUTAGE_RUNS ?? 1))

const WRITES = Number(process.env.BENCH_CAR_WRITES ?? 300)
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))

const text = (run: number, i: number) => `Parked on level ${i % 7}, row ${run}.${i}; charger ${i % 3 ? 'free' : 'busy'}`

/** Run both benchmarks and print their tables. */
export async function benchCar(): Promise<void> {
  await benchDurableWrite()
  await benchOutage()
}

async function until(predicate: () => boolean, timeoutMs = 120_000): Promise<void> {
  const start = performance.now()
  while (!predicate()) {
    if (performance.now() - start > timeoutMs) throw new Error('bench: did not converge')
    await new Promise((r) => setTimeout(r, 2))
  }
}

/** What one client pair measured from the moment the network returned. */
interface OutageResult {
  /** Until its proxy forwarded the first connection again: the client's backoff state at the return. */
  reconnectMs: number
  /** Until both sides held every write of both. */
  convergeMs: number
}

/** A client pair in the outage: write while cut off, then wait for convergence after `returnedAt`. */
interface OutagePair {
  proxy: OutageProxy
  writeQueued(): Promise<void>
  converged(): boolean
  /** Called the instant the network returns (the car told by its host, when it is). */
  onReturn(): void
  close(): Promise<void>
}

/** A car profile behind `proxy` and its phone straight on the relay; `hostSignal`: the host reports the return. */
async function carPair(relayUrl: string, dir: string, hostSignal: boolean): Promise<OutagePair> {
  const proxy = await outageProxy(relayUrl)
  const transport = websocketTransport({ url: relayUrl })
  const account = await createAccount()
  const phone = await ContextSync.open({ account, device: { kind: 'phone', name: 'Bench phone' }, storage: memoryStorage(), transports: [transport] })
  // The car's own reconnect policy: jittered, capped at its default (CAR_MAX_BACKOFF_MS).
  const car = await openCar({ dataDir: dir, relayUrl: proxy.url, keys: plainKeys() })
  await car.profiles.join({ id: 'bench', invite: (await phone.devices.invite({ kind: 'car' })).code })
  const ids: string[] = []
  return {
    proxy,
    writeQueued: async () => {
      await Promise.all([
        (async () => {
          for (let i = 0; i < QUEUED; i++) ids.push((await car.device.memory.remember({ text: text(0, i) })).id)
        })(),
        (async () => {
          for (let i = 0; i < QUEUED; i++) ids.push((await phone.memory.remember({ text: text(1000, i) })).id)
        })(),
      ])
    },
    converged: () => ids.every((id) => car.device.memory.get(id) !== undefined && phone.memory.get(id) !== undefined),
    onReturn: () => {
      if (hostSignal) car.setNetwork({ online: true })
    },
    close: async () => {
      await car.close()
      await phone.close()
      await transport.close()
      await proxy.close()
    },
  }
}

/** Two plain y-websocket clients (their default backoff), the first behind `proxy`. */
async function plainPair(relayUrl: string): Promise<OutagePair> {
  const proxy = await outageProxy(relayUrl)
  const docs = [new Y.Doc(), new Y.Doc()] as const
  const providers = [proxy.url, relayUrl].map((url, i) => new WebsocketProvider(url, 'bench.plain', docs[i]!, { WebSocketPolyfill: WebSocket as never, disableBc: true }))
  await until(() => providers.every((p) => p.synced))
  return {
    proxy,
    writeQueued: async () => {
      // One transaction per write, as the car seals one envelope per remember.
      for (let i = 0; i < QUEUED; i++) docs[0].getMap('notes').set(`a${i}`, text(0, i))
      for (let i = 0; i < QUEUED; i++) docs[1].getMap('notes').set(`b${i}`, text(1000, i))
    },
    converged: () => docs.every((d) => d.getMap('notes').size === 2 * QUEUED),
    onReturn: () => {},
    close: async () => {
      // The provider made its own Awareness, whose timer outlives destroy(): end it too, or the
      // process never exits.
      for (const p of providers) {
        p.destroy()
        p.awareness.destroy()
      }
      await proxy.close()
    },
  }
}

/**
 * One real outage of OUTAGE_S seconds for every pair at once (the same outage), each pair
 * reporting from the network's return.
 */
async function outageRun(dir: string, run: number): Promise<OutageResult[]> {
  const relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger })
  const plainRelay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger, auth: 'none' })
  const pairs: OutagePair[] = []
  try {
    pairs.push(await carPair(relay.url, join(dir, `car-${run}`), false))
    pairs.push(await carPair(relay.url, join(dir, `car-signal-${run}`), true))
    pairs.push(await plainPair(plainRelay.url))
    await new Promise((r) => setTimeout(r, 500))
    const wentDown = performance.now()
    for (const pair of pairs) pair.proxy.setDown(true)
    await Promise.all(pairs.map((pair) => pair.writeQueued()))
    const left = OUTAGE_S * 1000 - (performance.now() - wentDown)
    if (left > 0) await new Promise((r) => setTimeout(r, left))
    const returned = performance.now()
    for (const pair of pairs) pair.proxy.setDown(false)
    for (const pair of pairs) pair.onReturn()
    const results: Array<Partial<OutageResult>> = pairs.map(() => ({}))
    await until(() => {
      const now = performance.now()
      pairs.forEach((pair, i) => {
        const r = results[i]!
        const first = pair.proxy.accepted.find((t) => t >= returned)
        if (r.reconnectMs === undefined && first !== undefined) r.reconnectMs = first - returned
        if (r.convergeMs === undefined && pair.converged()) r.convergeMs = now - returned
      })
      return results.every((r) => r.convergeMs !== undefined && r.reconnectMs !== undefined)
    }, 300_000)
    return results as OutageResult[]
  } finally {
    for (const pair of pairs) await pair.close()
    await relay.close()
    await plainRelay.close()
  }
}

async function benchOutage(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_CAR_DIR ?? tmpdir(), 'contextsync-bench-outage-'))
  const runs: OutageResult[][] = []
  try {
    for (let run = 0; run < OUTAGE_RUNS; run++) runs.push(await outageRun(dir, run))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const column = (i: number, key: keyof OutageResult) => median(runs.map((r) => r[i]![key]))
  const row = (name: string, key: keyof OutageResult) => {
    const [car, signalled, plain] = [column(0, key), column(1, key), column(2, key)]
    return [name, fmt(car, 'ms'), fmt(signalled, 'ms'), fmt(plain, 'ms'), `${fmt(car / plain)}x`, `${fmt(signalled / plain)}x`]
  }
  printTable(
    `car: a real ${OUTAGE_S} s outage (TCP proxy dropping everything), ${QUEUED} writes queued on each side, all pairs in the same outage (median of ${OUTAGE_RUNS}); ` +
      `backoff caps: car ${CAR_MAX_BACKOFF_MS} ms jittered ½–1×, y-websocket 2500 ms`,
    ['from the network’s return', 'car, no host signal', 'car, host reports online', 'plain y-websocket', 'car / plain', 'signalled / plain'],
    [row('first reconnect', 'reconnectMs'), row('both converged', 'convergeMs')],
  )
}

async function benchDurableWrite(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_CAR_DIR ?? tmpdir(), 'contextsync-bench-car-'))
  const net = loopbackNetwork({ seed: 7 })
  const account = await createAccount()
  const phone = await ContextSync.open({ account, device: { kind: 'phone', name: 'Bench phone' }, storage: memoryStorage(), transports: [net.transport()] })
  const car = await openCar({ dataDir: join(dir, 'car'), keys: plainKeys(), transport: () => net.transport() })
  const SqliteDatabase = createRequire(import.meta.url)('better-sqlite3') as typeof Database
  const db = new SqliteDatabase(join(dir, 'plain.db'))
  try {
    await car.profiles.join({ id: 'bench', invite: (await phone.devices.invite({ kind: 'car' })).code })
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)')
    const insert = db.prepare('INSERT INTO notes (text) VALUES (?)')
    const subject: number[] = []
    const baseline: number[] = []
    for (let run = 0; run < RUNS; run++) {
      for (let i = 0; i < WRITES; i++) {
        const start = performance.now()
        await car.device.memory.remember({ text: text(run, i), scope: 'location' })
        subject.push(performance.now() - start)
      }
      for (let i = 0; i < WRITES; i++) {
        const start = performance.now()
        insert.run(text(run, i))
        baseline.push(performance.now() - start)
      }
    }
    const row = (name: string, p: number) => {
      const s = percentile(subject, p)
      const b = percentile(baseline, p)
      return [name, fmt(s, 'ms'), fmt(b, 'ms'), `${fmt(s / b)}x`]
    }
    printTable(
      `car: durable acknowledged write, one at a time (${RUNS} × ${WRITES} writes, synchronous=FULL both)`,
      ['per write', 'car profile remember', 'plain SQLite INSERT', 'ratio'],
      [row('p50', 50), row('p99', 99)],
    )
  } finally {
    db.close()
    await car.close()
    await phone.close()
    net.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}
