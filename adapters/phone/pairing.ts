/**
 * Pairing helpers for a phone's UI (ARCHITECTURE.md "adapters/phone", README "Phone"): the QR
 * payload a phone shows so glasses (or a car, a PC) can join by scanning instead of typing the
 * invite code, its parser with coded errors, and the SAS the two screens compare.
 *
 * QR payload, version 1 — one URI, ASCII only, so any QR encoder takes it in byte mode:
 *
 * ```
 * contextsync:pair?v=1&code=ABCD-EFGH-JKLM-NPQR&kind=glasses&relay=wss%3A%2F%2Frelay.example.com&exp=1764710400000
 * ```
 *
 * - `v`: the format version, `1`.
 * - `code`: the invite code (`XXXX-XXXX-XXXX-XXXX`), the only secret in it — a payload is as
 *   sensitive as the code it carries, and as short-lived.
 * - `kind`: the device kind the invite is for (`glasses`, `car`, `pc`, `phone`, `other`).
 * - `relay` (optional): the relay URL (`ws://` or `wss://`), percent-encoded.
 * - `exp`: when the code stops working (epoch ms).
 *
 * @module
 */
import { ValidationError, DEVICE_KINDS, type DeviceKind } from '../../src/index.js'
import { parseInviteCode } from '../../src/crypto/pairing.js'

/** The URI scheme and path of a pairing QR payload. */
export const PAIRING_QR_PREFIX = 'contextsync:pair?'

/** The QR payload version {@link pairingQr} writes and {@link parsePairingQr} reads. */
export const PAIRING_QR_VERSION = 1

/** What a pairing QR payload carries. */
export interface PairingPayload {
  /** The invite code. */
  code: string
  /** The kind of device the invite is for. */
  kind: DeviceKind
  /** The relay the joining device reaches the phone through, when the phone named one. */
  relayUrl?: string
  /** When the code stops working (epoch ms). */
  expiresAt: number
}

/** Why a QR payload was refused. */
export type PairingQrReason = 'scheme' | 'version' | 'code' | 'kind' | 'relay' | 'expired'

/** A QR payload that is not a valid contextsync pairing payload; `reason` says which part. */
export class PairingQrError extends ValidationError {
  override name = 'PairingQrError'
  constructor(
    /** Which part of the payload was refused. */
    readonly reason: PairingQrReason,
    message: string,
  ) {
    super(message)
  }
}

/**
 * The QR payload string for an invite (format in the module notes).
 *
 * @example
 * ```ts
 * const invite = await phone.device.devices.invite({ kind: 'glasses' })
 * ui.showQr(pairingQr({ code: invite.code, kind: 'glasses', relayUrl, expiresAt: invite.expiresAt }))
 * ```
 */
export function pairingQr(payload: PairingPayload): string {
  check(payload)
  const params = new URLSearchParams({ v: String(PAIRING_QR_VERSION), code: payload.code, kind: payload.kind })
  if (payload.relayUrl !== undefined) params.set('relay', payload.relayUrl)
  params.set('exp', String(payload.expiresAt))
  return PAIRING_QR_PREFIX + params.toString()
}

/**
 * Read a scanned QR payload. Throws {@link PairingQrError} (a `ValidationError`, code
 * `invalid-argument`) naming the part refused — `scheme`, `version`, `code`, `kind`, `relay`, or
 * `expired` when `now` is past the code's end.
 *
 * @example
 * ```ts
 * const { code } = parsePairingQr(scanned)
 * await ContextSync.join({ invite: code, … })
 * ```
 */
export function parsePairingQr(text: string, options: { now?: number } = {}): PairingPayload {
  if (typeof text !== 'string' || !text.startsWith(PAIRING_QR_PREFIX) || text.length > 1024) {
    throw new PairingQrError('scheme', `not a contextsync pairing payload (it starts with '${PAIRING_QR_PREFIX}')`)
  }
  const params = new URLSearchParams(text.slice(PAIRING_QR_PREFIX.length))
  if (params.get('v') !== String(PAIRING_QR_VERSION)) throw new PairingQrError('version', `pairing payload version ${params.get('v') ?? 'missing'} is not supported (expected ${PAIRING_QR_VERSION})`)
  const exp = Number(params.get('exp'))
  const relay = params.get('relay')
  const payload: PairingPayload = {
    code: params.get('code') ?? '',
    kind: (params.get('kind') ?? '') as DeviceKind,
    ...(relay !== null && { relayUrl: relay }),
    expiresAt: Number.isSafeInteger(exp) ? exp : NaN,
  }
  check(payload)
  if (payload.expiresAt <= (options.now ?? Date.now())) throw new PairingQrError('expired', 'this pairing code has expired; ask the phone for a new one')
  return payload
}

function check(payload: PairingPayload): void {
  if (typeof payload !== 'object' || payload === null) throw new PairingQrError('code', 'a pairing payload is { code, kind, relayUrl?, expiresAt }')
  if (typeof payload.code !== 'string' || !parseInviteCode(payload.code)) throw new PairingQrError('code', 'the invite code must look like XXXX-XXXX-XXXX-XXXX')
  if (!(DEVICE_KINDS as readonly string[]).includes(payload.kind)) throw new PairingQrError('kind', `unknown device kind '${String(payload.kind)}'; one of ${DEVICE_KINDS.join(', ')}`)
  if (payload.relayUrl !== undefined && (typeof payload.relayUrl !== 'string' || !/^wss?:\/\/[^\s/]+/.test(payload.relayUrl))) {
    throw new PairingQrError('relay', 'the relay must be a ws:// or wss:// URL')
  }
  if (!Number.isSafeInteger(payload.expiresAt) || payload.expiresAt <= 0) throw new PairingQrError('expired', 'expiresAt must be a time in epoch ms')
}

/**
 * The SAS as a phone shows it: the six digits in two groups (`123 456`), easier to compare
 * against the other screen at a glance. The digits themselves are unchanged.
 */
export function formatSas(sas: string): string {
  // The pairing code hands SAS values over already grouped; take both forms.
  if (typeof sas !== 'string' || !/^\d{3} ?\d{3}$/.test(sas)) throw new ValidationError('a SAS is six digits')
  const digits = sas.replace(' ', '')
  return `${digits.slice(0, 3)} ${digits.slice(3)}`
}
