/**
 * Scope keys and room ids.
 *
 * A scope's sealed log lives in a relay room whose id is `<accountId>.<opaque>`: the account id
 * namespaces rooms on the relay, and the opaque part is a keyed hash of the scope name so the
 * relay never learns which room is `health`. Each scope has numbered key epochs.
 *
 * Owner devices derive epoch-0 keys and room ids from the account root seed
 * ({@link ownerKeyring}); later epochs and member devices get keys through lockboxes in the
 * registry (see the scopes issue). The sync layer only sees the {@link ScopeKeyring} interface.
 *
 * @module
 */
import { toBase64Url, utf8 } from '../util/bytes.js'
import type { AccountKeys } from './keys.js'
import { deriveKey, hash } from './primitives.js'

/** The reserved scope name of the account registry. */
export const REGISTRY_SCOPE = '@registry'

/** Resolves room ids and epoch keys for scopes. */
export interface ScopeKeyring {
  /** Room id of a scope's sealed log. */
  roomId(scope: string): string
  /** The epoch new envelopes of `scope` are sealed under. */
  currentEpoch(scope: string): number
  /** Key of one epoch, or `undefined` when this device does not hold it. */
  epochKey(scope: string, epoch: number): Uint8Array | undefined
}

/** The account's master secret, derived from the root seed (owners only). */
function masterKey(account: AccountKeys): Uint8Array {
  if (!account.rootSeed) throw new Error('deriving scope keys needs the account root (owner device)')
  return hash(account.rootSeed, 32, utf8('contextsync/v1/account-master'))
}

/** Room id of `scope` given the account's room-naming key. */
export function roomIdFor(accountId: string, roomNamingKey: Uint8Array, scope: string): string {
  return `${accountId}.${toBase64Url(hash(utf8(`contextsync/v1/room/${scope}`), 16, roomNamingKey))}`
}

/** Keyring of an owner device: epoch 0 of every scope, derived from the account root. */
export function ownerKeyring(account: AccountKeys): ScopeKeyring {
  const master = masterKey(account)
  const naming = deriveKey(master, 'room-naming')
  const rooms = new Map<string, string>()
  const keys = new Map<string, Uint8Array>()
  return {
    roomId(scope) {
      let id = rooms.get(scope)
      if (!id) rooms.set(scope, (id = roomIdFor(account.accountId, naming, scope)))
      return id
    },
    currentEpoch() {
      return 0
    },
    epochKey(scope, epoch) {
      if (epoch !== 0) return undefined
      let key = keys.get(scope)
      if (!key) keys.set(scope, (key = deriveKey(master, `scope/${scope}/epoch/0`)))
      return key
    },
  }
}

/** True when `roomId` is namespaced under `accountId` (`<accountId>.<opaque>`). */
export function roomBelongsTo(roomId: string, accountId: string): boolean {
  return roomId.startsWith(`${accountId}.`) && roomId.length > accountId.length + 1
}
