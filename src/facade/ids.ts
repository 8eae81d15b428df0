/**
 * Random ids for memory items, sessions and turns: 128 random bits, base64url (22 characters).
 *
 * @module
 */
import { publicRandomBytes } from '../crypto/index.js'
import { toBase64Url } from '../util/bytes.js'

/** A fresh random id. */
export function randomId(): string {
  return toBase64Url(publicRandomBytes(16))
}
