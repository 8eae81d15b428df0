import { beforeAll, describe, expect, it } from 'vitest'
import {
  createAccountKeys,
  createDeviceKeys,
  EnvelopeType,
  issueCertificate,
  ownerKeyring,
  openEnvelope,
  parseEnvelope,
  ready,
  RejectCode,
  sealEnvelope,
  verifyCertificate,
  createAccessToken,
  issueRelayPass,
  verifyAccessToken,
  decodeDeviceKeys,
  encodeDeviceKeys,
  decodeAccountKeys,
  encodeAccountKeys,
  accountKeysFromPublicKey,
} from '../../src/crypto/index.js'
import { utf8, fromUtf8 } from '../../src/util/bytes.js'

beforeAll(async () => {
  await ready()
})

function setup() {
  const account = createAccountKeys()
  const device = createDeviceKeys()
  const keyring = ownerKeyring(account)
  const roomId = keyring.roomId('personal')
  const key = keyring.epochKey('personal', 0)!
  const seal = (plaintext: Uint8Array, over: Partial<Parameters<typeof sealEnvelope>[0]> = {}) =>
    sealEnvelope({
      roomId,
      type: EnvelopeType.Update,
      epoch: 0,
      seq: 1,
      sender: device.deviceIdBytes,
      signSecretKey: device.signSecretKey,
      key,
      plaintext,
      ...over,
    })
  const open = (bytes: Uint8Array, room = roomId, k = key, pk = device.signPublicKey) => {
    const parsed = parseEnvelope(bytes)
    if (!parsed.ok) return parsed
    return openEnvelope(parsed.value, room, pk, k)
  }
  return { account, device, keyring, roomId, key, seal, open }
}

describe('envelope v1', () => {
  it('round-trips and exposes the header', () => {
    const { seal, open, device } = setup()
    const bytes = seal(utf8('hello'), { seq: 42, epoch: 3 })
    const parsed = parseEnvelope(bytes)
    expect(parsed.ok && parsed.value).toMatchObject({ type: 1, epoch: 3, seq: 42, senderId: device.deviceId })
    const opened = open(bytes)
    expect(opened.ok && fromUtf8(opened.value)).toBe('hello')
  })

  it('hides the plaintext', () => {
    const { seal } = setup()
    const bytes = seal(utf8('secret-marker-xyz'))
    expect(Buffer.from(bytes).includes('secret-marker-xyz')).toBe(false)
  })

  it('rejects every single flipped bit', () => {
    const { seal, open } = setup()
    const bytes = seal(utf8('x'.repeat(10)))
    for (let i = 0; i < bytes.length; i++) {
      const copy = bytes.slice()
      copy[i]! ^= 1 << (i % 8)
      const result = open(copy)
      expect(result.ok, `bit flip at byte ${i}`).toBe(false)
    }
  })

  it('rejects truncation with Malformed', () => {
    const { seal, open } = setup()
    const bytes = seal(utf8('abc'))
    for (let n = 0; n < bytes.length; n++) {
      const result = open(bytes.subarray(0, n))
      expect(result.ok ? 0 : result.code).toBe(RejectCode.Malformed)
    }
    const longer = new Uint8Array(bytes.length + 1)
    longer.set(bytes)
    expect(open(longer)).toMatchObject({ ok: false, code: RejectCode.Malformed })
  })

  it('cannot be moved to another room or opened with another epoch key', () => {
    const { seal, open, keyring, key } = setup()
    const bytes = seal(utf8('abc'))
    expect(open(bytes, keyring.roomId('health'))).toMatchObject({ ok: false, code: RejectCode.BadSignature })
    const other = keyring.epochKey('health', 0)!
    expect(other).not.toEqual(key)
    expect(open(bytes, undefined, other)).toMatchObject({ ok: false, code: RejectCode.BadCiphertext })
  })

  it('rejects an unknown signer', () => {
    const { seal, open } = setup()
    const stranger = createDeviceKeys()
    expect(open(seal(utf8('abc')), undefined, undefined, stranger.signPublicKey)).toMatchObject({
      ok: false,
      code: RejectCode.BadSignature,
    })
  })

  it('rejects a re-signed envelope whose header was altered (AAD binds the header)', () => {
    const { open, device, roomId, key } = setup()
    // An attacker holding a device key but not... simply: seal for epoch 0, then claim epoch 1
    const bytes = sealEnvelope({ roomId, type: EnvelopeType.Update, epoch: 0, seq: 1, sender: device.deviceIdBytes, signSecretKey: device.signSecretKey, key, plaintext: utf8('a') })
    const moved = bytes.slice()
    moved[1] = EnvelopeType.Snapshot
    expect(open(moved).ok).toBe(false)
  })

  it('rejects unknown version and type with their codes', () => {
    const { seal } = setup()
    const bytes = seal(utf8('abc'))
    const v = bytes.slice()
    v[0] = 9
    expect(parseEnvelope(v)).toMatchObject({ ok: false, code: RejectCode.UnsupportedVersion })
    const t = bytes.slice()
    t[1] = 77
    expect(parseEnvelope(t)).toMatchObject({ ok: false, code: RejectCode.UnknownType })
    expect(parseEnvelope('nope')).toMatchObject({ ok: false, code: RejectCode.Malformed })
  })
})

describe('keys, certificates, tokens', () => {
  it('persists device and account keys', () => {
    const { account, device } = setup()
    const d = decodeDeviceKeys(encodeDeviceKeys(device))
    expect(d.ok && d.value.deviceId).toBe(device.deviceId)
    const a = decodeAccountKeys(encodeAccountKeys(account))
    expect(a.ok && a.value.accountId).toBe(account.accountId)
    const pub = decodeAccountKeys(encodeAccountKeys(accountKeysFromPublicKey(account.rootPublicKey)))
    expect(pub.ok && pub.value.rootSecretKey).toBeUndefined()
    expect(decodeDeviceKeys(new Uint8Array(3))).toMatchObject({ ok: false, code: RejectCode.Malformed })
  })

  it('verifies certificates against the root only', () => {
    const { account, device } = setup()
    const cert = issueCertificate(account, device, { kind: 'car', name: 'Car', role: 'member' })
    const ok = verifyCertificate(account, cert)
    expect(ok.ok && ok.value).toMatchObject({ deviceId: device.deviceId, kind: 'car', name: 'Car', role: 'member' })
    const forger = createAccountKeys()
    const forged = issueCertificate(forger, device, { kind: 'car', name: 'Car', role: 'owner' })
    expect(verifyCertificate(account, forged)).toMatchObject({ ok: false, code: RejectCode.BadSignature })
  })

  it('issues and verifies relay tokens, refusing wrong room, expiry and forgery', () => {
    const { account, device, keyring } = setup()
    const roomId = keyring.roomId('personal')
    const relayPass = issueRelayPass(account, device)
    const token = createAccessToken({ rootPublicKey: account.rootPublicKey, relayPass, device, roomId })
    const ok = verifyAccessToken(token, { roomId })
    expect(ok.ok && ok.value).toMatchObject({ accountId: account.accountId, deviceId: device.deviceId, roomId })
    expect(verifyAccessToken(token, { roomId: keyring.roomId('health') })).toMatchObject({ ok: false, code: RejectCode.WrongAccount })
    expect(verifyAccessToken(token, { roomId, now: Date.now() + 3600_000 })).toMatchObject({ ok: false, code: RejectCode.Expired })
    const stranger = createDeviceKeys()
    const forged = createAccessToken({ rootPublicKey: account.rootPublicKey, relayPass, device: stranger, roomId })
    expect(verifyAccessToken(forged, { roomId })).toMatchObject({ ok: false, code: RejectCode.BadSignature })
    const otherAccount = createAccountKeys()
    const foreignRoom = ownerKeyring(otherAccount).roomId('personal')
    const wrongNs = createAccessToken({ rootPublicKey: account.rootPublicKey, relayPass, device, roomId: foreignRoom })
    expect(verifyAccessToken(wrongNs, { roomId: foreignRoom })).toMatchObject({ ok: false, code: RejectCode.WrongAccount })
    expect(verifyAccessToken('!!!', { roomId })).toMatchObject({ ok: false, code: RejectCode.Malformed })
    expect(verifyAccessToken(token.slice(0, 40), { roomId })).toMatchObject({ ok: false, code: RejectCode.Malformed })
  })
})
