/**
 * A {@link KeyProtector} from a 32-byte key-encryption key the host keeps somewhere other than
 * the store — a key file readable only by the user (the PC's default, `adapters/pc/key-file.ts`),
 * a secret from a desktop keyring. Each record is sealed with XChaCha20-Poly1305 bound to its
 * label and to the protector's kind (THREAT_MODEL.md "Someone who copies a device's disk").
 *
 * ```
 * wrapped = u8 1 · 24B nonce · varbytes ciphertext
 * AAD     = varstring "contextsync/v1/wrapping-key" · varstring kind · varstring label
 * ```
 *
 * Pure: no I/O, the caller reads and writes the key.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { ConfigError, ValidationError } from '../errors.js'
import type { KeyProtector } from './key-protector.js'
import { PLAIN_KIND } from './key-protector.js'
import { aeadDecrypt, aeadEncrypt, KEY_BYTES, NONCE_BYTES } from './primitives.js'

const FORMAT = 1
const DOMAIN = 'contextsync/v1/wrapping-key'

/**
 * Protect the device's keys with a key-encryption key of {@link KEY_BYTES} bytes. `kind` names
 * where the key lives (`'key-file'`, `'secret-service'`…) so that a later open with another
 * protector says which one the store needs.
 *
 * @example
 * ```ts
 * const kek = readFileSync(keyFilePath)                      // 32 random bytes, mode 0600
 * const dev = await ContextSync.open({ storage, keys: wrappingKeyKeys(kek, 'key-file') })
 * ```
 */
export function wrappingKeyKeys(key: Uint8Array, kind: string): KeyProtector {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) throw new ValidationError(`wrappingKeyKeys: the key must be ${KEY_BYTES} bytes`)
  if (typeof kind !== 'string' || kind.length === 0 || kind.length > 64 || kind === PLAIN_KIND) {
    throw new ValidationError(`wrappingKeyKeys: kind must be 1..64 characters and not '${PLAIN_KIND}'`)
  }
  const kek = key.slice()
  const aad = (label: string): Uint8Array => {
    const enc = encoding.createEncoder()
    encoding.writeVarString(enc, DOMAIN)
    encoding.writeVarString(enc, kind)
    encoding.writeVarString(enc, label)
    return encoding.toUint8Array(enc)
  }
  return {
    kind,
    async wrap(record, label) {
      const { nonce, ciphertext } = aeadEncrypt(record, aad(label), kek)
      const enc = encoding.createEncoder()
      encoding.writeUint8(enc, FORMAT)
      encoding.writeUint8Array(enc, nonce)
      encoding.writeVarUint8Array(enc, ciphertext)
      return encoding.toUint8Array(enc)
    },
    async unwrap(wrapped, label) {
      let nonce: Uint8Array
      let ciphertext: Uint8Array
      try {
        const dec = decoding.createDecoder(wrapped)
        if (decoding.readUint8(dec) !== FORMAT) throw new RangeError('format')
        nonce = decoding.readUint8Array(dec, NONCE_BYTES).slice()
        ciphertext = decoding.readVarUint8Array(dec).slice()
        if (decoding.hasContent(dec)) throw new RangeError('trailing')
      } catch {
        throw new ConfigError(`the ${label} key record is damaged`)
      }
      const record = aeadDecrypt(ciphertext, aad(label), nonce, kek)
      if (!record) throw new ConfigError(`this ${kind} does not unlock this device's ${label} keys (another key, or the record was altered)`)
      return record
    },
  }
}
