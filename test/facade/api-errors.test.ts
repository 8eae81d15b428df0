import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  ClosedError,
  ConfigError,
  ContextSync,
  createAccount,
  memoryStorage,
  NotFoundError,
  ValidationError,
  type Account,
} from '../../src/index.js'

let account: Account
let dev: ContextSync
beforeAll(async () => {
  account = await createAccount()
  dev = await ContextSync.open({ account, device: { kind: 'phone' }, storage: memoryStorage() })
})
afterAll(() => dev.close())

// Deliberately wrong inputs, as an untyped JavaScript caller might pass them.
const loose = (value: unknown) => value as never

describe('bad input to the API throws named errors with clear messages', () => {
  it('remember', async () => {
    await expect(dev.memory.remember(loose(undefined))).rejects.toThrow(ValidationError)
    await expect(dev.memory.remember({ text: '' })).rejects.toThrow(/text must not be empty/)
    await expect(dev.memory.remember({ text: '   ' })).rejects.toThrow(ValidationError)
    await expect(dev.memory.remember(loose({ text: 42 }))).rejects.toThrow(/text must be a string, got number/)
    await expect(dev.memory.remember({ text: 'x', scope: 'nope' })).rejects.toThrow(/unknown scope 'nope'; known scopes: personal/)
    await expect(dev.memory.remember(loose({ text: 'x', scope: 7 }))).rejects.toThrow(/scope must be a string/)
    await expect(dev.memory.remember(loose({ text: 'x', kind: 'opinion' }))).rejects.toThrow(/kind must be one of 'fact'/)
    await expect(dev.memory.remember(loose({ text: 'x', tags: 'travel' }))).rejects.toThrow(/tags must be an array/)
    await expect(dev.memory.remember(loose({ text: 'x', tags: [''] }))).rejects.toThrow(/non-empty strings/)
    await expect(dev.memory.remember({ text: 'x', confidence: 2 })).rejects.toThrow(/confidence must be a number between 0 and 1/)
    await expect(dev.memory.remember({ text: 'x'.repeat(100_001) })).rejects.toThrow(/limit is 100000/)
    // Nothing half-written.
    expect(dev.memory.list()).toEqual([])
  })

  it('get, list, recall, update, forget', async () => {
    expect(() => dev.memory.get(loose(5))).toThrow(ValidationError)
    expect(dev.memory.get('missing')).toBeUndefined()
    expect(() => dev.memory.list({ scope: 'nope' })).toThrow(ValidationError)
    expect(() => dev.memory.recall({ text: 'x', limit: 0 })).toThrow(/limit must be a positive integer/)
    expect(() => dev.memory.recall(loose(null))).toThrow(ValidationError)
    await expect(dev.memory.update('missing', { text: 'x' })).rejects.toThrow(NotFoundError)
    const m = await dev.memory.remember({ text: 'real' })
    await expect(dev.memory.update(m.id, { text: '' })).rejects.toThrow(ValidationError)
    await expect(dev.memory.forget(loose({}))).rejects.toThrow(ValidationError)
  })

  it('sessions', async () => {
    expect(() => dev.sessions.start({ scope: 'nope' })).toThrow(/unknown scope/)
    expect(() => dev.sessions.open('missing')).toThrow(NotFoundError)
    const s = dev.sessions.start({ title: 'ok' })
    await expect(s.append(loose({ role: 'robot', text: 'x' }))).rejects.toThrow(/role must be one of 'user'/)
    await expect(s.append({ role: 'user', text: '' })).rejects.toThrow(ValidationError)
    const w = s.stream({ role: 'assistant' })
    expect(() => w.write(loose(5))).toThrow(ValidationError)
    await w.end()
    expect(() => w.write('late')).toThrow(/after end/)
  })

  it('open', async () => {
    await expect(ContextSync.open(loose(undefined))).rejects.toThrow(ValidationError)
    await expect(ContextSync.open(loose({ storage: {} }))).rejects.toThrow(/storage must be a StorageAdapter/)
    await expect(ContextSync.open({ storage: memoryStorage() })).rejects.toThrow(ConfigError)
    await expect(ContextSync.open(loose({ account, device: { kind: 'toaster' }, storage: memoryStorage() }))).rejects.toThrow(
      /device.kind must be one of 'phone'/,
    )
    await expect(ContextSync.open(loose({ account: { accountId: 'x' }, device: { kind: 'pc' }, storage: memoryStorage() }))).rejects.toThrow(
      /createAccount/,
    )
    await expect(ContextSync.open(loose({ account, device: { kind: 'pc' }, storage: memoryStorage(), transports: [{}] }))).rejects.toThrow(
      /Transport/,
    )
    const storage = memoryStorage()
    const first = await ContextSync.open({ account, device: { kind: 'pc' }, storage })
    await first.close()
    const other = await createAccount()
    await expect(ContextSync.open({ account: other, storage })).rejects.toThrow(/belongs to account/)
    await storage.save(['keys', 'device'], new Uint8Array([9, 9]))
    await expect(ContextSync.open({ storage })).rejects.toThrow(/corrupt/)
  })

  it('an interrupted first open (keys stored, no certificate yet) finishes with the kind the app asks for', async () => {
    const { accountKeys } = await import('../../src/facade/account.js')
    const { createDeviceKeys, encodeAccountKeys, encodeDeviceKeys } = await import('../../src/crypto/index.js')
    const storage = memoryStorage()
    await storage.save(['keys', 'account'], encodeAccountKeys(accountKeys(account)))
    await storage.save(['keys', 'device'], encodeDeviceKeys(createDeviceKeys()))
    await expect(ContextSync.open({ storage })).rejects.toThrow(/not fully enrolled/)
    const d = await ContextSync.open({ storage, device: { kind: 'car', name: 'Car' } })
    expect([d.kind, d.name]).toEqual(['car', 'Car'])
    await d.close()
    const again = await ContextSync.open({ storage })
    expect(again.kind).toBe('car')
    await again.close()
    // Only the account stored: opening with the same account enrols the device afresh.
    const half = memoryStorage()
    await half.save(['keys', 'account'], encodeAccountKeys(accountKeys(account)))
    const enrolled = await ContextSync.open({ storage: half, account, device: { kind: 'pc' } })
    expect(enrolled.kind).toBe('pc')
    await enrolled.close()
  })

  it('use after close', async () => {
    const d = await ContextSync.open({ account, device: { kind: 'car' }, storage: memoryStorage() })
    await d.close()
    await d.close()
    expect(() => d.memory.list()).toThrow(ClosedError)
    await expect(d.memory.remember({ text: 'x' })).rejects.toThrow(ClosedError)
    expect(() => d.sessions.start()).toThrow(ClosedError)
  })

  it('logging an account prints no key material', () => {
    expect(JSON.stringify(account)).toBe(JSON.stringify({ accountId: account.accountId }))
    expect(Object.keys(account)).toEqual(['accountId'])
  })
})
