/**
 * Keys at rest (README "Keys at rest", THREAT_MODEL.md "Someone who copies a device's disk"): an
 * owner's store copied off its disk yields no seed without the protector's secret; the SQLite
 * file is owner-only; a store of plain records is migrated when opened with a protector.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, ContextSync, createAccount, memoryStorage, passphraseKeys, plainKeys, ValidationError, type KeyProtector } from '../../src/index.js'
import { sqliteStorage } from '../../src/adapters/sqlite-storage.js'
import { decodeAccountKeys, decodeDeviceKeys, decodeStoredKeyRecord } from '../../src/crypto/index.js'

/** Cheap Argon2id for tests (the defaults take a few hundred ms per open). */
const FAST = { opsLimit: 1, memLimit: 8192 }
const dirs: string[] = []
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-keys-'))
  dirs.push(dir)
  return dir
}

/** The seeds an owner's records hold, read with the passphrase (what the copier must not get). */
async function seedsOf(path: string, keys: KeyProtector): Promise<Buffer[]> {
  const storage = sqliteStorage({ path })
  try {
    const out: Buffer[] = []
    for (const [key, label] of [[['keys', 'device'], 'device'], [['keys', 'account'], 'account']] as const) {
      const stored = decodeStoredKeyRecord((await storage.load([...key]))!)!
      const record = 'record' in stored ? stored.record : await keys.unwrap(stored.wrapped, label)
      if (label === 'device') {
        const device = decodeDeviceKeys(record)
        if (!device.ok) throw new Error('device record')
        out.push(Buffer.from(device.value.seeds.sign), Buffer.from(device.value.seeds.box))
      } else {
        const account = decodeAccountKeys(record)
        if (!account.ok || !account.value.rootSeed) throw new Error('account record')
        out.push(Buffer.from(account.value.rootSeed))
      }
    }
    return out
  } finally {
    await storage.close()
  }
}

/** Every byte the store left on disk (database, WAL, shared memory). */
function diskBytes(path: string): Buffer {
  return Buffer.concat(['', '-wal', '-shm'].map((suffix) => {
    try {
      return readFileSync(path + suffix)
    } catch {
      return Buffer.alloc(0)
    }
  }))
}

describe('keys at rest', () => {
  it('a copied owner store yields no seed without the passphrase; with it the device opens as itself', async () => {
    const path = join(tempDir(), 'phone.db')
    const keys = passphraseKeys('correct horse battery staple', FAST)
    const account = await createAccount()
    const phone = await ContextSync.open({ account, device: { kind: 'phone' }, storage: sqliteStorage({ path }), keys })
    const deviceId = phone.deviceId
    await phone.memory.remember({ text: 'kept across the copy' })
    await phone.close()

    // The copier holds every byte of the store: no seed (device signing, box, account root) is among them.
    const seeds = await seedsOf(path, passphraseKeys('correct horse battery staple', FAST))
    const onDisk = diskBytes(path)
    for (const seed of seeds) expect(onDisk.includes(seed)).toBe(false)

    // Without the protector, or with the wrong passphrase, the store does not open.
    await expect(ContextSync.open({ storage: sqliteStorage({ path }) })).rejects.toThrow(/protected \(passphrase\)/)
    await expect(ContextSync.open({ storage: sqliteStorage({ path }), keys: passphraseKeys('wrong', FAST) })).rejects.toThrow(ConfigError)
    await expect(ContextSync.open({ storage: sqliteStorage({ path }), keys: plainKeys() })).rejects.toThrow(/protected by 'passphrase', not 'plain'/)
    const again = await ContextSync.open({ storage: sqliteStorage({ path }), keys: passphraseKeys('correct horse battery staple', FAST) })
    expect(again.deviceId).toBe(deviceId)
    expect(again.memory.list().map((m) => m.text)).toEqual(['kept across the copy'])
    await again.close()
  })

  it('a store of plain records is migrated when opened with a protector: no seed is left on disk', async () => {
    const path = join(tempDir(), 'pc.db')
    const account = await createAccount()
    const pc = await ContextSync.open({ account, device: { kind: 'pc' }, storage: sqliteStorage({ path }), keys: plainKeys() })
    await pc.close()
    const seeds = await seedsOf(path, plainKeys())
    for (const seed of seeds) expect(diskBytes(path).includes(seed), 'plain before').toBe(true)

    const keys = passphraseKeys('a long passphrase', FAST)
    const migrated = await ContextSync.open({ storage: sqliteStorage({ path }), keys })
    await migrated.close()
    const onDisk = diskBytes(path)
    for (const seed of seeds) expect(onDisk.includes(seed), 'a seed left on disk after the migration').toBe(false)
    const reopened = await ContextSync.open({ storage: sqliteStorage({ path }), keys: passphraseKeys('a long passphrase', FAST) })
    expect(reopened.deviceId).toBe(pc.deviceId)
    await reopened.close()
  })

  it('a member joins with a protector too, and a protector that is not one is refused', async () => {
    await expect(
      ContextSync.open({ account: await createAccount(), device: { kind: 'pc' }, storage: sqliteStorage({ path: join(tempDir(), 'x.db') }), keys: { kind: 'x' } as unknown as KeyProtector }),
    ).rejects.toThrow(ValidationError)
    expect(() => passphraseKeys('')).toThrow(ValidationError)
    expect(() => passphraseKeys('p', { memLimit: 1 })).toThrow(ValidationError)
  })

  it('plain key records on disk only when asked for: a durable store without `keys` is refused, before anything is written', async () => {
    const path = join(tempDir(), 'phone.db')
    const durable = /this store is durable, so say how its keys are protected: keys: passphraseKeys\(passphrase\), .* or plainKeys\(\)/
    const account = await createAccount()
    await expect(ContextSync.open({ account, device: { kind: 'phone' }, storage: sqliteStorage({ path }) })).rejects.toThrow(durable)
    await expect(ContextSync.join({ invite: 'CS2-never-read', device: { kind: 'car' }, storage: sqliteStorage({ path }), transports: [] })).rejects.toThrow(durable)
    // Nothing was enrolled by the refused calls: the file holds no key record.
    const probe = sqliteStorage({ path })
    expect(await probe.loadRange(['keys'])).toEqual([])
    await probe.close()
    // An existing plain store (made before `keys` was required) is refused the same way, and opens
    // with plainKeys() said out loud; a custom adapter that does not say `durable: false` counts as durable.
    const pc = await ContextSync.open({ account, device: { kind: 'pc' }, storage: sqliteStorage({ path }), keys: plainKeys() })
    const deviceId = pc.deviceId
    await pc.close()
    await expect(ContextSync.open({ storage: sqliteStorage({ path }) })).rejects.toThrow(ConfigError)
    const again = await ContextSync.open({ storage: sqliteStorage({ path }), keys: plainKeys() })
    expect(again.deviceId).toBe(deviceId)
    await again.close()
    const memory = memoryStorage()
    const { durable: _, ...custom } = memory
    await expect(ContextSync.open({ account, device: { kind: 'glasses' }, storage: custom })).rejects.toThrow(durable)
    // memoryStorage keeps nothing beyond the process: `keys` may be left out.
    const inMemory = await ContextSync.open({ account, device: { kind: 'glasses' }, storage: memory })
    await inMemory.close()
  })

  it('SQLite files are owner-only (0600), also one created 0644 before; a created folder is 0700', async () => {
    const dir = tempDir()
    const path = join(dir, 'nested', 'car.db')
    const storage = sqliteStorage({ path, createDirectory: true })
    await storage.save(['k'], new Uint8Array([1]))
    await storage.close()
    expect(statSync(path).mode & 0o777).toBe(0o600)
    expect(statSync(join(dir, 'nested')).mode & 0o777).toBe(0o700)
    const loose = join(dir, 'loose.db')
    const first = sqliteStorage({ path: loose })
    await first.save(['k'], new Uint8Array([1]))
    await first.close()
    const { chmodSync } = await import('node:fs')
    chmodSync(loose, 0o644)
    const second = sqliteStorage({ path: loose })
    await second.ready()
    expect(statSync(loose).mode & 0o777).toBe(0o600)
    await second.close()
  })
})
