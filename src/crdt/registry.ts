/**
 * Schema of the account registry (WIRE.md "Signed statements"). Plain Yjs; no crypto, no I/O.
 * Every value is a root-signed statement; readers verify each one (src/crypto) before trusting it.
 *
 * - Private part — the registry scope's *inner* doc, sealed like any scope, readable by enrolled
 *   devices only: `statements: Y.Map<Uint8Array>` with keys `cert/<deviceId>`,
 *   `scope/<name>` (an owner's definition) and `scope/<name>/default` (the built-in policy every
 *   owner writes alike), `grant/<scope>/<deviceId>` (deleted when the grant is withdrawn),
 *   `revoke/<deviceId>`, `epoch/<roomId>/<n>/<startId>`, `pass/<deviceId>`, `term/<deviceId>` (when
 *   a member's membership ends; the newest replaces older ones).
 * - Public part — a map in the registry room's *outer* doc, next to the sealed log:
 *   `public: Y.Map<Uint8Array>` with `lockbox/<roomId>/<n>/<startId>/<deviceId>` (a member needs
 *   them before it can read the private part), and copies of `revoke/…`, `epoch/…` and `pass/…`
 *   so the relay can enforce revocations and grants without any key. A public entry can only add
 *   a verified fact: anyone holding the outer doc can delete one (withholding), none can forge.
 *
 * Epoch starts and lockboxes carry a start id (WIRE.md "Keys and epochs") so that owners starting
 * the same epoch concurrently never overwrite each other's entries; the legacy start id `''`
 * (epoch 0, starts written before salts) keeps the shorter keys `epoch/<roomId>/<n>` and
 * `lockbox/<roomId>/<n>/<deviceId>`.
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

/** Key of an owner's scope definition. */
export function scopeKey(name: string): string {
  return `scope/${name}`
}

/**
 * Key of a built-in scope's default definition. Apart from {@link scopeKey} so that an owner
 * enrolling offline, which writes the defaults before it has synced, never overwrites another
 * owner's definition of the same scope.
 */
export function defaultScopeKey(name: string): string {
  return `scope/${name}/default`
}

/** Key of a grant. */
export function grantKey(scope: string, deviceId: string): string {
  return `grant/${scope}/${deviceId}`
}

/** Key of a revocation. */
export function revocationKey(deviceId: string): string {
  return `revoke/${deviceId}`
}

/** Key of an epoch start (`startId` `''` for legacy starts). */
export function epochKey(roomId: string, epoch: number, startId = ''): string {
  return startId ? `epoch/${roomId}/${epoch}/${startId}` : `epoch/${roomId}/${epoch}`
}

/** Key of a member device's term (when its membership ends). */
export function termKey(deviceId: string): string {
  return `term/${deviceId}`
}

/** Key of a device's relay pass (the newest replaces older ones). */
export function passKey(deviceId: string): string {
  return `pass/${deviceId}`
}
