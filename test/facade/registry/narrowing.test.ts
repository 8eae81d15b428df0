/**
 * Narrowing a scope (THREAT_MODEL "A member device"): removing a kind or a device from a scope's
 * policy rotates the scope like a revocation, hands the removed device's relay pass over without
 * the room, and the removed device closes the replica and purges what it stored of it.
 */
import { describe, expect, it } from 'vitest'
import { ContextSync, RejectCode, type LoopbackNetwork, type StorageAdapter } from '../../../src/index.js'
import { ownerKeyring, verifyRelayPass, type AccountKeys } from '../../../src/crypto/index.js'
import { accountKeys } from '../../../src/facade/account.js'
import { converge } from '../../helpers/devices.js'
import { anyKeyReads, everyKeyHeld, holdsKey, keyringOf, pairMember, REGISTRY } from '../../helpers/keys.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

async function setup(seed: number) {
  const fleet = await loopbackDevices(['phone'], { seed, converge: false })
  net = fleet.net
  const { account } = fleet
  const phone = fleet.all[0]!
  const glasses = await pairMember(phone, net, 'glasses')
  const car = await pairMember(phone, net, 'car')
  fleet.track(glasses.dev)
  fleet.track(car.dev)
  await converge([phone, glasses.dev, car.dev], net)
  return { account, phone, glasses, car, rooms: ownerKeyring(accountKeys(account)) }
}

/** The rooms a device's newest relay pass admits it to. */
function passRooms(owner: ContextSync, deviceId: string): 'all' | string[] {
  const pass = verifyRelayPass(ownerAccount(owner), owner.registry.relayPass(deviceId)!)
  if (!pass.ok) throw new Error('pass does not verify')
  return pass.value.rooms
}

function ownerAccount(dev: ContextSync): AccountKeys {
  return (dev as unknown as { account: AccountKeys }).account
}

describe('narrowing a scope', () => {
  it('removing a kind rotates the scope: the removed glasses read nothing written afterwards and drop what they held', async () => {
    const { phone, glasses, car, rooms } = await setup(51)
    const healthRoom = rooms.roomId('health')
    const before = await phone.memory.remember({ text: 'health before narrowing', scope: 'health' })
    await converge([phone, glasses.dev, car.dev], net)
    expect(glasses.dev.memory.get(before.id)?.text).toBe('health before narrowing')
    expect((await glasses.storage.loadRange(['replica', healthRoom])).length).toBeGreaterThan(0)
    const scopeEvents: string[][] = []
    glasses.dev.on('scopes', (e) => scopeEvents.push(e.scopes))

    await phone.scopes.define('health', { kinds: ['phone'] })
    await converge([phone, glasses.dev, car.dev], net)

    expect(glasses.dev.scopes.available()).not.toContain('health')
    expect(scopeEvents.at(-1)).toBeDefined()
    expect(scopeEvents.at(-1)).not.toContain('health')
    expect(glasses.dev.replica('health')).toBeUndefined()
    expect(glasses.dev.memory.get(before.id)).toBeUndefined()
    expect(await contentKeys(glasses.storage, healthRoom)).toEqual([])
    // A new epoch, sealed to nobody the glasses are.
    expect(keyringOf(phone).currentEpoch('health')).toBe(1)
    const sealing = keyringOf(phone).sealingKey('health')
    expect(sealing?.epoch).toBe(1)
    expect(holdsKey(everyKeyHeld(glasses.dev, 'health'), sealing?.key)).toBe(false)
    // Its relay pass no longer names the room.
    const passed = passRooms(phone, glasses.dev.deviceId)
    expect(passed).not.toBe('all')
    expect(passed).not.toContain(healthRoom)
    expect(passed).toContain(rooms.roomId('personal'))

    const after = await phone.memory.remember({ text: 'HEALTH-AFTER-NARROWING', scope: 'health' })
    await converge([phone, glasses.dev, car.dev], net)
    expect(anyKeyReads(phone.replica('health')!.outer, healthRoom, everyKeyHeld(glasses.dev, 'health'), 'HEALTH-AFTER-NARROWING')).toBe(false)
    expect(phone.memory.get(after.id)?.text).toBe('HEALTH-AFTER-NARROWING')
    // Other scopes are untouched.
    const personal = await phone.memory.remember({ text: 'still shared' })
    await converge([phone, glasses.dev, car.dev], net)
    expect(glasses.dev.memory.get(personal.id)?.text).toBe('still shared')
    expect(keyringOf(phone).currentEpoch('personal')).toBe(0)
  })

  it('removing a device that held a scope by grant rotates it too, and granting it again gives it the scope back', async () => {
    const { phone, glasses, car, rooms } = await setup(52)
    const locationRoom = rooms.roomId('location')
    await phone.scopes.define('location', { kinds: ['phone'], devices: [car.dev.deviceId] })
    await converge([phone, glasses.dev, car.dev], net)
    // The glasses lost `location` by kind: first rotation.
    expect(glasses.dev.scopes.available()).not.toContain('location')
    expect(car.dev.scopes.available()).toContain('location')
    const epochAfterFirst = keyringOf(phone).currentEpoch('location')
    expect(epochAfterFirst).toBe(1)
    const m = await car.dev.memory.remember({ text: 'car still writes location', scope: 'location' })
    await converge([phone, glasses.dev, car.dev], net)
    expect(phone.memory.get(m.id)?.text).toBe('car still writes location')

    // Now the car's grant goes: second rotation, and the car drops the room.
    await phone.scopes.define('location', { kinds: ['phone'] })
    await converge([phone, glasses.dev, car.dev], net)
    expect(car.dev.scopes.available()).not.toContain('location')
    expect(car.dev.replica('location')).toBeUndefined()
    expect(await contentKeys(car.storage, locationRoom)).toEqual([])
    expect(keyringOf(phone).currentEpoch('location')).toBe(epochAfterFirst + 1)
    const sealing = keyringOf(phone).sealingKey('location')!
    expect(holdsKey(everyKeyHeld(car.dev, 'location'), sealing.key)).toBe(false)
    expect(holdsKey(everyKeyHeld(glasses.dev, 'location'), sealing.key)).toBe(false)
    expect(passRooms(phone, car.dev.deviceId)).not.toContain(locationRoom)

    // Granting it back: keys of every epoch, the replica reopens, the history arrives.
    await phone.scopes.grant('location', car.dev.deviceId)
    await converge([phone, glasses.dev, car.dev], net)
    expect(car.dev.scopes.available()).toContain('location')
    expect(car.dev.memory.get(m.id)?.text).toBe('car still writes location')
    expect(passRooms(phone, car.dev.deviceId)).toContain(locationRoom)
    // It writes again, and is not refused as replaying its own old seqs: the purge kept its seq
    // reservation (a counter, no content), so seqs continue after the ones the phone applied.
    const again = await car.dev.memory.remember({ text: 'car writes location again', scope: 'location' })
    await converge([phone, glasses.dev, car.dev], net)
    expect(phone.memory.get(again.id)?.text).toBe('car writes location again')
    expect(phone.rejectionCounts()[RejectCode.Replay] ?? 0).toBe(0)
  })

  it('a later revocation of a narrowed device still rotates everything it could read', async () => {
    const { phone, glasses, car } = await setup(53)
    await phone.scopes.define('health', { kinds: ['phone'] })
    await converge([phone, glasses.dev, car.dev], net)
    await phone.devices.revoke(glasses.dev.deviceId)
    await converge([phone, car.dev], net)
    for (const scope of ['personal', 'health', 'location', REGISTRY]) {
      const sealing = keyringOf(phone).sealingKey(scope)
      expect(sealing, scope).toBeDefined()
      expect(holdsKey(everyKeyHeld(glasses.dev, scope), sealing!.key), scope).toBe(false)
    }
    const m = await phone.memory.remember({ text: 'AFTER-REVOKE-HEALTH', scope: 'health' })
    await converge([phone, car.dev], net)
    expect(phone.memory.get(m.id)?.text).toBe('AFTER-REVOKE-HEALTH')
  })
})

/** The keys a store still holds for a room besides its seq reservation (`meta`: a counter, no content). */
async function contentKeys(storage: StorageAdapter, roomId: string): Promise<string[]> {
  return (await storage.loadRange(['replica', roomId])).map((c) => c.key.join('/')).filter((key) => key !== `replica/${roomId}/meta`)
}
