/**
 * A {@link KeyProtector} from a passphrase: Argon2id (libsodium `crypto_pwhash`) turns it into a
 * key-encryption key, which seals each key record with XChaCha20-Poly1305 bound to its label.
 *
 * ```
 * wrapped = u8 1 · 16B salt · varuint opsLimit · varuint memLimit · 24B nonce · varbytes ciphertext
 * AAD     = varstring "contextsync/v1/keys" · varstring label
 * ```
 *
 * Parameters: libsodium's *interactive* profile by default (opsLimit 2, memLimit 64 MiB) — about
 * 0.1–0.4 s per open on a phone-class CPU, and 64 MiB fits what a mobile OS lets a foreground app
 * allocate; the *moderate* profile (256 MiB) can get the app killed on mid-range phones. Desktops
 * may pass more. The derived key is cached per salt for the protector's lifetime, so an open
 * derives once for both records.
 *
 * `crypto_pwhash` is in `sodium-native` (Node) but not in the standard `libsodium-wrappers`
 * build: without `sodium-native` this protector rejects with a `ConfigError` saying so.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { ConfigError, ValidationError } from '../errors.js'
import { toHex, utf8 } from '../util/bytes.js'
import type { KeyProtector } from './key-protector.js'
import { aeadDecrypt, aeadEncrypt, KEY_BYTES, NONCE_BYTES, randomBytes } from './primitives.js'

/** Argon2id cost of {@link passphraseKeys}. */
export interface PassphraseKeysOptions {
  /** Passes over memory; default 2 (libsodium OPSLIMIT_INTERACTIVE). At least 1. */
  opsLimit?: number
  /** Bytes of memory; default 64 MiB (MEMLIMIT_INTERACTIVE). At least 8 KiB. */
  memLimit?: number
}

/** The kind a passphrase-protected record names. */
export const PASSPHRASE_KIND = 'passphrase'

const SALT_BYTES = 16
const FORMAT = 1
/** Refuse stored costs beyond these: a tampered record must not make an open allocate 4 GiB. */
const MAX_OPS = 64
const MAX_MEM = 1024 * 1024 * 1024

interface PwhashLib {
  crypto_pwhash(out: Uint8Array, passwd: Uint8Array, salt: Uint8Array, opslimit: number, memlimit: number, alg: number): void
  crypto_pwhash_ALG_ARGON2ID13: number
}

let pwhashLib: Promise<PwhashLib> | undefined
/** A variable, so neither TypeScript nor a bundler resolves the optional module at build time. */
const NATIVE_MODULE = 'sodium-native'

function loadPwhash(): Promise<PwhashLib> {
  pwhashLib ??= import(/* @vite-ignore */ NATIVE_MODULE).then(
    (loaded: { default?: unknown }) => {
      const lib = (loaded.default ?? loaded) as Partial<PwhashLib>
      if (typeof lib.crypto_pwhash !== 'function' || typeof lib.crypto_pwhash_ALG_ARGON2ID13 !== 'number') {
        throw new ConfigError('passphraseKeys needs crypto_pwhash, which the installed sodium-native lacks')
      }
      return lib as PwhashLib
    },
    () => {
      throw new ConfigError('passphraseKeys needs sodium-native (Argon2id), which is not installed here: run `npm install sodium-native`')
    },
  )
  return pwhashLib
}

/**
 * Protect the device's keys with a passphrase (Node, with `sodium-native`).
 *
 * @example
 * ```ts
 * const dev = await ContextSync.open({ storage: sqliteStorage({ path }), keys: passphraseKeys(await askPassphrase()) })
 * ```
 */
export function passphraseKeys(passphrase: string, options: PassphraseKeysOptions = {}): KeyProtector {
  if (typeof passphrase !== 'string' || passphrase.length === 0) throw new ValidationError('passphraseKeys: the passphrase must be a non-empty string')
  const opsLimit = options.opsLimit ?? 2
  const memLimit = options.memLimit ?? 64 * 1024 * 1024
  if (!Number.isSafeInteger(opsLimit) || opsLimit < 1 || opsLimit > MAX_OPS) throw new ValidationError(`passphraseKeys: opsLimit must be an integer in 1..${MAX_OPS}`)
  if (!Number.isSafeInteger(memLimit) || memLimit < 8192 || memLimit > MAX_MEM) throw new ValidationError(`passphraseKeys: memLimit must be an integer in 8192..${MAX_MEM}`)
  const secret = utf8(passphrase.normalize('NFKC'))
  const keys = new Map<string, Promise<Uint8Array>>()
  let salt: Uint8Array | undefined
  const derive = (s: Uint8Array, ops: number, mem: number): Promise<Uint8Array> => {
    const id = `${toHex(s)}/${ops}/${mem}`
    let key = keys.get(id)
    if (!key) {
      key = loadPwhash().then((lib) => {
        const out = new Uint8Array(KEY_BYTES)
        lib.crypto_pwhash(out, secret, s, ops, mem, lib.crypto_pwhash_ALG_ARGON2ID13)
        return out
      })
      keys.set(id, key)
    }
    return key
  }
  const aad = (label: string): Uint8Array => {
    const enc = encoding.createEncoder()
    encoding.writeVarString(enc, 'contextsync/v1/keys')
    encoding.writeVarString(enc, label)
    return encoding.toUint8Array(enc)
  }
  return {
    kind: PASSPHRASE_KIND,
    async wrap(record, label) {
      salt ??= randomBytes(SALT_BYTES)
      const key = await derive(salt, opsLimit, memLimit)
      const { nonce, ciphertext } = aeadEncrypt(record, aad(label), key)
      const enc = encoding.createEncoder()
      encoding.writeUint8(enc, FORMAT)
      encoding.writeUint8Array(enc, salt)
      encoding.writeVarUint(enc, opsLimit)
      encoding.writeVarUint(enc, memLimit)
      encoding.writeUint8Array(enc, nonce)
      encoding.writeVarUint8Array(enc, ciphertext)
      return encoding.toUint8Array(enc)
    },
    async unwrap(wrapped, label) {
      let parsed: { salt: Uint8Array; ops: number; mem: number; nonce: Uint8Array; ciphertext: Uint8Array }
      try {
        const dec = decoding.createDecoder(wrapped)
        if (decoding.readUint8(dec) !== FORMAT) throw new RangeError('format')
        parsed = {
          salt: decoding.readUint8Array(dec, SALT_BYTES).slice(),
          ops: decoding.readVarUint(dec),
          mem: decoding.readVarUint(dec),
          nonce: decoding.readUint8Array(dec, NONCE_BYTES).slice(),
          ciphertext: decoding.readVarUint8Array(dec).slice(),
        }
        if (decoding.hasContent(dec)) throw new RangeError('trailing')
      } catch {
        throw new ConfigError(`the ${label} key record is damaged`)
      }
      if (parsed.ops < 1 || parsed.ops > MAX_OPS || parsed.mem < 8192 || parsed.mem > MAX_MEM) throw new ConfigError(`the ${label} key record asks for an Argon2id cost out of bounds`)
      const key = await derive(parsed.salt, parsed.ops, parsed.mem)
      const record = aeadDecrypt(parsed.ciphertext, aad(label), parsed.nonce, key)
      if (!record) throw new ConfigError(`the passphrase does not unlock this device's ${label} keys`)
      // Later wraps (a migration, a re-save) reuse this salt and its cached key.
      salt ??= parsed.salt
      return record
    },
  }
}
