/**
 * Recovery codes: the account root seed written for a person to keep (paper, password manager).
 * 32 seed bytes + a 2-byte BLAKE2b checksum, as Crockford base32 in groups of four, so a typo is
 * caught instead of silently restoring a different account.
 *
 * @module
 */
import { utf8 } from '../util/bytes.js'
import { fromCrockford, toCrockford } from '../util/base32.js'
import { hash } from './primitives.js'
import { ValidationError } from '../errors.js'

function checksum(seed: Uint8Array): Uint8Array {
  return hash(seed, 2, utf8('contextsync/v1/recovery-check'))
}

/** Encode a 32-byte root seed as a recovery code. */
export function encodeRecoveryCode(seed: Uint8Array): string {
  if (seed.length !== 32) throw new ValidationError('a root seed is 32 bytes')
  const bytes = new Uint8Array(34)
  bytes.set(seed)
  bytes.set(checksum(seed), 32)
  return toCrockford(bytes)
}

/** Decode a recovery code; `undefined` when malformed or its checksum does not match. */
export function decodeRecoveryCode(code: string): Uint8Array | undefined {
  const bytes = fromCrockford(code, 34)
  if (!bytes) return undefined
  const seed = bytes.slice(0, 32)
  const check = checksum(seed)
  return check[0] === bytes[32] && check[1] === bytes[33] ? seed : undefined
}
