import { beforeAll, describe, expect, it } from 'vitest'
import {
  createAccountKeys,
  createDeviceKeys,
  createInviteSecret,
  decodeRecoveryCode,
  encodeRecoveryCode,
  formatInviteCode,
  issueLockbox,
  issueRelayPass,
  openLockbox,
  openPairingMessage,
  pairingCommitment,
  pairingKey,
  pairingRoomId,
  pairingSas,
  parseInviteCode,
  PairingMessageType,
  randomBytes,
  ready,
  RejectCode,
  sealPairingMessage,
  signEpochStart,
  signGrant,
  signRevocation,
  signScopeDefinition,
  verifyEpochStart,
  verifyGrant,
  verifyLockbox,
  verifyRelayPass,
  verifyRevocation,
  verifyScopeDefinition,
} from '../../src/crypto/index.js'
import { SeqSet } from '../../src/sync/seq-set.js'

beforeAll(() => ready())

describe('registry statements', () => {
  it('round-trip and verify only against their own root', () => {
    const account = createAccountKeys()
    const other = createAccountKeys()
    const device = createDeviceKeys()
    const seqs = new SeqSet()
    seqs.addRange(1, 17)
    const cutoffs = new Map([['room-a', { epoch: 2, seqs }]])
    const revocation = signRevocation(account, { deviceId: device.deviceId, revokedAt: 5, cutoffs })
    expect(verifyRevocation(account, revocation)).toMatchObject({ ok: true, value: { deviceId: device.deviceId, revokedAt: 5, cutoffs } })
    expect(verifyRevocation(other, revocation)).toMatchObject({ ok: false, code: RejectCode.BadSignature })
    const scope = signScopeDefinition(account, { name: 'family', roomId: 'r', kinds: ['phone', 'pc'], retentionMs: 1000, definedAt: 9 })
    expect(verifyScopeDefinition(account, scope)).toMatchObject({ ok: true, value: { name: 'family', kinds: ['phone', 'pc'], retentionMs: 1000 } })
    const grant = signGrant(account, { scope: 'health', deviceId: device.deviceId, grantedAt: 1 })
    expect(verifyGrant(account, grant)).toMatchObject({ ok: true, value: { scope: 'health', deviceId: device.deviceId } })
    const epoch = signEpochStart(account, { roomId: 'r', epoch: 3, startedAt: 2 })
    expect(verifyEpochStart(account, epoch)).toMatchObject({ ok: true, value: { roomId: 'r', epoch: 3 } })
    // A statement of one type is not accepted as another.
    expect(verifyGrant(account, epoch)).toMatchObject({ ok: false, code: RejectCode.UnknownType })
    const truncated = grant.subarray(0, grant.length - 1)
    expect(verifyGrant(account, truncated).ok).toBe(false)
  })

  it('lockboxes open only for their recipient, and only root-signed ones verify', () => {
    const account = createAccountKeys()
    const car = createDeviceKeys()
    const glasses = createDeviceKeys()
    const key = new Uint8Array(32).fill(7)
    const bytes = issueLockbox(account, car, 'room', 1, key)
    const lockbox = verifyLockbox(account, bytes)
    if (!lockbox.ok) throw new Error('lockbox does not verify')
    expect(openLockbox(lockbox.value, car)).toEqual(key)
    expect(openLockbox({ ...lockbox.value, recipient: glasses.deviceId }, glasses)).toBeUndefined()
    expect(verifyLockbox(createAccountKeys(), bytes)).toMatchObject({ ok: false, code: RejectCode.BadSignature })
  })

  it('relay passes list the rooms they admit', () => {
    const account = createAccountKeys()
    const device = createDeviceKeys()
    expect(verifyRelayPass(account, issueRelayPass(account, device, { rooms: ['a.b', 'a.c'], issuedAt: 3 }))).toMatchObject({
      ok: true,
      value: { rooms: ['a.b', 'a.c'], issuedAt: 3, deviceId: device.deviceId },
    })
    expect(verifyRelayPass(account, issueRelayPass(account, device))).toMatchObject({ ok: true, value: { rooms: 'all' } })
  })
})

describe('codes', () => {
  it('invite codes round-trip, forgive case, dashes and look-alike letters, and reject junk', () => {
    for (let i = 0; i < 50; i++) {
      const secret = createInviteSecret()
      const code = formatInviteCode(secret)
      expect(code).toMatch(/^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$/)
      expect(parseInviteCode(code)).toEqual(secret)
      expect(parseInviteCode(code.toLowerCase().replace(/-/g, ' '))).toEqual(secret)
      expect(parseInviteCode(code.replace(/1/g, 'l').replace(/0/g, 'O'))).toEqual(secret)
    }
    expect(parseInviteCode('AAAA-BBBB')).toBeUndefined()
    expect(parseInviteCode('UUUU-UUUU-UUUU-UUUU')).toBeUndefined()
  })

  it('recovery codes round-trip and catch any single typo', () => {
    const seed = createAccountKeys().rootSeed!
    const code = encodeRecoveryCode(seed)
    expect(decodeRecoveryCode(code)).toEqual(seed)
    const chars = code.replace(/-/g, '')
    let caught = 0
    for (let i = 0; i < chars.length - 1; i++) {
      const typo = chars.slice(0, i) + (chars[i] === 'A' ? 'B' : 'A') + chars.slice(i + 1)
      if (decodeRecoveryCode(typo) === undefined) caught++
    }
    // A 16-bit checksum misses a typo with probability 1/65536.
    expect(caught).toBeGreaterThanOrEqual(chars.length - 2)
  })

  it('pairing messages bind the room and type, and the SAS depends on every part of the transcript', () => {
    const secret = createInviteSecret()
    const key = pairingKey(secret)
    const room = pairingRoomId(secret)
    expect(room).toMatch(/^pair\.[A-Za-z0-9_-]{22}$/)
    const sealed = sealPairingMessage(key, room, PairingMessageType.Welcome, new Uint8Array([1, 2, 3]))
    expect(openPairingMessage(key, room, sealed)).toMatchObject({ ok: true, value: { type: PairingMessageType.Welcome } })
    expect(openPairingMessage(key, pairingRoomId(createInviteSecret()), sealed)).toMatchObject({ ok: false, code: RejectCode.BadCiphertext })
    expect(openPairingMessage(pairingKey(createInviteSecret()), room, sealed)).toMatchObject({ ok: false, code: RejectCode.BadCiphertext })
    const retyped = sealed.slice()
    retyped[1] = PairingMessageType.JoinRequest
    expect(openPairingMessage(key, room, retyped).ok).toBe(false)
    expect(openPairingMessage(key, room, new Uint8Array(5))).toMatchObject({ ok: false, code: RejectCode.Malformed })
    const device = createDeviceKeys()
    const other = createDeviceKeys()
    const transcript = {
      rootPublicKey: createAccountKeys().rootPublicKey,
      signPublicKey: device.signPublicKey,
      boxPublicKey: device.boxPublicKey,
      ownerNonce: randomBytes(32),
      joinerNonce: randomBytes(32),
    }
    const sas = pairingSas(key, transcript)
    expect(sas).toMatch(/^\d{3} \d{3}$/)
    expect(pairingSas(key, { ...transcript })).toBe(sas)
    // Any part swapped — another account, another device's keys, either nonce, another code — changes it
    // (six digits: a chance collision is one in a million per comparison).
    expect(pairingSas(key, { ...transcript, rootPublicKey: createAccountKeys().rootPublicKey })).not.toBe(sas)
    expect(pairingSas(key, { ...transcript, signPublicKey: other.signPublicKey })).not.toBe(sas)
    expect(pairingSas(key, { ...transcript, boxPublicKey: other.boxPublicKey })).not.toBe(sas)
    expect(pairingSas(key, { ...transcript, ownerNonce: randomBytes(32) })).not.toBe(sas)
    expect(pairingSas(key, { ...transcript, joinerNonce: randomBytes(32) })).not.toBe(sas)
    expect(pairingSas(pairingKey(createInviteSecret()), transcript)).not.toBe(sas)
    // The commitment binds the nonce.
    expect(pairingCommitment(transcript.joinerNonce)).toEqual(pairingCommitment(transcript.joinerNonce.slice()))
    expect(pairingCommitment(transcript.joinerNonce)).not.toEqual(pairingCommitment(randomBytes(32)))
  })
})
