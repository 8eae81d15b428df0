/**
 * The PC device at rest: where it lives (the per-user folders of a fresh HOME), and how its keys
 * are kept — sealed under a 0600 key file kept apart from the store, or a passphrase; a store
 * opened without its key, or with another one, is refused with a clear ConfigError.
 */
import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError } from '../../src/index.js'
import { decodeStoredKeyRecord } from '../../src/crypto/key-protector.js'
import { sqliteStorage } from '../../src/entries/sqlite.js'
import { initPc, keyFileKeys, openPc } from '../../adapters/pc/index.js'
import { pcHome, runCli } from '../helpers/pc.js'

async function storedKind(dataDir: string, label: 'device' | 'account'): Promise<string | undefined> {
  const storage = sqliteStorage({ path: join(dataDir, 'contextsync.db') })
  try {
    const bytes = await storage.load(['keys', label])
    return bytes ? decodeStoredKeyRecord(bytes)?.kind : undefined
  } finally {
    await storage.close()
  }
}

describe('openPc / initPc', () => {
  it('`contextsync init` in a fresh HOME puts the store in ~/.local/share and the key file, 0600, in ~/.config', async () => {
    const home = pcHome()
    const env = { HOME: home.root, PATH: home.env.PATH ?? '', XDG_DATA_HOME: '', XDG_CONFIG_HOME: '' }
    const run = await runCli({ ...home, env }, ['init', '--json'])
    expect(run.stderr).toBe('')
    expect(run.code).toBe(0)
    const result = JSON.parse(run.stdout) as { dataDir: string; recoveryCode: string; accountId: string }
    const dataDir = join(home.root, '.local', 'share', 'contextsync')
    const keyFile = join(home.root, '.config', 'contextsync', 'device.key')
    expect(result.dataDir).toBe(dataDir)
    expect(result.recoveryCode.length).toBeGreaterThan(20)
    expect(existsSync(join(dataDir, 'contextsync.db'))).toBe(true)
    expect(statSync(keyFile).mode & 0o777).toBe(0o600)
    expect(statSync(join(dataDir, 'contextsync.db')).mode & 0o777).toBe(0o600)
    expect(await storedKind(dataDir, 'device')).toBe('key-file')
    expect(await storedKind(dataDir, 'account')).toBe('key-file')
    // A second init refuses to overwrite the device.
    const again = await runCli({ ...home, env }, ['init'])
    expect(again.code).toBe(1)
    expect(again.stderr).toMatch(/already holds a device/)
  })

  it('reopens with its key file; without it, or with another one, it is a ConfigError', async () => {
    const home = pcHome()
    const { pc, recoveryCode } = await initPc({ dataDir: home.dataDir, keyFile: home.keyFile, env: {} })
    expect(recoveryCode).toBeTruthy()
    const deviceId = pc.sync.deviceId
    const item = await pc.sync.memory.remember({ text: 'Works from the kitchen table on Fridays' })
    await pc.close()

    const again = await openPc({ dataDir: home.dataDir, keyFile: home.keyFile, env: {} })
    expect(again.sync.deviceId).toBe(deviceId)
    expect(again.sync.memory.get(item.id)?.text).toBe('Works from the kitchen table on Fridays')
    expect(again.exposedScopes()).toEqual(['personal', 'work'])
    await again.close()

    await expect(openPc({ dataDir: home.dataDir, keyFile: join(home.root, 'missing.key'), env: {} })).rejects.toThrow(/key file .* is missing/)
    const other = join(home.root, 'other.key')
    keyFileKeys(other, { create: true })
    await expect(openPc({ dataDir: home.dataDir, keyFile: other, env: {} })).rejects.toBeInstanceOf(ConfigError)
    await expect(openPc({ dataDir: join(home.root, 'nothing'), env: {} })).rejects.toThrow(/no contextsync device/)
  })

  it('CONTEXTSYNC_PASSPHRASE protects the keys with a passphrase instead (and no key file is made)', async () => {
    const home = pcHome()
    const env = { CONTEXTSYNC_PASSPHRASE: 'correct horse battery staple' }
    const { pc } = await initPc({ dataDir: home.dataDir, keyFile: home.keyFile, env })
    await pc.close()
    expect(existsSync(home.keyFile)).toBe(false)
    expect(await storedKind(home.dataDir, 'device')).toBe('passphrase')
    await expect(openPc({ dataDir: home.dataDir, keyFile: home.keyFile, env: { CONTEXTSYNC_PASSPHRASE: 'wrong' } })).rejects.toThrow(/passphrase does not unlock/)
    const again = await openPc({ dataDir: home.dataDir, keyFile: home.keyFile, env })
    await again.close()
  })

  it('a key file others could read is tightened to 0600; one of the wrong size is refused', async () => {
    const home = pcHome()
    keyFileKeys(home.keyFile, { create: true })
    const { chmodSync, writeFileSync } = await import('node:fs')
    chmodSync(home.keyFile, 0o644)
    keyFileKeys(home.keyFile)
    expect(statSync(home.keyFile).mode & 0o777).toBe(0o600)
    expect(readFileSync(home.keyFile).length).toBe(32)
    writeFileSync(home.keyFile, 'short')
    expect(() => keyFileKeys(home.keyFile)).toThrow(/not a contextsync key file/)
  })

  it('one process per store: a second open is refused while the first runs; a lock left by a dead process is taken over', async () => {
    const home = pcHome()
    const { pc } = await initPc({ dataDir: home.dataDir, keyFile: home.keyFile, env: {} })
    await expect(openPc({ dataDir: home.dataDir, keyFile: home.keyFile, env: {} })).rejects.toThrow(new RegExp(`in use by process ${process.pid}`))
    const cli = await runCli(home, ['memory', 'list', '--offline', '--data-dir', home.dataDir, '--key-file', home.keyFile])
    expect(cli.code).toBe(1)
    expect(cli.stderr).toMatch(/in use by process/)
    await pc.close()
    expect(existsSync(join(home.dataDir, 'contextsync.lock'))).toBe(false)

    // A crashed process's lock: its pid no longer runs.
    const { spawnSync } = await import('node:child_process')
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout
    const { writeFileSync } = await import('node:fs')
    writeFileSync(join(home.dataDir, 'contextsync.lock'), JSON.stringify({ pid: Number(dead), command: 'contextsync mcp' }))
    const reopened = await openPc({ dataDir: home.dataDir, keyFile: home.keyFile, env: {} })
    expect(JSON.parse(readFileSync(join(home.dataDir, 'contextsync.lock'), 'utf8')).pid).toBe(process.pid)
    await reopened.close()
  })
})
