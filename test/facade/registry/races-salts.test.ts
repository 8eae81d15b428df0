/**
 * Rotation races whose outcome depends on which start is canonical (the smallest salt, WIRE.md
 * "Keys and epochs"): the salts owners draw are chosen here, so each interleaving is tested on
 * purpose rather than by luck. Nothing else drawn at random changes.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { type LoopbackNetwork } from '../../../src/index.js'
import { SALT_BYTES } from '../../../src/crypto/index.js'
import { accountKeys } from '../../../src/facade/account.js'
import { ownerKeyring } from '../../../src/crypto/index.js'
import { type TestDevice } from '../../helpers/devices.js'
import { keyringOf, pairMember, settleAll } from '../../helpers/keys.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

/** Salts the next epoch starts take, in order (only draws of a salt's length, while any are queued). */
const queuedSalts: Uint8Array[] = []

vi.mock('../../../src/crypto/primitives.js', async (importOriginal) => {
  const original = await importOriginal<typeof import('../../../src/crypto/primitives.js')>()
  return {
    ...original,
    randomBytes: (length: number): Uint8Array => (length === SALT_BYTES && queuedSalts.length > 0 ? queuedSalts.shift()! : original.randomBytes(length)),
  }
})

/** A salt whose start sorts `rank`-th (0 first) among the starts of an epoch. */
const saltRanked = (rank: number): Uint8Array => new Uint8Array(SALT_BYTES).fill(0x10 + rank * 0x40)

/** The network of the current test's devices. */
let net: LoopbackNetwork
afterEach(() => {
  queuedSalts.length = 0
})

describe('racing narrowings', () => {
  it('what a device later left out sealed under the losing start does not hide another owner\'s write', async () => {
    // The phone and the PC are owners; the glasses and the car hold `personal` by kind.
    const fleet = await loopbackDevices(['phone', 'pc'], { seed: 71, layout: 'mesh', converge: false })
    net = fleet.net
    const { account } = fleet
    const [phone, pc] = fleet.devs as [TestDevice, TestDevice]
    const glasses = await pairMember(phone.dev, net, 'glasses')
    const car = await pairMember(phone.dev, net, 'car')
    fleet.track(glasses.dev)
    fleet.track(car.dev)
    const everyone = [phone.dev, pc.dev, glasses.dev, car.dev]
    await settleAll(everyone, net)

    // Cut apart, each owner narrows `personal`: the PC drops the car (the glasses stay), the
    // phone — a moment later, so its definition is the newer one — drops the glasses too.
    // The phone's start gets the smaller salt: it is canonical once they meet.
    net.partition([pc.transport, glasses.transport], [phone.transport, car.transport])
    queuedSalts.push(saltRanked(1))
    await pc.dev.scopes.define('personal', { kinds: ['phone', 'pc', 'glasses'] })
    const written = await pc.dev.memory.remember({ text: 'written by the PC under its own start' })
    await settleAll([pc.dev, glasses.dev], net)
    await new Promise((r) => setTimeout(r, 5))
    queuedSalts.push(saltRanked(0))
    await phone.dev.scopes.define('personal', { kinds: ['phone', 'pc'] })
    await settleAll([phone.dev], net)
    expect(queuedSalts).toEqual([])

    // The glasses, holding the PC's start, applied its write and compacted: their snapshot under
    // epoch 1 now stands for the PC's envelope in the shared log.
    expect(glasses.dev.memory.get(written.id)?.text).toBe('written by the PC under its own start')
    await glasses.dev.replica('personal')!.compactNow()
    await settleAll([pc.dev, glasses.dev], net)

    net.heal()
    await settleAll(everyone, net)
    // The phone's start is canonical, so epoch 1 is safe and stays current; the glasses are out,
    // and what they sealed under epoch 1 waits (not granted) on the phone.
    const roomId = ownerKeyring(accountKeys(account)).roomId('personal')
    expect(keyringOf(phone.dev).currentEpoch('personal')).toBe(1)
    expect(keyringOf(phone.dev).starts(roomId, 1).map((s) => s.startId)).toHaveLength(2)
    expect(phone.dev.scopes.available()).toContain('personal')
    // The PC applied that snapshot while the glasses held the scope; it republishes its write.
    expect(phone.dev.memory.get(written.id)?.text).toBe('written by the PC under its own start')
  })
})
