/**
 * Temporary access (THREAT_MODEL "A device whose temporary access ended"): a rental car invited
 * `until` a time, or a device granted one scope `until` a time. Past it, the owners rotate every
 * scope it could read, its keys open nothing written afterwards — even handed every byte of the
 * sealed logs by a relay that never refuses it (the loopback network) — and the device purges the
 * account's data, running or on its next start.
 */
import { describe, expect, it } from 'vitest'
import { AccessEndedError, ContextSync, memoryStorage, ValidationError, type LoopbackNetwork, type StorageAdapter } from '../../../src/index.js'
import { publicStatementsMap } from '../../../src/crdt/registry.js'
import { ownerKeyring, verifyLockbox } from '../../../src/crypto/index.js'
import { accountKeys } from '../../../src/facade/account.js'
import { converge } from '../../helpers/devices.js'
import { anyKeyReads, keyringOf, settleAll } from '../../helpers/keys.js'
import { loopbackDevices, type LoopbackDevices } from '../../helpers/loopback-devices.js'

/** The current test's devices (closed when it ends) and their network. */
let fleet: LoopbackDevices
let net: LoopbackNetwork

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const start = Date.now()
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out')
    await sleep(20)
  }
}

async function setup(seed: number) {
  fleet = await loopbackDevices(['phone'], { seed, converge: false })
  net = fleet.net
  return { account: fleet.account, phone: fleet.all[0]! }
}

/** Pair a car that holds its kind's scopes (personal, location) until `untilMs`. */
async function rentalCar(owner: ContextSync, untilMs: number, storage: StorageAdapter = memoryStorage()) {
  const transport = net.transport({ name: 'rental-car' })
  const invite = await owner.devices.invite({ kind: 'car', name: 'Rental car', scopes: ['personal', 'location'], until: untilMs })
  const dev = fleet.track(await ContextSync.join({ invite: invite.code, device: { kind: 'car', name: 'Rental car' }, storage, transports: [transport], timeoutMs: 20_000 }))
  return { dev, storage, transport }
}

async function storedKeys(storage: StorageAdapter): Promise<string[]> {
  return [...(await storage.loadRange(['keys'])), ...(await storage.loadRange(['replica']))].map((c) => c.key.join('/'))
}

describe('a rental car (devices.invite({ until }))', () => {
  it('reads location before until; afterwards its keys open nothing new, even handed every byte, and it purges the account', async () => {
    const { account, phone } = await setup(161)
    const T = Date.now() + 2_500
    const car = await rentalCar(phone, T)
    const before = await phone.memory.remember({ text: 'parking level 3', scope: 'location' })
    await converge([phone, car.dev], net)
    expect(car.dev.memory.get(before.id)?.text).toBe('parking level 3')
    // What an attacker holding the car keeps: every key its keyring ever held.
    const keyring = keyringOf(car.dev)
    const ended: number[] = []
    car.dev.on('access-ended', (e) => ended.push(e.until))

    await until(() => Date.now() > T + 50)
    await settleAll([phone, car.dev], net)

    const after = await phone.memory.remember({ text: 'LOCATION-AFTER-UNTIL-77a1', scope: 'location' })
    const personal = await phone.memory.remember({ text: 'PERSONAL-AFTER-UNTIL-77a1' })
    await settleAll([phone, car.dev], net)
    expect(phone.memory.get(after.id)?.text).toBe('LOCATION-AFTER-UNTIL-77a1')
    // The loopback network delivers everything to everyone, like a relay that never refuses.
    expect(anyKeyReads(phone.replica('location')!.outer, ownerKeyring(accountKeys(account)).roomId('location'), keyring.heldKeys('location'), 'AFTER-UNTIL-77a1')).toBe(false)
    await until(() => ended.length === 1)
    expect(ended).toEqual([T])
    const rooms = ownerKeyring(accountKeys(account))
    const map = publicStatementsMap(phone.replica('@registry')!.outer)
    for (const scope of ['location', 'personal']) {
      expect(anyKeyReads(phone.replica(scope)!.outer, rooms.roomId(scope), keyring.heldKeys(scope), 'AFTER-UNTIL-77a1')).toBe(false)
      // The scope moved on, and no lockbox of its current epoch is sealed to the car.
      const current = keyringOf(phone).currentEpoch(scope)
      expect(current).toBeGreaterThan(0)
      for (const [key, bytes] of map.entries()) {
        if (!key.startsWith('lockbox/')) continue
        const lockbox = verifyLockbox(accountKeys(account), bytes)
        if (lockbox.ok && lockbox.value.roomId === rooms.roomId(scope) && lockbox.value.recipient === car.dev.deviceId) {
          expect(lockbox.value.epoch).toBeLessThan(current)
        }
      }
    }
    expect(personal.id).toBeDefined()
    // The owner sees it as ended, holding nothing.
    expect(phone.devices.list().find((d) => d.deviceId === car.dev.deviceId)).toMatchObject({ scopes: [], until: T })
    // The car wiped that account's keys and data from its store.
    expect(await storedKeys(car.storage)).toEqual([])
  }, 30_000)

  it('a car switched off before until and started after it purges the account on that start', async () => {
    const { phone } = await setup(162)
    const T = Date.now() + 2_500
    const storage = memoryStorage()
    const car = await rentalCar(phone, T, storage)
    await phone.memory.remember({ text: 'home address', scope: 'location' })
    await converge([phone, car.dev], net)
    expect((await storedKeys(storage)).length).toBeGreaterThan(0)
    await car.dev.close()
    await until(() => Date.now() > T + 50)
    await expect(ContextSync.open({ storage, transports: [net.transport({ name: 'car-again' })] })).rejects.toBeInstanceOf(AccessEndedError)
    expect(await storedKeys(storage)).toEqual([])
  }, 30_000)

  it('devices.extend before until keeps the car in: it reads what is written after the first until', async () => {
    const { phone } = await setup(163)
    const T = Date.now() + 2_500
    const car = await rentalCar(phone, T)
    await converge([phone, car.dev], net)
    await phone.devices.extend(car.dev.deviceId, T + 60_000)
    await converge([phone, car.dev], net)
    await until(() => Date.now() > T + 50)
    const after = await phone.memory.remember({ text: 'after the first until', scope: 'location' })
    await converge([phone, car.dev], net)
    expect(car.dev.memory.get(after.id)?.text).toBe('after the first until')
    expect(phone.devices.list().find((d) => d.deviceId === car.dev.deviceId)?.until).toBe(T + 60_000)
    await expect(phone.devices.extend(car.dev.deviceId, T)).rejects.toBeInstanceOf(ValidationError)
  }, 30_000)
})

describe('a temporary grant (scopes.grant(scope, deviceId, { until }))', () => {
  it('the PC holds health until then; afterwards health rotates without it, it drops health and keeps its other scopes', async () => {
    const { account, phone } = await setup(164)
    const pcTransport = net.transport({ name: 'pc' })
    const invite = await phone.devices.invite({ kind: 'pc', name: 'Work PC' })
    const pc = fleet.track(await ContextSync.join({ invite: invite.code, device: { kind: 'pc', name: 'Work PC' }, storage: memoryStorage(), transports: [pcTransport], timeoutMs: 20_000 }))
    await converge([phone, pc], net)
    expect(pc.scopes.available()).not.toContain('health')
    const T = Date.now() + 2_000
    await phone.scopes.grant('health', pc.deviceId, { until: T })
    await until(async () => (await converge([phone, pc], net), pc.scopes.available().includes('health')))
    const before = await phone.memory.remember({ text: 'blood pressure ok', scope: 'health' })
    await converge([phone, pc], net)
    expect(pc.memory.get(before.id)?.text).toBe('blood pressure ok')
    const keyring = keyringOf(pc)

    await until(() => Date.now() > T + 50)
    await until(async () => (await converge([phone, pc], net), !pc.scopes.available().includes('health')))
    const after = await phone.memory.remember({ text: 'HEALTH-AFTER-GRANT-3c', scope: 'health' })
    await converge([phone, pc], net)
    const room = ownerKeyring(accountKeys(account)).roomId('health')
    expect(anyKeyReads(phone.replica('health')!.outer, room, keyring.heldKeys('health'), 'HEALTH-AFTER-GRANT-3c')).toBe(false)
    expect(pc.replica('health')).toBeUndefined()
    const work = await phone.memory.remember({ text: 'still at work', scope: 'work' })
    await converge([phone, pc], net)
    expect(pc.memory.get(work.id)?.text).toBe('still at work')
  }, 30_000)

  it('refuses a temporary grant of a scope the device already holds for good, and an until in the past', async () => {
    const { phone } = await setup(165)
    const carTransport = net.transport({ name: 'car' })
    const invite = await phone.devices.invite({ kind: 'car', name: 'Car' })
    const car = fleet.track(await ContextSync.join({ invite: invite.code, device: { kind: 'car', name: 'Car' }, storage: memoryStorage(), transports: [carTransport], timeoutMs: 20_000 }))
    await converge([phone, car], net)
    await expect(phone.scopes.grant('location', car.deviceId, { until: Date.now() + 60_000 })).rejects.toThrow(/holds 'location' by its kind's policy/)
    await expect(phone.scopes.grant('health', car.deviceId, { until: Date.now() - 1 })).rejects.toBeInstanceOf(ValidationError)
    await expect(phone.devices.invite({ kind: 'car', until: Date.now() - 1 })).rejects.toBeInstanceOf(ValidationError)
  }, 30_000)
})
