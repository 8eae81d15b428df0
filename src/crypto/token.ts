/**
 * Relay access tokens: short-lived, signed by the device, carrying the chain to the account root.
 *
 * The relay must decide *before sending any state* whether a connection may join a room, without
 * holding any account secret. A token proves: this device key is certified by the root whose hash
 * is the account id, the account owns the room (`<accountId>.…`), and the device signed this
 * request for this room within a short window. The certificate inside is a *relay pass* — device
 * id and signing key only — so the relay does not learn device kinds or names.
 *
 * Wire format (lib0 encoding, then unpadded base64url; the WebSocket transport sends it as the
 * `contextsync.token.<token>` entry of `Sec-WebSocket-Protocol`, or as the `token` query
 * parameter for a server that reads only that):
 * ```
 * u8 version(2) · 32B rootPublicKey · varbytes relayPass (root-signed statement)
 * varstring roomId · varstring audience · varuint notBefore (s) · varuint expiresAt (s) · 16B nonce · 64B signature
 * signature = Ed25519(device, "contextsync/v1/relay-token" ‖ every preceding byte)
 * ```
 * The nonce lets the relay refuse a replayed token; tokens are single-use. The *audience* names
 * the relay the token is for (the `host[:port]` the device connects to, lowercase): a token sent
 * to one relay — or to whoever poses as it — is refused by every other, so a captured token is
 * worth nothing elsewhere.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { bytesEqual, fromBase64Url, toBase64Url, toHex } from '../util/bytes.js'
import { reject, RejectCode, type Checked } from './codes.js'
import { accountKeysFromPublicKey, ID_BYTES, keyId, type AccountKeys, type DeviceKeys } from './keys.js'
import { randomBytes, SIGNATURE_BYTES, signDetached, verifyDetached } from './primitives.js'
import { roomBelongsTo } from './keyring.js'
import { signStatement, StatementType, verifyStatement } from './statement.js'

const TOKEN_VERSION = 2
/** Longest audience a token may name. */
const MAX_AUDIENCE = 255
const TOKEN_DOMAIN = 'contextsync/v1/relay-token'
/** Default token lifetime. */
export const DEFAULT_TOKEN_LIFETIME_SECONDS = 300
/** Longest lifetime a relay accepts by default. */
export const MAX_TOKEN_LIFETIME_SECONDS = 3600

/** Options of {@link issueRelayPass}. */
export interface RelayPassOptions {
  /** Every room of the account (owner devices), or only these room ids. */
  rooms: 'all' | string[]
  issuedAt?: number
  /** The pass admits nothing from this time on (ms): a device whose membership ends (a rental car). */
  until?: number
  /** Per listed room, when its admission ends (ms): rooms of temporary grants. */
  roomsUntil?: Record<string, number>
}

/**
 * Issue a relay pass for a device (owner only): root-signed `{deviceId, signPublicKey, issuedAt,
 * rooms}`. `rooms: 'all'` (owner devices) admits every room of the account; otherwise only the
 * listed room ids — the relay's defence-in-depth check of scope grants. A newer pass for the same
 * device supersedes older ones. A pass with an end (`until`, `roomsUntil`) is a type 13 statement:
 * the relay refuses it, or the room, from then on by its own clock; the end is root-signed, so the
 * device cannot strip it.
 *
 * Body (type 2): `16B deviceId · 32B signPk · varuint issuedAt(ms) · u8 all · varuint n ·
 * varstring roomId × n`. Type 13: `16B deviceId · 32B signPk · varuint issuedAt(ms) ·
 * varuint until(ms, 0 = none) · u8 all · varuint n · (varstring roomId · varuint until(ms, 0 = none))ⁿ`.
 */
export function issueRelayPass(
  account: AccountKeys,
  device: Pick<DeviceKeys, 'deviceIdBytes' | 'signPublicKey'>,
  options: RelayPassOptions = { rooms: 'all' },
): Uint8Array {
  const rooms = options.rooms === 'all' ? [] : options.rooms
  const roomsUntil = options.roomsUntil ?? {}
  const ends = options.until !== undefined || rooms.some((room) => roomsUntil[room] !== undefined)
  const enc = encoding.createEncoder()
  encoding.writeUint8Array(enc, device.deviceIdBytes)
  encoding.writeUint8Array(enc, device.signPublicKey)
  encoding.writeVarUint(enc, options.issuedAt ?? Date.now())
  if (ends) encoding.writeVarUint(enc, options.until ?? 0)
  encoding.writeUint8(enc, options.rooms === 'all' ? 1 : 0)
  encoding.writeVarUint(enc, rooms.length)
  for (const room of rooms) {
    encoding.writeVarString(enc, room)
    if (ends) encoding.writeVarUint(enc, roomsUntil[room] ?? 0)
  }
  return signStatement(account, ends ? StatementType.RelayPassV2 : StatementType.RelayPass, encoding.toUint8Array(enc))
}

/** A verified relay pass. */
export interface RelayPass {
  deviceId: string
  signPublicKey: Uint8Array
  issuedAt: number
  /** Rooms the device may join: every room of the account, or these. */
  rooms: 'all' | string[]
  /** When the whole pass stops admitting (ms), if it ends. */
  until?: number
  /** When admission to a listed room ends (ms), for rooms that end. */
  roomsUntil?: Record<string, number>
}

/** Verify a relay pass (type 2, or type 13 with ends) against the account root. Never throws. */
export function verifyRelayPass(account: AccountKeys, bytes: Uint8Array): Checked<RelayPass> {
  const statement = verifyStatement(account, bytes)
  if (!statement.ok) return statement
  const type = statement.value.type
  if (type !== StatementType.RelayPass && type !== StatementType.RelayPassV2) return reject(RejectCode.UnknownType, 'not a relay pass')
  const ends = type === StatementType.RelayPassV2
  try {
    const dec = decoding.createDecoder(statement.value.body)
    const idBytes = decoding.readUint8Array(dec, ID_BYTES)
    const signPublicKey = decoding.readUint8Array(dec, 32).slice()
    const issuedAt = decoding.readVarUint(dec)
    const until = ends ? decoding.readVarUint(dec) : 0
    const all = decoding.readUint8(dec)
    const count = decoding.readVarUint(dec)
    if (count > 4096 || all > 1) return reject(RejectCode.Malformed, 'relay pass room list')
    const rooms: string[] = []
    const roomsUntil: Record<string, number> = {}
    for (let i = 0; i < count; i++) {
      const room = decoding.readVarString(dec)
      rooms.push(room)
      const roomUntil = ends ? decoding.readVarUint(dec) : 0
      if (roomUntil > 0) roomsUntil[room] = roomUntil
    }
    if (decoding.hasContent(dec)) return reject(RejectCode.Malformed, 'relay pass has trailing bytes')
    if (!bytesEqual(keyId(signPublicKey), idBytes)) return reject(RejectCode.Malformed, 'relay pass id/key mismatch')
    return {
      ok: true,
      value: {
        deviceId: toHex(idBytes),
        signPublicKey,
        issuedAt,
        rooms: all === 1 ? 'all' : rooms,
        ...(until > 0 && { until }),
        ...(Object.keys(roomsUntil).length > 0 && { roomsUntil }),
      },
    }
  } catch {
    return reject(RejectCode.Malformed, 'relay pass truncated')
  }
}

/**
 * When a verified pass stops admitting its device to `roomId` (ms): the earlier of the pass's own
 * end and the room's; `undefined` when neither ends.
 */
export function passEndsAt(pass: RelayPass, roomId: string): number | undefined {
  const ends = [pass.until, pass.roomsUntil?.[roomId]].filter((t): t is number => t !== undefined)
  return ends.length === 0 ? undefined : Math.min(...ends)
}

/** Inputs to {@link createAccessToken}. */
export interface AccessTokenInput {
  rootPublicKey: Uint8Array
  relayPass: Uint8Array
  device: Pick<DeviceKeys, 'signSecretKey'>
  roomId: string
  /**
   * The relay the token is for: the `host[:port]` of its URL as the device connects to it (see
   * {@link tokenAudience}). Relays refuse a token naming another audience, and by default one
   * naming none.
   */
  audience?: string
  /** Seconds the token stays valid; default {@link DEFAULT_TOKEN_LIFETIME_SECONDS}. */
  lifetimeSeconds?: number
  /** Clock in ms (tests). */
  now?: number
}

/** Create a single-use access token for one room, as an unpadded base64url string. */
export function createAccessToken(input: AccessTokenInput): string {
  const nowSeconds = Math.floor((input.now ?? Date.now()) / 1000)
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, TOKEN_VERSION)
  encoding.writeUint8Array(enc, input.rootPublicKey)
  encoding.writeVarUint8Array(enc, input.relayPass)
  encoding.writeVarString(enc, input.roomId)
  encoding.writeVarString(enc, (input.audience ?? '').toLowerCase().slice(0, MAX_AUDIENCE))
  encoding.writeVarUint(enc, nowSeconds)
  encoding.writeVarUint(enc, nowSeconds + (input.lifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_SECONDS))
  encoding.writeUint8Array(enc, randomBytes(16))
  const unsigned = encoding.toUint8Array(enc)
  const signature = signDetached(TOKEN_DOMAIN, unsigned, input.device.signSecretKey)
  const out = new Uint8Array(unsigned.length + SIGNATURE_BYTES)
  out.set(unsigned)
  out.set(signature, unsigned.length)
  return toBase64Url(out)
}

/** What a verified token grants. */
export interface AccessGrant {
  accountId: string
  deviceId: string
  roomId: string
  /** The relay it names (lowercase `host[:port]`), `''` when none. */
  audience: string
  /** Seconds since the epoch. */
  expiresAt: number
  /** Hex nonce, for the relay's replay cache. */
  nonce: string
  /** When the pass inside was issued (ms): a relay refuses passes older than the newest it knows. */
  passIssuedAt: number
  /** The account root public key the chain ends in (the relay verifies registry statements with it). */
  rootPublicKey: Uint8Array
  /** When the pass stops admitting the device to this room (ms), if it ends: close the connection then. */
  accessUntil?: number
}

/** Options of {@link verifyAccessToken}. */
export interface VerifyTokenOptions {
  /** The room the connection asks for; must equal the token's room. */
  roomId: string
  /** Clock in ms (tests). */
  now?: number
  /** Tolerated clock difference; default 60 s. */
  clockSkewSeconds?: number
  /** Longest accepted lifetime; default {@link MAX_TOKEN_LIFETIME_SECONDS}. */
  maxLifetimeSeconds?: number
  /**
   * The audiences this verifier answers to (lowercase `host[:port]`): the token must name one of
   * them. Omitted: the audience is not checked (a tool reading a token, not a relay).
   */
  audiences?: readonly string[]
}

/** The audience of a relay URL: its lowercase `host[:port]` (`ws://Relay.example:8787/x` → `relay.example:8787`). */
export function tokenAudience(url: string): string {
  try {
    return new URL(url).host.toLowerCase()
  } catch {
    return ''
  }
}

/**
 * Verify a token for a room: structure, root → pass → device signature chain, account namespace,
 * room and time window. Replay (nonce reuse) is the relay's job: it keeps nonces until expiry.
 * Never throws.
 */
export function verifyAccessToken(token: string, options: VerifyTokenOptions): Checked<AccessGrant> {
  const bytes = typeof token === 'string' && token.length <= 4096 ? fromBase64Url(token) : undefined
  if (!bytes || bytes.length < 1 + 32 + 1 + 1 + 1 + 1 + 16 + SIGNATURE_BYTES) {
    return reject(RejectCode.Malformed, 'token is not base64url or too short')
  }
  let root: Uint8Array, pass: Uint8Array, roomId: string, audience: string, notBefore: number, expiresAt: number, nonce: Uint8Array
  let signatureStart: number
  try {
    const dec = decoding.createDecoder(bytes)
    const version = decoding.readUint8(dec)
    if (version !== TOKEN_VERSION) return reject(RejectCode.UnsupportedVersion, `token version ${version}`)
    root = decoding.readUint8Array(dec, 32)
    pass = decoding.readVarUint8Array(dec)
    roomId = decoding.readVarString(dec)
    audience = decoding.readVarString(dec)
    if (audience.length > MAX_AUDIENCE) return reject(RejectCode.Malformed, 'token audience too long')
    notBefore = decoding.readVarUint(dec)
    expiresAt = decoding.readVarUint(dec)
    nonce = decoding.readUint8Array(dec, 16)
    signatureStart = dec.pos
    if (bytes.length - signatureStart !== SIGNATURE_BYTES) return reject(RejectCode.Malformed, 'token length')
  } catch {
    return reject(RejectCode.Malformed, 'token truncated')
  }
  const account = accountKeysFromPublicKey(root.slice())
  const verifiedPass = verifyRelayPass(account, pass)
  if (!verifiedPass.ok) return verifiedPass
  if (
    !verifyDetached(TOKEN_DOMAIN, bytes.subarray(0, signatureStart), bytes.subarray(signatureStart), verifiedPass.value.signPublicKey)
  ) {
    return reject(RejectCode.BadSignature, 'token signature')
  }
  if (roomId !== options.roomId) return reject(RejectCode.WrongAccount, 'token is for another room')
  if (options.audiences && !options.audiences.includes(audience)) {
    return reject(RejectCode.WrongAccount, audience === '' ? 'token names no relay' : 'token is for another relay')
  }
  if (!roomBelongsTo(roomId, account.accountId)) return reject(RejectCode.WrongAccount, 'room is not in the token account')
  const rooms = verifiedPass.value.rooms
  if (rooms !== 'all' && !rooms.includes(roomId)) return reject(RejectCode.NotGranted, 'the relay pass does not cover this room')
  // No clock skew in the device's favour here: the end is the owner's decision, by this clock.
  const accessUntil = passEndsAt(verifiedPass.value, roomId)
  if (accessUntil !== undefined && (options.now ?? Date.now()) >= accessUntil) return reject(RejectCode.NotGranted, 'temporary access ended')
  const now = Math.floor((options.now ?? Date.now()) / 1000)
  const skew = options.clockSkewSeconds ?? 60
  const maxLifetime = options.maxLifetimeSeconds ?? MAX_TOKEN_LIFETIME_SECONDS
  if (expiresAt <= notBefore || expiresAt - notBefore > maxLifetime) return reject(RejectCode.Expired, 'token lifetime')
  if (now + skew < notBefore) return reject(RejectCode.Expired, 'token not valid yet')
  if (now - skew >= expiresAt) return reject(RejectCode.Expired, 'token expired')
  return {
    ok: true,
    value: {
      accountId: account.accountId,
      deviceId: verifiedPass.value.deviceId,
      roomId,
      audience,
      expiresAt,
      nonce: toHex(nonce),
      passIssuedAt: verifiedPass.value.issuedAt,
      rootPublicKey: account.rootPublicKey,
      ...(accessUntil !== undefined && { accessUntil }),
    },
  }
}
