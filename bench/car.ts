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
 * Then convergence after an outage: the car offline (`setNetwork({ online: false })`) while it
 * writes BENCH_CAR_QUEUED memories and the phone writes as many on the relay; measured from
 * `setNetwork({ online: true })` until both hold all of them. Baseline — two plain y-websocket
 * clients (`WebsocketProvider`, plain `Y.Doc`s) on a relay without auth: one disconnected while
 * each sets as many map entries of the same texts, measured from its reconnect until both docs
 * hold all. The outage's length does not enter either (neither side retries during it).
 *
 * Environment: BENCH_CAR_WRITES (300 per run), BENCH_CAR_QUEUED (500 per side), BENCH_RUNS (3),
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
import { openCar } from '../adapters/car/index.js'
import { fmt, median, percentile, printTable } from './table.js'

const QUEUED = Number(process.env.BENCH_CAR_QUEUED ?? 500)

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

/** Car and phone through a real relay: ms from back online to both converged. */
async function carOutage(dir: string, run: number): Promise<number> {
  const relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger })
  const transport = websocketTransport({ url: relay.url, maxBackoffTime: 200 })
  const account = await createAccount()
  const phone = await ContextSync.open({ account, device: { kind: 'phone', name: 'Bench phone' }, storage: memoryStorage(), transports: [transport] })
  const car = await openCar({ dataDir: join(dir, `outage-${run}`), relayUrl: relay.url, keys: plainKeys(), maxBackoffTime: 200 })
  try {
    await car.profiles.join({ id: 'bench', invite: (await phone.devices.invite({ kind: 'car' })).code })
    car.setNetwork({ online: false })
    const ids: string[] = []
    await Promise.all([
      (async () => {
        for (let i = 0; i < QUEUED; i++) ids.push((await car.device.memory.remember({ text: text(run, i) })).id)
      })(),
      (async () => {
        for (let i = 0; i < QUEUED; i++) ids.push((await phone.memory.remember({ text: text(run + 1000, i) })).id)
      })(),
    ])
    const start = performance.now()
    car.setNetwork({ online: true })
    await until(() => ids.every((id) => car.device.memory.get(id) !== undefined && phone.memory.get(id) !== undefined))
    return performance.now() - start
  } finally {
    await car.close()
    await phone.close()
    await transport.close()
    await relay.close()
  }
}

/** Two plain y-websocket clients, one cut off: ms from its reconnect to both converged. */
async function plainOutage(run: number): Promise<number> {
  const relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger, auth: 'none' })
  const room = `bench${run}.plain`
  const docs = [new Y.Doc(), new Y.Doc()] as const
  const providers = docs.map((doc) => new WebsocketProvider(relay.url, room, doc, { WebSocketPolyfill: WebSocket as never, disableBc: true, maxBackoffTime: 200 }))
  try {
    await until(() => providers.every((p) => p.synced))
    providers[0]!.disconnect()
    // One transaction per write, as the car seals one envelope per remember.
    for (let i = 0; i < QUEUED; i++) docs[0].getMap('notes').set(`a${i}`, text(run, i))
    for (let i = 0; i < QUEUED; i++) docs[1].getMap('notes').set(`b${i}`, text(run + 1000, i))
    const start = performance.now()
    providers[0]!.connect()
    await until(() => docs.every((d) => d.getMap('notes').size === 2 * QUEUED))
    return performance.now() - start
  } finally {
    // The provider made its own Awareness, whose timer outlives destroy(): end it too, or the
    // process never exits.
    for (const p of providers) {
      p.destroy()
      p.awareness.destroy()
    }
    await relay.close()
  }
}

async function benchOutage(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_CAR_DIR ?? tmpdir(), 'contextsync-bench-outage-'))
  const subject: number[] = []
  const baseline: number[] = []
  try {
    for (let run = 0; run < RUNS; run++) {
      subject.push(await carOutage(dir, run))
      baseline.push(await plainOutage(run))
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  const s = median(subject)
  const b = median(baseline)
  printTable(
    `car: convergence after an outage, ${QUEUED} writes queued on each side (median of ${RUNS})`,
    ['from back online to converged', 'car ⇄ phone (sealed, via relay)', 'plain y-websocket clients', 'ratio'],
    [['time', fmt(s, 'ms'), fmt(b, 'ms'), `${fmt(s / b)}x`]],
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
