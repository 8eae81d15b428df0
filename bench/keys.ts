/**
 * `BENCH=keys`: what a key protector costs at open (README "Keys at rest"). A device store on
 * SQLite holding a few memories is reopened, each run timing `ContextSync.open` until it resolves:
 * baseline — no protector (plain records); subject — `passphraseKeys` at its default cost
 * (Argon2id, 2 passes, 64 MiB: libsodium's interactive profile, chosen for phones) and at
 * libsodium's moderate profile (3 passes, 256 MiB) for comparison. Enrolment (first open) pays one
 * wrap, and a reopen one unwrap of both records with one derivation (the key is cached per salt).
 *
 * Environment: BENCH_KEYS_OPENS (7 per protector), BENCH_RUNS.
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { sqliteStorage } from '../src/adapters/sqlite-storage.js'
import { ContextSync, createAccount, passphraseKeys, plainKeys, type KeyProtector } from '../src/index.js'
import { fmt, median, printTable } from './table.js'

const OPENS = Math.max(3, Number(process.env.BENCH_KEYS_OPENS ?? 7))

async function opens(make: () => KeyProtector): Promise<{ enrol: number; reopen: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-bench-keys-'))
  try {
    const path = join(dir, 'device.db')
    let started = performance.now()
    const keys = make()
    const first = await ContextSync.open({ account: await createAccount(), device: { kind: 'phone' }, storage: sqliteStorage({ path }), keys })
    const enrol = performance.now() - started
    await first.memory.remember({ text: 'one memory so the store is not empty' })
    await first.close()
    const times: number[] = []
    for (let i = 0; i < OPENS; i++) {
      const storage = sqliteStorage({ path })
      const again = make()
      started = performance.now()
      const dev = await ContextSync.open({ storage, keys: again })
      times.push(performance.now() - started)
      await dev.close()
      await storage.close()
    }
    return { enrol, reopen: median(times) }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Run the key-protector comparison and print it. */
export async function benchKeys(): Promise<void> {
  const subjects: Array<[string, () => KeyProtector]> = [
    ['plainKeys (plain records) — baseline', () => plainKeys()],
    ['passphraseKeys, default (2 passes, 64 MiB)', () => passphraseKeys('a long enough passphrase')],
    ['passphraseKeys, moderate (3 passes, 256 MiB)', () => passphraseKeys('a long enough passphrase', { opsLimit: 3, memLimit: 256 * 1024 * 1024 })],
  ]
  const results: Array<[string, { enrol: number; reopen: number }]> = []
  for (const [label, make] of subjects) results.push([label, await opens(make)])
  const base = results[0]![1]
  printTable(
    `ContextSync.open on sqliteStorage: first open (enrol, one run) and reopen (median of ${OPENS}), in this process`,
    ['protector', 'enrol', 'reopen', 'reopen / baseline'],
    results.map(([label, r]) => [label, `${fmt(r.enrol)} ms`, `${fmt(r.reopen)} ms`, `${(r.reopen / base.reopen).toFixed(2)}×`]),
  )
}
