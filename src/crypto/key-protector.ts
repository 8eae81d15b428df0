/**
 * Keys at rest (WIRE.md "Device store layout", `keys/…`; THREAT_MODEL.md "Someone who copies a
 * device's disk"). A device's signing and box seeds — and on owner devices the account root seed —
 * are the account: whoever copies them reads and writes as that device for good. So the store
 * holds them only as a *protected record*, wrapped by a {@link KeyProtector} the app chooses: a
 * passphrase (`passphraseKeys`, Argon2id), a platform keystore the host app plugs in (Android
 * Keystore, Apple Keychain, a TPM), or — asked for by name — {@link plainKeys}.
 *
 * ```
 * record = u8 2 · varstring protector kind · varbytes wrapped     (a version-1 record is a plain key record)
 * ```
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

/**
 * Wraps and unwraps the device's key records. `label` names the record (`device`, `account`); a
 * protector must bind its output to it, so one record cannot be swapped for another. `unwrap`
 * rejects when its secret is wrong or the bytes were altered.
 *
 * @example A host app's platform keystore
 * ```ts
 * const keystore: KeyProtector = {
 *   kind: 'android-keystore',
 *   wrap: (record, label) => nativeBridge.encrypt(`contextsync/${label}`, record),
 *   unwrap: (wrapped, label) => nativeBridge.decrypt(`contextsync/${label}`, wrapped),
 * }
 * await ContextSync.open({ account, device, storage, keys: keystore })
 * ```
 */
export interface KeyProtector {
  /** Names the protector in the stored record (1..64 characters), so a later open can say which one it needs. */
  readonly kind: string
  wrap(record: Uint8Array, label: string): Promise<Uint8Array>
  unwrap(wrapped: Uint8Array, label: string): Promise<Uint8Array>
}

/**
 * No protection: the seeds lie in the store as they are, readable by anyone who copies it. Right
 * for a throwaway store or a test, or a device whose disk is protected otherwise (full-disk
 * encryption with a locked device). Never implied: a durable store opened without `keys` is
 * refused, so choosing this is always written down.
 */
export function plainKeys(): KeyProtector {
  return { kind: PLAIN_KIND, wrap: async (record) => record, unwrap: async (wrapped) => wrapped }
}

/** The kind {@link plainKeys} stores: its records are written in the version-1 plain form. */
export const PLAIN_KIND = 'plain'

const PROTECTED_VERSION = 2
const PLAIN_VERSION = 1

/** A stored key record: plain (version 1, the bytes themselves) or wrapped by a protector. */
export type StoredKeyRecord = { kind: typeof PLAIN_KIND; record: Uint8Array } | { kind: string; wrapped: Uint8Array }

/** Encode what a protector produced for the store; plain records stay in their own form. */
export function encodeStoredKeyRecord(kind: string, wrapped: Uint8Array): Uint8Array {
  if (kind === PLAIN_KIND) return wrapped
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, PROTECTED_VERSION)
  encoding.writeVarString(enc, kind)
  encoding.writeVarUint8Array(enc, wrapped)
  return encoding.toUint8Array(enc)
}

/** Read a stored key record; `undefined` when it is neither form. */
export function decodeStoredKeyRecord(bytes: Uint8Array): StoredKeyRecord | undefined {
  if (bytes[0] === PLAIN_VERSION) return { kind: PLAIN_KIND, record: bytes }
  if (bytes[0] !== PROTECTED_VERSION) return undefined
  try {
    const dec = decoding.createDecoder(bytes)
    decoding.readUint8(dec)
    const kind = decoding.readVarString(dec)
    const wrapped = decoding.readVarUint8Array(dec).slice()
    if (decoding.hasContent(dec) || kind.length === 0 || kind.length > 64 || kind === PLAIN_KIND) return undefined
    return { kind, wrapped }
  } catch {
    return undefined
  }
}

/** Whether `value` looks like a {@link KeyProtector}. */
export function isKeyProtector(value: unknown): value is KeyProtector {
  const p = value as Partial<KeyProtector> | null
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof p.kind === 'string' &&
    p.kind.length > 0 &&
    p.kind.length <= 64 &&
    typeof p.wrap === 'function' &&
    typeof p.unwrap === 'function'
  )
}
