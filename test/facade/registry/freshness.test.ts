/**
 * Epoch freshness (WIRE.md "Keys and epochs"): once a room has moved to a new epoch, envelopes
 * sealed under an older one are refused (code 15) past `sync.epochGraceMs` — measured both on
 * the owner's clock (the start's `startedAt`) and on this device's monotonic clock since it
 * learned of the start — so a member kept on an old epoch (a relay withholding the registry from
 * it) cannot keep writing under a key a revoked device holds.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ContextSync, createAccount, memoryStorage, RejectCode, ValidationError, type LoopbackNetwork, type RejectedEvent } from '../../../src/index.js'
import { sealedLog } from '../../../src/crdt/sealed-log.js'
import { parseEnvelope } from '../../../src/crypto/index.js'
import { converge } from '../../helpers/devices.js'
import { keyringOf, pairMember } from '../../helpers/keys.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

// Generous: the first delivery below must only happen within this long of the revocation.
const GRACE_MS = 2_000

describe('epoch freshness', () => {
  it('a member left on an old epoch is refused (15) once the new epoch is older than the grace window; within it, accepted', async () => {
    const fleet = await loopbackDevices([], { seed: 71, converge: false })
    net = fleet.net
    // The phone uses a short grace window; the PC keeps the default (10 min).
    const phoneDevice = await fleet.open('phone', memoryStorage(), { sync: { epochGraceMs: GRACE_MS } })
    const phone = phoneDevice.dev
    const pc = (await fleet.open('pc')).dev
    const glasses = await pairMember(phone, net, 'glasses')
    const car = await pairMember(phone, net, 'car')
    fleet.track(glasses.dev)
    fleet.track(car.dev)
    await converge([phone, pc, glasses.dev, car.dev], net)

    // The relay keeps the glasses from hearing of the revocation: they stay on epoch 0.
    net.disconnect(glasses.transport)
    await phone.devices.revoke(car.dev.deviceId)
    await converge([phone, pc], net)
    expect(keyringOf(phone).currentEpoch('personal')).toBe(1)
    const fresh = await glasses.dev.memory.remember({ text: 'sealed under epoch 0, inside the window' })
    const rejected: RejectedEvent[] = []
    phone.on('rejected', (e) => rejected.push(e))
    // Delivered (by a relay) straight away: still inside the window.
    Y.applyUpdate(phone.replica('personal')!.outer, Y.encodeStateAsUpdate(glasses.dev.replica('personal')!.outer))
    expect(phone.memory.get(fresh.id)?.text).toBe('sealed under epoch 0, inside the window')

    await new Promise((r) => setTimeout(r, GRACE_MS + 100))
    const late = await glasses.dev.memory.remember({ text: 'sealed under epoch 0, past the window' })
    expect(lastEpoch(glasses.dev)).toBe(0)
    Y.applyUpdate(phone.replica('personal')!.outer, Y.encodeStateAsUpdate(glasses.dev.replica('personal')!.outer))
    Y.applyUpdate(pc.replica('personal')!.outer, Y.encodeStateAsUpdate(glasses.dev.replica('personal')!.outer))
    expect(phone.memory.get(late.id)).toBeUndefined()
    expect(rejected.map((e) => [e.code, e.senderId])).toEqual([[RejectCode.StaleEpoch, glasses.dev.deviceId]])
    // A device with the default window still takes it; and what the phone applied stays applied.
    expect(pc.memory.get(late.id)?.text).toBe('sealed under epoch 0, past the window')
    expect(phone.memory.get(fresh.id)?.text).toBe('sealed under epoch 0, inside the window')

    // Back online, the glasses learn epoch 1 and seal under it.
    net.reconnect(glasses.transport)
    await converge([phone, pc, glasses.dev], net)
    await glasses.dev.memory.remember({ text: 'sealed under epoch 1' })
    expect(lastEpoch(glasses.dev)).toBe(1)
    await converge([phone, pc, glasses.dev], net)
    // Accepted (its text shows once the refused write reaches the phone re-sealed, in a snapshot
    // under epoch 1: Yjs waits for the glasses' earlier change).
    expect(phone.replica('personal')!.hasApplied(glasses.dev.deviceId, lastSeq(glasses.dev))).toBe(true)
  })

  it('sync.epochGraceMs must be a non-negative number of ms', async () => {
    const account = await createAccount()
    for (const bad of [-1, Number.NaN, Infinity, '10' as unknown as number]) {
      await expect(ContextSync.open({ account, device: { kind: 'phone' }, storage: memoryStorage(), sync: { epochGraceMs: bad } })).rejects.toThrow(ValidationError)
    }
  })
})

function lastEnvelope(dev: ContextSync): { epoch: number; seq: number } {
  const log = sealedLog(dev.replica('personal')!.outer)
  const parsed = parseEnvelope(log.get(log.length - 1))
  if (!parsed.ok) throw new Error('fixture')
  return parsed.value
}

function lastEpoch(dev: ContextSync): number {
  return lastEnvelope(dev).epoch
}

function lastSeq(dev: ContextSync): number {
  return lastEnvelope(dev).seq
}
