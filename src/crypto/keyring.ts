/**
 * Scope keys and room ids.
 *
 * A scope's sealed log lives in a relay room whose id is `<accountId>.<opaque>`: the account id
 * namespaces rooms on the relay, and the opaque part is a keyed hash of the scope name so the
 * relay never learns which room is `health`. The registry's room is the well-known
 * `<accountId>.registry`, so a relay can read the public statements kept there (revocations,
 * relay passes) without learning anything else.
 *
 * Each scope has numbered key epochs. Owner devices derive every epoch's key from the account
 * root (so concurrent rotations by two owners agree, and a recovered root reads all history);
 * member devices only hold the epochs sealed to them in lockboxes. A revoked member gets no
 * lockbox for epochs started after its revocation.
 *
 * @module
 */
import { toBase64Url, utf8 } from '../util/bytes.js'
import type { AccountKeys } from './keys.js'
import { deriveKey, hash } from './primitives.js'

/** The reserved scope name of the account registry. */
export const REGISTRY_SCOPE = '@registry'
/** The scope that never leaves the device; its key derives from the device's own secret. */
export const LOCAL_SCOPE = 'local'

/** Resolves room ids and epoch keys for scopes. */
export interface ScopeKeyring {
  /** Room id of a scope's sealed log. */
  roomId(scope: string): string
  /** The epoch new envelopes of `scope` are sealed under. */
  currentEpoch(scope: string): number
  /** Key of one epoch, or `undefined` when this device does not hold it. */
  epochKey(scope: string, epoch: number): Uint8Array | undefined
  /**
   * The epoch and key new envelopes of `scope` are sealed under now; `undefined` while this
   * device cannot seal (the current epoch's key has not arrived, or the epoch is not safe to
   * write under). Writes stay queued until it can.
   */
  sealingKey(scope: string): { epoch: number; key: Uint8Array } | undefined
  /**
   * Every key this device holds for one epoch of `scope` — several when owners started the epoch
   * concurrently — the sealing key first. Empty when it holds none.
   */
  openingKeys(scope: string, epoch: number): Uint8Array[]
}

/** Room id of `scope` given the account's room-naming key. */
export function roomIdFor(accountId: string, roomNamingKey: Uint8Array, scope: string): string {
  if (scope === REGISTRY_SCOPE) return registryRoomId(accountId)
  return `${accountId}.${toBase64Url(hash(utf8(`contextsync/v1/room/${scope}`), 16, roomNamingKey))}`
}

/** The well-known room id of an account's registry. */
export function registryRoomId(accountId: string): string {
  return `${accountId}.registry`
}

/** True when `roomId` is namespaced under `accountId` (`<accountId>.<opaque>`). */
export function roomBelongsTo(roomId: string, accountId: string): boolean {
  return roomId.startsWith(`${accountId}.`) && roomId.length > accountId.length + 1
}

/**
 * The keyring of one device. Owners (holding the root seed) derive room ids and every epoch key;
 * members learn room ids from scope definitions and keys from lockboxes — the registry feeds
 * both in through {@link setRoom}, {@link addKey} and {@link setEpoch}.
 */
export class DeviceKeyring implements ScopeKeyring {
  private readonly master: Uint8Array | undefined
  private readonly naming: Uint8Array | undefined
  private readonly rooms = new Map<string, string>()
  private readonly epochs = new Map<string, number>()
  private readonly keys = new Map<string, Uint8Array>()

  private readonly localMaster: Uint8Array | undefined

  /**
   * @param account the account (with the root seed on owner devices)
   * @param deviceSecret a secret of this device (e.g. its signing seed) for the device-local scope
   */
  constructor(
    private readonly account: AccountKeys,
    deviceSecret?: Uint8Array,
  ) {
    if (deviceSecret) this.localMaster = hash(deviceSecret, 32, utf8('contextsync/v1/device-local'))
    if (account.rootSeed) {
      this.master = hash(account.rootSeed, 32, utf8('contextsync/v1/account-master'))
      this.naming = deriveKey(this.master, 'room-naming')
    }
  }

  /** True on owner devices (they derive keys instead of receiving lockboxes). */
  get derivesKeys(): boolean {
    return this.master !== undefined
  }

  roomId(scope: string): string {
    const known = this.rooms.get(scope)
    if (known) return known
    if (scope === REGISTRY_SCOPE) return registryRoomId(this.account.accountId)
    if (scope === LOCAL_SCOPE && this.localMaster) return `${this.account.accountId}.local`
    if (!this.naming) throw new Error(`no room id known for scope '${scope}' on this device`)
    const id = roomIdFor(this.account.accountId, this.naming, scope)
    this.rooms.set(scope, id)
    return id
  }

  /** True when this device can name the scope's room (owners: always). */
  knowsRoom(scope: string): boolean {
    return this.naming !== undefined || this.rooms.has(scope) || scope === REGISTRY_SCOPE || (scope === LOCAL_SCOPE && this.localMaster !== undefined)
  }

  currentEpoch(scope: string): number {
    return this.epochs.get(this.roomId(scope)) ?? 0
  }

  epochKey(scope: string, epoch: number): Uint8Array | undefined {
    const roomId = this.roomId(scope)
    const cached = this.keys.get(`${roomId}/${epoch}`)
    if (cached) return cached
    const master = scope === LOCAL_SCOPE && this.localMaster ? this.localMaster : this.master
    if (!master) return undefined
    const key = deriveKey(master, `scope/${scope}/epoch/${epoch}`)
    this.keys.set(`${roomId}/${epoch}`, key)
    return key
  }

  sealingKey(scope: string): { epoch: number; key: Uint8Array } | undefined {
    const epoch = this.currentEpoch(scope)
    const key = this.epochKey(scope, epoch)
    return key ? { epoch, key } : undefined
  }

  openingKeys(scope: string, epoch: number): Uint8Array[] {
    const key = this.epochKey(scope, epoch)
    return key ? [key] : []
  }

  /**
   * The key of this device's own at-rest copy of a room's applied state (the replica
   * checkpoint). Derived from the device's secret, so it never leaves the device and no other
   * device — nor anyone holding the scope's keys — can open or forge a checkpoint.
   */
  atRestKey(roomId: string): Uint8Array {
    if (!this.localMaster) throw new Error('an at-rest key needs the device secret')
    return deriveKey(this.localMaster, `at-rest/${roomId}`)
  }

  /** Record a scope's room id (from a verified scope definition). */
  setRoom(scope: string, roomId: string): void {
    this.rooms.set(scope, roomId)
  }

  /** Record that a room moved to `epoch` (from a verified epoch start); epochs only grow. */
  setEpoch(roomId: string, epoch: number): boolean {
    if ((this.epochs.get(roomId) ?? 0) >= epoch) return false
    this.epochs.set(roomId, epoch)
    return true
  }

  /** Record a key opened from a lockbox. */
  addKey(roomId: string, epoch: number, key: Uint8Array): boolean {
    const id = `${roomId}/${epoch}`
    if (this.keys.has(id)) return false
    this.keys.set(id, key)
    return true
  }
}

/** Keyring of an owner device (tests and tools): derives everything from the account root. */
export function ownerKeyring(account: AccountKeys): DeviceKeyring {
  if (!account.rootSeed) throw new Error('deriving scope keys needs the account root (owner device)')
  return new DeviceKeyring(account)
}
