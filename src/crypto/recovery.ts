/**
 * Recovery codes: the account root seed written for a person to keep (paper, password manager).
 * 32 seed bytes + a 2-byte BLAKE2b checksum, as Crockford base32 in groups of four, so a typo is
 * caught instead of silently restoring a different account.
 *
 * @module
 */
import { utf8 } from '../util/bytes.js'
import { hash } from './primitives.js'

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

function checksum(seed: Uint8Array): Uint8Array {
  return hash(seed, 2, utf8('contextsync/v1/recovery-check'))
}

/** Encode a 32-byte root seed as a recovery code. */
export function encodeRecoveryCode(seed: Uint8Array): string {
  if (seed.length !== 32) throw new Error('a root seed is 32 bytes')
  const bytes = new Uint8Array(34)
  bytes.set(seed)
  bytes.set(checksum(seed), 32)
  let out = ''
  let value = 0
  let bits = 0
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += CROCKFORD[(value >> bits) & 31]
    }
  }
  if (bits > 0) out += CROCKFORD[(value << (5 - bits)) & 31]
  return out.match(/.{1,4}/g)!.join('-')
}

/** Decode a recovery code; `undefined` when malformed or its checksum does not match. */
export function decodeRecoveryCode(code: string): Uint8Array | undefined {
  if (typeof code !== 'string') return undefined
  const clean = code.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0')
  if (clean.length !== Math.ceil((34 * 8) / 5)) return undefined
  const bytes = new Uint8Array(34)
  let value = 0
  let bits = 0
  let index = 0
  for (const char of clean) {
    const digit = CROCKFORD.indexOf(char)
    if (digit < 0) return undefined
    value = ((value << 5) | digit) & 0xffff
    bits += 5
    if (bits >= 8 && index < 34) {
      bits -= 8
      bytes[index++] = (value >> bits) & 0xff
    }
  }
  const seed = bytes.slice(0, 32)
  const check = checksum(seed)
  if (check[0] !== bytes[32] || check[1] !== bytes[33]) return undefined
  return seed
}
