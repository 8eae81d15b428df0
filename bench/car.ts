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
 * Then convergence after a real relay outage against plain y-websocket clients in the same outage
 * (bench/car-outage.ts).
 *
 * Environment: BENCH_CAR_WRITES (300 per run), BENCH_RUNS (3); the outage's BENCH_CAR_QUEUED (500
 * per side), BENCH_CAR_OUTAGE_S (600), BENCH_CAR_OUTAGE_RUNS (3), BENCH_CAR_OUTAGE_STAGGER_S (30);
 * BENCH_CAR_DIR (where the files go; default a temp dir — on a tmpfs `/tmp` fsync costs nothing,
 * so point it at the disk under test).
 */
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Database from 'better-sqlite3'
import { ContextSync, createAccount, loopbackNetwork, memoryStorage, plainKeys } from '../src/index.js'
import { openCar } from '../adapters/car/index.js'
import { benchOutage } from './car-outage.js'
import { fmt, percentile, printTable } from './table.js'

const WRITES = Number(process.env.BENCH_CAR_WRITES ?? 300)
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))

const text = (run: number, i: number) => `Parked on level ${i % 7}, row ${run}.${i}; charger ${i % 3 ? 'free' : 'busy'}`

/** Run both benchmarks and print their tables. */
export async function benchCar(): Promise<void> {
  await benchDurableWrite()
  await benchOutage()
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
