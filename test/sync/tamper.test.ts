import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ContextSync, RejectCode, type LoopbackNetwork, type RejectedEvent } from '../../src/index.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import { createDeviceKeys, decodeDeviceKeys, EnvelopeType, ownerKeyring, parseEnvelope, sealEnvelope } from '../../src/crypto/index.js'
import { accountKeys } from '../../src/facade/account.js'
import { converge, type TestDevice } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'

let net: LoopbackNetwork

/** Deliver bytes into a device's sealed log as if they came from the network. */
function inject(dev: ContextSync, scope: string, bytes: Uint8Array): void {
  const outer = dev.replica(scope)!.outer
  Y.transact(outer, () => sealedLog(outer).push([bytes]), 'attacker')
}

function lastEnvelope(dev: ContextSync, scope: string): Uint8Array {
  const log = sealedLog(dev.replica(scope)!.outer)
  return log.get(log.length - 1).slice()
}

async function setup() {
  // Converged below, once the pc's listeners are on.
  const fleet = await loopbackDevices(['phone', 'pc'], { seed: 5, converge: false })
  const { account } = fleet
  net = fleet.net
  const [phoneDevice, pcDevice] = fleet.devs as [TestDevice, TestDevice]
  const phone = phoneDevice.dev
  const pc = pcDevice.dev
  const rejected: RejectedEvent[] = []
  const held: RejectedEvent[] = []
  pc.on('rejected', (e) => rejected.push(e))
  pc.on('held', (e) => held.push(e))
  await converge([phone, pc], net)
  return { account, phone, pc, rejected, held, phoneStorage: phoneDevice.storage }
}

describe('tampered envelopes', () => {
  it('rejects each kind of tampering with its code, counts it, and keeps syncing', async () => {
    const { account, phone, pc, rejected, held, phoneStorage } = await setup()
    // An envelope the pc has not seen yet: written while the phone is cut off.
    net.partition([])
    await phone.memory.remember({ text: 'original' })
    const good = lastEnvelope(phone, 'personal')
    net.heal()
    await converge([phone, pc], net)

    const flipped = good.slice()
    flipped[flipped.length - 80]! ^= 0x01 // inside the ciphertext: the signature covers it
    inject(pc, 'personal', flipped)
    const sigFlip = good.slice()
    sigFlip[sigFlip.length - 1]! ^= 0x80
    inject(pc, 'personal', sigFlip)
    inject(pc, 'work', good) // moved to another room
    const epochMoved = good.slice()
    epochMoved[2] = 1 // header says epoch 1
    inject(pc, 'personal', epochMoved)
    inject(pc, 'personal', good.subarray(0, good.length - 10)) // truncated
    inject(pc, 'personal', good) // replay of an applied envelope

    // A stranger's key claiming to be the phone, and a stranger with its own (uncertified) id.
    const stranger = createDeviceKeys()
    const keyring = ownerKeyring(accountKeys(account))
    const roomId = keyring.roomId('personal')
    const parsed = parseEnvelope(good)
    if (!parsed.ok) throw new Error('fixture')
    const impostor = sealEnvelope({
      roomId,
      type: EnvelopeType.Update,
      epoch: 0,
      seq: 999,
      sender: parsed.value.sender,
      signSecretKey: stranger.signSecretKey,
      key: keyring.epochKey('personal', 0)!,
      plaintext: Y.encodeStateAsUpdate(new Y.Doc()),
    })
    inject(pc, 'personal', impostor)
    const uncertified = sealEnvelope({
      roomId,
      type: EnvelopeType.Update,
      epoch: 0,
      seq: 1,
      sender: stranger.deviceIdBytes,
      signSecretKey: stranger.signSecretKey,
      key: keyring.epochKey('personal', 0)!,
      plaintext: Y.encodeStateAsUpdate(new Y.Doc()),
    })
    inject(pc, 'personal', uncertified)
    inject(pc, 'personal', new Uint8Array([1, 2, 3]))
    // The phone's real key, but sealed under another scope's key: signature fine, AEAD fails.
    const phoneKeys = decodeDeviceKeys((await phoneStorage.load(['keys', 'device']))!)
    if (!phoneKeys.ok) throw new Error('fixture')
    const wrongKey = sealEnvelope({
      roomId,
      type: EnvelopeType.Update,
      epoch: 0,
      seq: 500,
      sender: phoneKeys.value.deviceIdBytes,
      signSecretKey: phoneKeys.value.signSecretKey,
      key: keyring.epochKey('work', 0)!,
      plaintext: Y.encodeStateAsUpdate(new Y.Doc()),
    })
    inject(pc, 'personal', wrongKey)

    const codes = rejected.map((e) => e.code)
    expect(codes).toEqual([
      RejectCode.BadSignature,
      RejectCode.BadSignature,
      RejectCode.BadSignature,
      RejectCode.BadSignature,
      RejectCode.Malformed,
      RejectCode.Replay,
      RejectCode.BadSignature,
      RejectCode.Malformed,
    ])
    // Authentic but under a key the pc lacks: held (another owner's concurrent epoch start may
    // still arrive), and refused with 9 only if none opens it within the hold time.
    expect(held.map((e) => [e.code, e.senderId])).toEqual([
      [RejectCode.UnknownSender, stranger.deviceId],
      [RejectCode.BadCiphertext, phoneKeys.value.deviceId],
    ])
    expect(pc.rejectionCounts()).toEqual({
      [RejectCode.BadSignature]: 5,
      [RejectCode.Malformed]: 2,
      [RejectCode.Replay]: 1,
    })
    expect(pc.memory.list().map((m) => m.text)).toEqual(['original'])

    // Sync carries on for everything else.
    const later = await phone.memory.remember({ text: 'still syncing' })
    await converge([phone, pc], net)
    expect(pc.memory.get(later.id)?.text).toBe('still syncing')
  })

  it('a tampered envelope arriving over the network is rejected on every receiver without stopping sync', async () => {
    const { phone, pc, rejected } = await setup()
    await phone.memory.remember({ text: 'a' })
    await converge([phone, pc], net)
    const bad = lastEnvelope(phone, 'personal')
    bad[bad.length - 100]! ^= 0xff
    inject(phone, 'personal', bad) // the phone itself pushes garbage into the shared log
    await converge([phone, pc], net)
    expect(rejected.map((e) => e.code)).toEqual([RejectCode.BadSignature])
    const after = await phone.memory.remember({ text: 'b' })
    await converge([phone, pc], net)
    expect(pc.memory.get(after.id)?.text).toBe('b')
  })
})
