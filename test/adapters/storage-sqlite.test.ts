import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync, writeSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterEach, describe, expect, it } from 'vitest'
import { sqliteStorage, type SqliteStorage } from '../../src/adapters/sqlite-storage.js'
import { runStorageAdapterTests } from '../../src/adapters/storage-conformance.js'
import { ConfigError, ValidationError } from '../../src/errors.js'
import { requireOptional } from '../../src/adapters/optional-module.js'

runStorageAdapterTests(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-sqlite-'))
  return { adapter: sqliteStorage({ path: join(dir, 'store.db') }), teardown: async () => rmSync(dir, { recursive: true, force: true }) }
}, 'sqliteStorage')

describe('sqliteStorage', () => {
  const dirs: string[] = []
  const opened: SqliteStorage[] = []
  const tempPath = (name = 'store.db'): string => {
    const dir = mkdtempSync(join(tmpdir(), 'contextsync-sqlite-'))
    dirs.push(dir)
    return join(dir, name)
  }
  const open = (options: Parameters<typeof sqliteStorage>[0]): SqliteStorage => {
    const s = sqliteStorage(options)
    opened.push(s)
    return s
  }
  afterEach(async () => {
    for (const s of opened.splice(0)) await s.close()
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  /** A closed store with enough data to span many pages. */
  const filledStore = async (): Promise<string> => {
    const path = tempPath()
    const s = sqliteStorage({ path })
    await Promise.all(Array.from({ length: 400 }, (_, i) => s.save(['log', String(i).padStart(4, '0')], new Uint8Array(3000).fill(i & 0xff))))
    await s.close()
    return path
  }

  it('persists across instances, including overwrites and removals, and creates parent dirs when asked', async () => {
    const path = join(tempPath(), '..', 'nested', 'deeper', 'store.db')
    const a = open({ path, createDirectory: true })
    await a.save(['keep'], new Uint8Array([1, 2, 3]))
    await a.save(['over'], new Uint8Array([1]))
    await a.save(['over'], new Uint8Array([9, 9]))
    await a.save(['gone'], new Uint8Array([4]))
    await a.save(['range', 'x'], new Uint8Array([5]))
    await a.remove(['gone'])
    await a.removeRange(['range'])
    await a.close()

    const b = open({ path })
    await expect(b.ready()).resolves.toBeUndefined()
    expect(await b.loadRange([])).toEqual([
      { key: ['keep'], data: new Uint8Array([1, 2, 3]) },
      { key: ['over'], data: new Uint8Array([9, 9]) },
    ])
  })

  it('a resolved save is visible to another connection at once (committed, not buffered)', async () => {
    const path = tempPath()
    const s = open({ path })
    await Promise.all([s.save(['a'], new Uint8Array([1])), s.save(['b'], new Uint8Array([2]))])
    const other = new Database(path, { readonly: true })
    try {
      expect(other.prepare('SELECT count(*) AS n FROM chunks').get()).toEqual({ n: 2 })
    } finally {
      other.close()
    }
    const second = open({ path })
    expect((await second.loadRange([])).map((c) => c.key)).toEqual([['a'], ['b']])
  })

  it('runs in WAL mode, and closing checkpoints so the file reopens clean', async () => {
    const path = tempPath()
    const s = open({ path })
    await s.save(['k'], new Uint8Array(5000).fill(7))
    expect(existsSync(`${path}-wal`)).toBe(true)
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(0)
    const peek = new Database(path, { readonly: true })
    expect(peek.pragma('journal_mode', { simple: true })).toBe('wal')
    peek.close()
    await s.close()
    expect(existsSync(`${path}-wal`)).toBe(false)

    const check = new Database(path, { readonly: true })
    expect(check.pragma('integrity_check', { simple: true })).toBe('ok')
    check.close()
    const again = open({ path, integrityCheck: true })
    await expect(again.ready()).resolves.toBeUndefined()
    expect(await again.load(['k'])).toEqual(new Uint8Array(5000).fill(7))
  })

  it('gives the pages of removed chunks back to the file system (incremental auto-vacuum)', async () => {
    const path = tempPath()
    const s = open({ path })
    const chunk = (i: number) => ['replica', 'room', 'log', String(i).padStart(5, '0')]
    // Many small chunks, then a compaction-like batch: one merged chunk in, all the old ones out.
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 300 }, (_, i) => s.save(chunk(round * 300 + i), randomBytes(2000))))
      await s.removeRange(['replica', 'room', 'log'])
      await s.save(chunk(99_999), randomBytes(20_000))
    }
    await s.close()
    // Live data is ~20 KB; without vacuuming the file keeps its ~600 KB high-water mark.
    expect(statSync(path).size).toBeLessThan(300_000)
    const peek = new Database(path, { readonly: true })
    expect(peek.pragma('auto_vacuum', { simple: true })).toBe(2)
    peek.close()
  })

  it('converts a store created without auto-vacuum once, keeping its data', async () => {
    const path = await filledStore()
    const raw = new Database(path)
    raw.pragma('auto_vacuum = NONE')
    raw.exec('VACUUM')
    expect(raw.pragma('auto_vacuum', { simple: true })).toBe(0)
    raw.close()
    const s = open({ path })
    expect(await s.load(['log', '0007'])).toEqual(new Uint8Array(3000).fill(7))
    await s.close()
    const peek = new Database(path, { readonly: true })
    expect(peek.pragma('auto_vacuum', { simple: true })).toBe(2)
    expect(peek.pragma('integrity_check', { simple: true })).toBe('ok')
    peek.close()
  })

  it("rejects a file of random bytes with 'not-a-store' and leaves it untouched", async () => {
    const path = tempPath()
    const junk = randomBytes(64 * 1024)
    writeFileSync(path, junk)
    const s = open({ path })
    await expect(s.ready()).rejects.toMatchObject({ name: 'StorageError', code: 'not-a-store' })
    await expect(s.load(['k'])).rejects.toMatchObject({ code: 'not-a-store' })
    await expect(s.save(['k'], new Uint8Array([1]))).rejects.toMatchObject({ code: 'not-a-store' })
    await s.close()
    expect(readFileSync(path).equals(junk)).toBe(true)
  })

  it("rejects another application's SQLite database with 'not-a-store' and does not modify it", async () => {
    const path = tempPath('other-app.db')
    const other = new Database(path)
    other.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('hello')")
    other.close()
    const before = readFileSync(path)
    const s = open({ path })
    await expect(s.ready()).rejects.toMatchObject({ code: 'not-a-store' })
    await expect(s.loadRange([])).rejects.toMatchObject({ code: 'not-a-store' })
    await s.close()
    expect(readFileSync(path).equals(before)).toBe(true)
    const reopened = new Database(path)
    expect(reopened.pragma('journal_mode', { simple: true })).toBe('delete') // we did not switch it to WAL
    reopened.close()
  })

  it("rejects a store written by a newer format with 'not-a-store'", async () => {
    const path = tempPath()
    await sqliteStorage({ path }).close()
    const db = new Database(path)
    db.prepare("UPDATE contextsync_meta SET value = '99' WHERE name = 'format'").run()
    db.close()
    await expect(open({ path }).ready()).rejects.toMatchObject({ code: 'not-a-store', message: expect.stringContaining('format 99') })
  })

  it("reports a truncated store as 'corrupt'", async () => {
    const path = await filledStore()
    truncateSync(path, Math.floor(statSync(path).size / 2))
    const s = open({ path })
    // Depending on where the damage lands, opening or the first full read notices it.
    const outcome = await s.ready().then(() => s.loadRange([]))
      .then(() => 'no error', (e: unknown) => e)
    expect(outcome).toMatchObject({ name: 'StorageError', code: 'corrupt' })
  })

  it("reports garbled pages as 'corrupt' — at open with integrityCheck, else on the read that hits them", async () => {
    const path = await filledStore()
    const fd = openSync(path, 'r+')
    writeSync(fd, Buffer.alloc(4 * 4096, 0xab), 0, 4 * 4096, 8 * 4096)
    closeSync(fd)

    const checked = open({ path, integrityCheck: true })
    await expect(checked.ready()).rejects.toMatchObject({ code: 'corrupt' })
    await checked.close()

    const lazy = open({ path })
    await expect(lazy.ready()).resolves.toBeUndefined()
    await expect(lazy.loadRange(['log'])).rejects.toMatchObject({ code: 'corrupt' })
  })

  it("reports an unopenable path as 'io'", async () => {
    const dir = join(tempPath(), '..')
    await expect(open({ path: dir }).ready()).rejects.toMatchObject({ code: 'io' })
  })

  it("maps a full database to 'quota-exceeded', writing nothing of the failed batch", async () => {
    const path = tempPath()
    const s = open({ path, maxSizeBytes: 256 * 1024 })
    await s.save(['small'], new Uint8Array(1000).fill(1))
    const results = await Promise.allSettled([
      s.save(['before-big'], new Uint8Array([2])),
      s.save(['big'], new Uint8Array(1024 * 1024).fill(3)),
    ])
    for (const r of results) {
      expect(r.status).toBe('rejected')
      expect(r.status === 'rejected' && r.reason).toMatchObject({ name: 'StorageError', code: 'quota-exceeded' })
    }
    // The batch was one transaction: its small write was rolled back with the big one.
    expect((await s.loadRange([])).map((c) => c.key)).toEqual([['small']])
    await s.save(['after'], new Uint8Array([4]))
    expect(await s.load(['after'])).toEqual(new Uint8Array([4]))
  })

  it('validates its options synchronously (programmer errors) with ValidationError', () => {
    expect(() => (sqliteStorage as (o?: unknown) => unknown)()).toThrow(ValidationError)
    expect(() => (sqliteStorage as (o?: unknown) => unknown)()).toThrow(/sqliteStorage\(options\): options must be an object with a path/)
    expect(() => sqliteStorage({ path: '' })).toThrow(ValidationError)
    expect(() => sqliteStorage({ path: 'x.db', synchronous: 'off' as 'full' })).toThrow(ValidationError)
    expect(() => sqliteStorage({ path: 'x.db', maxSizeBytes: -1 })).toThrow(ValidationError)
    expect(() => sqliteStorage({ path: 'x.db', createDirectory: 'yes' as unknown as boolean })).toThrow(ValidationError)
  })

  it('refuses a path whose folder is missing (a typo makes no folders) unless createDirectory is set', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'contextsync-sqlite-folder-'))
    try {
      const nested = join(dir, 'no', 'such', 'folder', 'store.db')
      const refused = sqliteStorage({ path: nested })
      await expect(refused.ready()).rejects.toMatchObject({ name: 'StorageError', code: 'io', message: expect.stringMatching(/folder of .* does not exist; create it, or pass createDirectory: true/) })
      await expect(refused.load(['k'])).rejects.toMatchObject({ code: 'io' })
      await refused.close()
      expect(existsSync(join(dir, 'no'))).toBe(false)
      const created = sqliteStorage({ path: nested, createDirectory: true })
      await created.save(['k'], new Uint8Array([1]))
      expect(await created.load(['k'])).toEqual(new Uint8Array([1]))
      await created.close()
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('optional native dependencies', () => {
  it('a missing one is a ConfigError that names the install command', () => {
    expect(() => requireOptional('contextsync-no-such-module', 'contextsync/sqlite')).toThrow(ConfigError)
    expect(() => requireOptional('contextsync-no-such-module', 'contextsync/sqlite')).toThrow(
      'contextsync/sqlite needs contextsync-no-such-module, which is not installed: run `npm install contextsync-no-such-module`',
    )
    // Installed ones load.
    expect(typeof requireOptional<unknown>('better-sqlite3', 'contextsync/sqlite')).toBe('function')
  })
})
