/**
 * Crockford base32 for codes people type: digits and letters without I, L, O and U, read
 * case-insensitively with I/L taken as 1 and O as 0, dashes and spaces ignored.
 *
 * @module
 */

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'

/** Encode bytes as Crockford base32 (no padding), in dash-separated groups of `group` characters. */
export function toCrockford(bytes: Uint8Array, group = 4): string {
  let out = ''
  let value = 0
  let bits = 0
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xffff
    bits += 8
    while (bits >= 5) {
      bits -= 5
      out += ALPHABET[(value >> bits) & 31]
    }
  }
  if (bits > 0) out += ALPHABET[(value << (5 - bits)) & 31]
  return group > 0 ? out.match(new RegExp(`.{1,${group}}`, 'g'))!.join('-') : out
}

/** Decode a typed code of exactly `byteLength` bytes; `undefined` when it is not one. */
export function fromCrockford(text: string, byteLength: number): Uint8Array | undefined {
  if (typeof text !== 'string') return undefined
  const clean = text.toUpperCase().replace(/[\s-]/g, '').replace(/[IL]/g, '1').replace(/O/g, '0')
  if (clean.length !== Math.ceil((byteLength * 8) / 5)) return undefined
  const out = new Uint8Array(byteLength)
  let value = 0
  let bits = 0
  let index = 0
  for (const char of clean) {
    const digit = ALPHABET.indexOf(char)
    if (digit < 0) return undefined
    value = ((value << 5) | digit) & 0xffff
    bits += 5
    if (bits >= 8 && index < byteLength) {
      bits -= 8
      out[index++] = (value >> bits) & 0xff
    }
  }
  return out
}
