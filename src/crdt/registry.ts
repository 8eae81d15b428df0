/**
 * Schema of the account registry (DESIGN §4). Plain Yjs; no crypto, no I/O. Every value is a
 * root-signed statement; readers verify each one (src/crypto) before trusting it.
 *
 * - Private part — the registry scope's *inner* doc, sealed like any scope, readable by enrolled
 *   devices only: `statements: Y.Map<Uint8Array>` with keys `cert/<deviceId>`,
 *   `scope/<name>`, `grant/<scope>/<deviceId>`, `revoke/<deviceId>`, `epoch/<roomId>/<n>`,
 *   `pass/<deviceId>`.
 * - Public part — a map in the registry room's *outer* doc, next to the sealed log:
 *   `public: Y.Map<Uint8Array>` with `lockbox/<roomId>/<epoch>/<deviceId>` (a member needs them
 *   before it can read the private part), and copies of `revoke/…`, `epoch/…` and `pass/…` so the
 *   relay can enforce revocations and grants without any key. Devices trust only the private
 *   copies of revocations and epochs (anyone holding the outer doc can delete public entries).
 *
 * @module
 */
import type * as Y from 'yjs'

/** Name of the statement map inside the registry's inner doc. */
export const STATEMENTS_KEY = 'statements'
/** Name of the public statement map inside the registry room's outer doc. */
export const PUBLIC_STATEMENTS_KEY = 'public'

/** The statement map of the registry's inner doc. */
export function statementsMap(doc: Y.Doc): Y.Map<Uint8Array> {
  return doc.getMap<Uint8Array>(STATEMENTS_KEY)
}

/** The public statement map of the registry room's outer doc. */
export function publicStatementsMap(outer: Y.Doc): Y.Map<Uint8Array> {
  return outer.getMap<Uint8Array>(PUBLIC_STATEMENTS_KEY)
}

/** Key of a device's certificate. */
export function certificateKey(deviceId: string): string {
  return `cert/${deviceId}`
}

/** Key of a scope definition. */
export function scopeKey(name: string): string {
  return `scope/${name}`
}

/** Key of a grant. */
export function grantKey(scope: string, deviceId: string): string {
  return `grant/${scope}/${deviceId}`
}

/** Key of a revocation. */
export function revocationKey(deviceId: string): string {
  return `revoke/${deviceId}`
}

/** Key of an epoch start. */
export function epochKey(roomId: string, epoch: number): string {
  return `epoch/${roomId}/${epoch}`
}

/** Key of a device's relay pass (the newest replaces older ones). */
export function passKey(deviceId: string): string {
  return `pass/${deviceId}`
}
