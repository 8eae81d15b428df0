/**
 * Numeric rejection codes for untrusted input. They are part of the wire spec (WIRE.md): a
 * receiver that drops an envelope, statement or token reports one of these, counts it and carries
 * on. They never surface as exceptions in the app.
 *
 * @module
 */

/** Why an envelope, statement or token was refused. Stable numbers; never reuse one. */
export const RejectCode = {
  /** Bytes do not parse: truncated, trailing garbage, bad varint, wrong field length. */
  Malformed: 1,
  /** Version byte is not one this build understands. */
  UnsupportedVersion: 2,
  /** Type byte is not a known envelope/statement type. */
  UnknownType: 3,
  /** No certificate for the sender (yet). Envelopes with this code are held, not dropped. */
  UnknownSender: 4,
  /** The sender's certificate has been revoked. */
  RevokedSender: 5,
  /** The sender is not granted this scope. */
  NotGranted: 6,
  /** Ed25519 signature does not verify (flipped bits, wrong room, forged). */
  BadSignature: 7,
  /** No key for the envelope's epoch on this device (yet). Held, not dropped. */
  UnknownEpoch: 8,
  /** AEAD authentication failed (wrong key, wrong room/epoch/type, tampered ciphertext). */
  BadCiphertext: 9,
  /** The sender's sequence number was already seen: a replay. */
  Replay: 10,
  /** Decrypted payload is not a valid update/snapshot. */
  BadPayload: 11,
  /** Token or statement is outside its validity window. */
  Expired: 12,
  /** Token or statement names a different account or room than the one it is used for. */
  WrongAccount: 13,
  /**
   * Entries this device had applied were deleted from a shared sealed log (or public registry
   * statements from the registry room) by an operation it cannot authenticate, and no snapshot
   * left in the log contains them. Nothing is lost locally; the device republishes what it holds.
   */
  Erased: 14,
  /** Sealed under a key epoch older than the room's current one, past the grace window. */
  StaleEpoch: 15,
  /**
   * A held envelope (sender or key not known yet) was dropped: the room's hold is full, or the
   * registry never vouched for it within the hold time.
   */
  HoldLimit: 16,
} as const

/** One of the {@link RejectCode} numbers. */
export type RejectCode = (typeof RejectCode)[keyof typeof RejectCode]

const NAMES = new Map<number, string>(Object.entries(RejectCode).map(([name, code]) => [code, name]))

/** The symbolic name of a code, e.g. `rejectCodeName(7) === 'BadSignature'`. */
export function rejectCodeName(code: number): string {
  return NAMES.get(code) ?? `Unknown(${code})`
}

/** Result of checking untrusted bytes: the parsed value, or a code with a human-readable reason. */
export type Checked<T> = { ok: true; value: T } | { ok: false; code: RejectCode; reason: string }

/** Build a failed {@link Checked}. */
export function reject(code: RejectCode, reason: string): { ok: false; code: RejectCode; reason: string } {
  return { ok: false, code, reason }
}
