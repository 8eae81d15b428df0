/**
 * Writes of a device whose temporary access ended (THREAT_MODEL "A device whose temporary access
 * ended"): like after a revocation, the owners' rotation at the end states exactly which seqs of
 * the device they had applied per room; anything else it seals under an older epoch — a car
 * modified not to purge, writing after its end with the keys it kept — is refused with code 5 on
 * every device, not accepted until the epoch grace window passes. What it wrote before the end
 * stays.
 */
import { describe, expect, it } from 'vitest'
import { ContextSync, memoryStorage, RejectCode, type LoopbackNetwork } from '../../../src/index.js'
import { converge, roomOf } from '../../helpers/devices.js'
import { deviceKeysOf, forgeEnvelope, keyringOf, memoryUpdate } from '../../helpers/forge.js'
import { inject, pairMember, settleAll } from '../../helpers/keys.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(20)
  }
}

describe('an ended device’s writes after its end', () => {
  it('a rental car writing under the old epoch after its end is refused by the phone and the glasses (code 5); its writes from before stay', async () => {
    const fleet = await loopbackDevices(['phone'], { seed: 171, converge: false })
    net = fleet.net
    const { account } = fleet
    const phone = fleet.all[0]!
    const glasses = fleet.track((await pairMember(phone, net, 'glasses')).dev)
    const T = Date.now() + 2_500
    const invite = await phone.devices.invite({ kind: 'car', name: 'Rental car', scopes: ['personal', 'location'], until: T })
    const storage = memoryStorage()
    const car = fleet.track(await ContextSync.join({ invite: invite.code, device: { kind: 'car', name: 'Rental car' }, storage, transports: [net.transport({ name: 'rental-car' })], timeoutMs: 20_000 }))
    const before = await car.memory.remember({ text: 'written by the car before its end' })
    await converge([phone, car, glasses], net)
    expect(glasses.memory.get(before.id)?.text).toBe('written by the car before its end')
    expect(phone.memory.get(before.id)?.text).toBe('written by the car before its end')
    // What a car modified not to purge keeps: its device keys and the scope's epoch-0 key.
    const keys = await deviceKeysOf(storage)
    const oldKey = keyringOf(car).epochKey('personal', 0)!
    const applied = phone.replica('personal')!.appliedSeqs().get(car.deviceId)!
    const rejected: Array<{ code: number; senderId?: string; scope?: string }> = []
    const rejectedOnGlasses: Array<{ code: number; senderId?: string; scope?: string }> = []
    phone.on('rejected', (e) => rejected.push(e))
    glasses.on('rejected', (e) => rejectedOnGlasses.push(e))

    await until(() => Date.now() > T + 50, 10_000, 'the end')
    await settleAll([phone, car, glasses], net)
    await until(() => keyringOf(phone).currentEpoch('personal') > 0 && keyringOf(glasses).currentEpoch('personal') > 0, 10_000, 'the rotation at the end')

    const roomId = roomOf(account, 'personal')
    const id = 'afterEndCarAAAAAAAAAAA'
    const forged = forgeEnvelope({
      keys,
      roomId,
      epoch: 0,
      seq: applied.max() + 1,
      key: oldKey,
      plaintext: memoryUpdate({ id, text: 'WRITTEN BY THE CAR AFTER ITS END', scope: 'personal', sourceDeviceId: car.deviceId }),
    })
    // Handed straight to each device, as a colluding peer or relay would.
    inject(phone, 'personal', forged)
    inject(glasses, 'personal', forged)
    await settleAll([phone, glasses], net)
    await sleep(100)
    expect(phone.memory.get(id)).toBeUndefined()
    expect(glasses.memory.get(id)).toBeUndefined()
    expect(rejected.some((e) => e.code === RejectCode.RevokedSender && e.senderId === car.deviceId && e.scope === 'personal')).toBe(true)
    expect(rejectedOnGlasses.some((e) => e.code === RejectCode.RevokedSender && e.senderId === car.deviceId && e.scope === 'personal')).toBe(true)
    expect(glasses.memory.get(before.id)?.text).toBe('written by the car before its end')
    // Its history from before the end is not undone.
    expect(phone.memory.get(before.id)?.text).toBe('written by the car before its end')
  }, 30_000)
})
