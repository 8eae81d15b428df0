/**
 * The key-management statements and the keyring (WIRE.md "Signed statements", "Keys and epochs"):
 * revocation cutoffs, salted epoch starts and lockboxes, their bounds, canonical starts, safety
 * and epoch freshness on both clocks.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import * as encoding from 'lib0/encoding'
import {
  createAccountKeys,
  createDeviceKeys,
  DeviceKeyring,
  issueLockbox,
  lockboxKey,
  MAX_CUTOFF_RANGES,
  MAX_CUTOFF_ROOMS,
  MAX_EPOCH_RECIPIENTS,
  openLockbox,
  ready,
  RejectCode,
  signEpochStart,
  signRevocation,
  signTypedStatement,
  startIdOf,
  StatementType,
  verifyEpochStart,
  verifyLockbox,
  verifyRevocation,
  type KeyringClock,
} from '../../../src/crypto/index.js'
import { deriveKey, hash } from '../../../src/crypto/primitives.js'
import { epochKey } from '../../../src/crdt/registry.js'
import { SeqSet } from '../../../src/sync/seq-set.js'
import { fromHex, utf8 } from '../../../src/util/bytes.js'

beforeAll(() => ready())

function seqs(...ranges: Array<[number, number]>): SeqSet {
  const set = new SeqSet()
  for (const [start, end] of ranges) set.addRange(start, end)
  return set
}

describe('revocation statements', () => {
  it('state exact seq sets per room, and a legacy revocation verifies with no cutoffs', () => {
    const account = createAccountKeys()
    const device = createDeviceKeys()
    const bytes = signRevocation(account, { deviceId: device.deviceId, revokedAt: 9, cutoffs: new Map([['a.r', { epoch: 3, seqs: seqs([1, 2], [1025, 1030]) }]]) })
    const r = verifyRevocation(account, bytes)
    if (!r.ok) throw new Error(r.reason)
    expect(r.value.cutoffs.get('a.r')?.epoch).toBe(3)
    expect(r.value.cutoffs.get('a.r')?.seqs.toRanges()).toEqual([[1, 2], [1025, 1030]])
    expect(bytes[1]).toBe(StatementType.RevocationV2)
    const legacy = signTypedStatement(account, StatementType.Revocation, (enc) => {
      encoding.writeUint8Array(enc, fromHex(device.deviceId)!)
      encoding.writeVarUint(enc, 5)
      encoding.writeVarUint(enc, 1)
      encoding.writeVarString(enc, 'a.r')
      encoding.writeVarUint(enc, 1)
      encoding.writeVarUint(enc, 500)
    })
    expect(verifyRevocation(account, legacy)).toMatchObject({ ok: true, value: { deviceId: device.deviceId, revokedAt: 5, cutoffs: new Map() } })
    expect(verifyRevocation(createAccountKeys(), bytes)).toMatchObject({ ok: false, code: RejectCode.BadSignature })
  })

  it('refuse counts past their bounds with the reason (code 1)', () => {
    const account = createAccountKeys()
    const device = createDeviceKeys()
    const body = (write: (enc: encoding.Encoder) => void) =>
      signTypedStatement(account, StatementType.RevocationV2, (enc) => {
        encoding.writeUint8Array(enc, fromHex(device.deviceId)!)
        encoding.writeVarUint(enc, 1)
        write(enc)
      })
    const tooManyRooms = body((enc) => encoding.writeVarUint(enc, MAX_CUTOFF_ROOMS + 1))
    expect(verifyRevocation(account, tooManyRooms)).toMatchObject({ ok: false, code: RejectCode.Malformed, reason: expect.stringMatching(/rooms, more than/) })
    const tooManyRanges = body((enc) => {
      encoding.writeVarUint(enc, 1)
      encoding.writeVarString(enc, 'a.r')
      encoding.writeVarUint(enc, 1)
      encoding.writeVarUint(enc, MAX_CUTOFF_RANGES + 1)
    })
    expect(verifyRevocation(account, tooManyRanges)).toMatchObject({ ok: false, code: RejectCode.Malformed, reason: expect.stringMatching(/seq ranges, more than/) })
    const twice = body((enc) => {
      encoding.writeVarUint(enc, 2)
      for (let i = 0; i < 2; i++) {
        encoding.writeVarString(enc, 'a.r')
        encoding.writeVarUint(enc, 1)
        seqs([1, 1]).encode(enc)
      }
    })
    expect(verifyRevocation(account, twice)).toMatchObject({ ok: false, code: RejectCode.Malformed, reason: expect.stringMatching(/twice/) })
    const truncated = body((enc) => encoding.writeVarUint(enc, 1))
    expect(verifyRevocation(account, truncated)).toMatchObject({ ok: false, code: RejectCode.Malformed })
  })
})

describe('epoch starts and lockboxes', () => {
  it('carry a salt and recipients; legacy forms still verify; start ids key them apart', () => {
    const account = createAccountKeys()
    const car = createDeviceKeys()
    const glasses = createDeviceKeys()
    const salt = new Uint8Array(32).fill(0xab)
    const start = signEpochStart(account, { roomId: 'a.r', epoch: 2, startedAt: 7, salt, recipients: [glasses.deviceId, car.deviceId, car.deviceId] })
    expect(start[1]).toBe(StatementType.EpochStartV2)
    expect(verifyEpochStart(account, start)).toMatchObject({ ok: true, value: { roomId: 'a.r', epoch: 2, startedAt: 7, salt, recipients: [car.deviceId, glasses.deviceId].sort() } })
    const legacy = signEpochStart(account, { roomId: 'a.r', epoch: 2, startedAt: 7 })
    expect(legacy[1]).toBe(StatementType.EpochStart)
    const legacyValue = verifyEpochStart(account, legacy)
    expect(legacyValue.ok && legacyValue.value.salt === undefined && legacyValue.value.recipients === undefined).toBe(true)
    expect(startIdOf(salt)).toBe('abababababababab')
    expect(startIdOf(undefined)).toBe('')
    expect(epochKey('a.r', 2, startIdOf(salt))).toBe('epoch/a.r/2/abababababababab')
    expect(epochKey('a.r', 2)).toBe('epoch/a.r/2')
    expect(lockboxKey('a.r', 2, car.deviceId, startIdOf(salt))).toBe(`lockbox/a.r/2/abababababababab/${car.deviceId}`)

    const key = new Uint8Array(32).fill(3)
    const box = verifyLockbox(account, issueLockbox(account, car, 'a.r', 2, key, salt))
    if (!box.ok) throw new Error(box.reason)
    expect(box.value.salt).toEqual(salt)
    expect(openLockbox(box.value, car)).toEqual(key)
    const legacyBox = verifyLockbox(account, issueLockbox(account, car, 'a.r', 0, key))
    expect(legacyBox.ok && legacyBox.value.salt === undefined).toBe(true)
    // Lockboxes are not epoch starts, and the other way round.
    expect(verifyEpochStart(account, issueLockbox(account, car, 'a.r', 0, key))).toMatchObject({ ok: false, code: RejectCode.UnknownType })
    expect(verifyLockbox(account, start)).toMatchObject({ ok: false, code: RejectCode.UnknownType })
  })

  it('an epoch start naming too many recipients is refused (code 1)', () => {
    const account = createAccountKeys()
    const bytes = signTypedStatement(account, StatementType.EpochStartV2, (enc) => {
      encoding.writeVarString(enc, 'a.r')
      encoding.writeVarUint(enc, 1)
      encoding.writeVarUint(enc, 1)
      encoding.writeUint8Array(enc, new Uint8Array(32))
      encoding.writeVarUint(enc, MAX_EPOCH_RECIPIENTS + 1)
    })
    expect(verifyEpochStart(account, bytes)).toMatchObject({ ok: false, code: RejectCode.Malformed, reason: expect.stringMatching(/recipients, more than/) })
  })
})

describe('keyring', () => {
  function clock(): KeyringClock & { wall: number; mono: number } {
    const c = { wall: 1_000_000, mono: 500, now: () => c.wall, monotonic: () => c.mono }
    return c
  }

  it('derives legacy keys as before, salted keys per start, and seals under the smallest salt', () => {
    const account = createAccountKeys()
    const keyring = new DeviceKeyring(account)
    const master = hash(account.rootSeed!, 32, utf8('contextsync/v1/account-master'))
    // Epoch 0 and legacy starts: the derivation existing stores were written with.
    expect(keyring.epochKey('personal', 0)).toEqual(deriveKey(master, 'scope/personal/epoch/0'))
    const roomId = keyring.roomId('personal')
    keyring.addStart({ roomId, epoch: 1, startedAt: 1 })
    expect(keyring.sealingKey('personal')).toEqual({ epoch: 1, key: deriveKey(master, 'scope/personal/epoch/1') })
    const high = new Uint8Array(32).fill(0xf0)
    const low = new Uint8Array(32).fill(0x10)
    keyring.addStart({ roomId, epoch: 2, startedAt: 2, salt: high, recipients: [] })
    const highKey = keyring.sealingKey('personal')!.key
    keyring.addStart({ roomId, epoch: 2, startedAt: 3, salt: low, recipients: [] })
    const sealing = keyring.sealingKey('personal')!
    expect(sealing.epoch).toBe(2)
    expect(sealing.key).not.toEqual(highKey)
    expect(keyring.openingKeys('personal', 2)).toEqual([sealing.key, highKey])
    expect(keyring.starts(roomId, 2).map((s) => s.startId)).toEqual([startIdOf(low), startIdOf(high)])
  })

  it('a member seals only under the canonical start, with its key, once it is safe; it opens only with every key of an epoch', () => {
    const account = createAccountKeys()
    const owner = new DeviceKeyring(account)
    const member = new DeviceKeyring({ accountId: account.accountId, rootPublicKey: account.rootPublicKey })
    const roomId = owner.roomId('personal')
    member.setRoom('personal', roomId)
    const a = new Uint8Array(32).fill(1)
    const b = new Uint8Array(32).fill(2)
    owner.addStart({ roomId, epoch: 1, startedAt: 1, salt: a, recipients: ['x'] })
    owner.addStart({ roomId, epoch: 1, startedAt: 1, salt: b, recipients: ['y'] })
    const keyA = owner.openingKeys('personal', 1)[0]!
    const keyB = owner.openingKeys('personal', 1)[1]!
    // Only B's lockbox has arrived, and B's start is known: B is not canonical, so no sealing.
    member.addKey(roomId, 1, keyB, b)
    member.addStart({ roomId, epoch: 1, startedAt: 1, salt: b, recipients: ['y'] })
    expect(member.currentEpoch('personal')).toBe(1)
    expect(member.sealingKey('personal')).toBeDefined() // B is the only start it knows
    member.addStart({ roomId, epoch: 1, startedAt: 1, salt: a, recipients: ['x'] })
    expect(member.sealingKey('personal')).toBeUndefined() // A is canonical, and its key is missing
    expect(member.openingKeys('personal', 1)).toEqual([]) // hold, rather than refuse what A sealed
    member.addKey(roomId, 1, keyA, a)
    expect(member.sealingKey('personal')).toEqual({ epoch: 1, key: keyA })
    expect(member.openingKeys('personal', 1)).toEqual([keyA, keyB])
    // The registry's rule decides safety: a start sealed to a device that must not hold it.
    member.setSafetyCheck((_scope, start) => !start.recipients?.includes('x'))
    expect(member.sealingKey('personal')).toBeUndefined()
    // A key whose start has not arrived moves the epoch on, but is not sealed under.
    member.addKey(roomId, 2, new Uint8Array(32).fill(9), new Uint8Array(32).fill(7))
    expect(member.currentEpoch('personal')).toBe(2)
    expect(member.sealingKey('personal')).toBeUndefined()
  })

  it('an epoch is stale only once a later start is older than the grace window on both clocks', () => {
    const account = createAccountKeys()
    const c = clock()
    const keyring = new DeviceKeyring(account, undefined, { clock: c })
    const roomId = keyring.roomId('personal')
    expect(keyring.isStale('personal', 0, 100)).toBe(false)
    // The owner started epoch 1 long ago by its clock, but this device learns of it only now.
    keyring.addStart({ roomId, epoch: 1, startedAt: c.wall - 10_000, salt: new Uint8Array(32).fill(1), recipients: [] })
    expect(keyring.isStale('personal', 0, 100)).toBe(false)
    c.mono += 100
    expect(keyring.isStale('personal', 0, 100)).toBe(true)
    expect(keyring.isStale('personal', 1, 100)).toBe(false)
    // An owner clock ahead of this one: learned long ago here, but not old by the owner's clock.
    keyring.addStart({ roomId, epoch: 2, startedAt: c.wall + 5_000, salt: new Uint8Array(32).fill(2), recipients: [] })
    c.mono += 10_000
    expect(keyring.isStale('personal', 1, 100)).toBe(false)
    c.wall += 5_100
    expect(keyring.isStale('personal', 1, 100)).toBe(true)
  })
})
