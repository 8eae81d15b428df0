/**
 * Scope keys and room ids (WIRE.md "Keys and epochs", "Ids and rooms").
 *
 * A scope's sealed log lives in a relay room whose id is `<accountId>.<opaque>`: the account id
 * namespaces rooms on the relay, and the opaque part is a keyed hash of the scope name so the
 * relay never learns which room is `health`. The registry's room is the well-known
 * `<accountId>.registry`, so a relay can read the public statements kept there (revocations,
 * relay passes) without learning anything else.
 *
 * Each scope has numbered key epochs, and each epoch one or more *starts* (root-signed epoch
 * start statements): owners starting an epoch concurrently each make their own, with a random
 * salt. Owner devices derive every start's key from the account root and its salt (so a
 * recovered root reads all history); member devices only hold the keys sealed to them in
 * lockboxes. The *canonical* start of an epoch — the smallest salt — gives the sealing key; every
 * known start's key opens.
 *
 * @module
 */
import { toBase64Url, toHex, utf8 } from '../util/bytes.js'
import { startIdOf, type EpochStart } from './grants.js'
import type { AccountKeys } from './keys.js'
import { deriveKey, hash } from './primitives.js'
import { PermissionError, ScopeAccessError } from '../errors.js'

/** The reserved scope name of the account registry. */
export const REGISTRY_SCOPE = '@registry'
/** The scope that never leaves the device; its key derives from the device's own secret. */
export const LOCAL_SCOPE = 'local'

/** Resolves room ids and epoch keys for scopes. */
export interface ScopeKeyring {
  /** Room id of a scope's sealed log. */
  roomId(scope: string): string
  /** The newest epoch of `scope` this device knows of. */
  currentEpoch(scope: string): number
  /** Key of one epoch (its canonical start's), or `undefined` when this device does not hold it. */
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

/** One epoch start as this device knows it. */
export interface EpochStartRecord {
  roomId: string
  epoch: number
  /** {@link startIdOf} its salt: `''` for a legacy start and for epoch 0 (which has none). */
  startId: string
  salt?: Uint8Array
  /** Members it was sealed to; absent for legacy starts (not stated, so never judged unsafe). */
  recipients?: readonly string[]
  /** Devices its owner knowingly left out (revoked or removed from the scope). */
  excluded?: readonly string[]
  /** The starting owner's wall clock (ms). */
  startedAt: number
  /** This device's monotonic clock (ms) when it learned of the start. */
  learnedAt: number
}

/** Clocks a keyring measures epoch freshness with (injectable for tests). */
export interface KeyringClock {
  /** Wall clock, ms since the epoch (compared with a start's `startedAt`). */
  now(): number
  /** Monotonic clock, ms (compared with when the start was learned). */
  monotonic(): number
}

/** Decides whether a start is safe to seal under (the registry knows who may hold what). */
export type StartSafety = (scope: string, start: EpochStartRecord) => boolean

const systemClock: KeyringClock = { now: () => Date.now(), monotonic: () => performance.now() }

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
 * The keyring of one device. Owners (holding the root seed) derive room ids and every start's
 * key; members learn room ids from scope definitions and keys from lockboxes — the registry feeds
 * both in through {@link setRoom}, {@link addStart} and {@link addKey}.
 */
export class DeviceKeyring implements ScopeKeyring {
  private readonly master: Uint8Array | undefined
  private readonly naming: Uint8Array | undefined
  private readonly rooms = new Map<string, string>()
  /** roomId → epoch → startId → start. */
  private readonly startsByRoom = new Map<string, Map<number, Map<string, EpochStartRecord>>>()
  /** roomId → epoch → startId → key (lockbox keys on members; derived keys cached on owners). */
  private readonly keysByRoom = new Map<string, Map<number, Map<string, Uint8Array>>>()
  /** roomId → newest epoch known from a start or a key. */
  private readonly epochs = new Map<string, number>()
  private readonly localMaster: Uint8Array | undefined
  private readonly clock: KeyringClock
  private safety: StartSafety = () => true

  /**
   * @param account the account (with the root seed on owner devices)
   * @param deviceSecret a secret of this device (e.g. its signing seed) for the device-local scope
   */
  constructor(
    private readonly account: AccountKeys,
    deviceSecret?: Uint8Array,
    options: { clock?: KeyringClock } = {},
  ) {
    this.clock = options.clock ?? systemClock
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
    if (!this.naming) throw new ScopeAccessError(`no room id known for scope '${scope}' on this device`)
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
    return this.openingKeys(scope, epoch)[0]
  }

  sealingKey(scope: string): { epoch: number; key: Uint8Array } | undefined {
    const roomId = this.roomId(scope)
    const epoch = this.currentEpoch(scope)
    const canonical = this.startIds(roomId, epoch)[0] ?? ''
    const key = this.keyOf(scope, roomId, epoch, canonical)
    if (!key) return undefined
    // A canonical start known only from its lockbox: who else holds its key is not known yet.
    const start = this.start(roomId, epoch, canonical)
    if (!start || !this.safety(scope, start)) return undefined
    return { epoch, key }
  }

  /**
   * Every key of `epoch`, the canonical start's first. Empty also while this device lacks the key
   * of a start it knows of for that epoch: an envelope sealed under the missing one must be held
   * until that key arrives (owners keep lockboxes converged), not refused as undecryptable.
   */
  openingKeys(scope: string, epoch: number): Uint8Array[] {
    const roomId = this.roomId(scope)
    const ids = this.startIds(roomId, epoch)
    if (ids.length === 0 && epoch === 0) ids.push('')
    const keys: Uint8Array[] = []
    for (const id of ids) {
      const key = this.keyOf(scope, roomId, epoch, id)
      if (!key) return []
      keys.push(key)
    }
    return keys
  }

  /**
   * Every key this device holds for a scope's room, over all epochs it knows — what anyone
   * holding this device could try (diagnostics and tests).
   */
  heldKeys(scope: string): Uint8Array[] {
    const roomId = this.roomId(scope)
    const out: Uint8Array[] = []
    for (let epoch = 0; epoch <= this.currentEpoch(scope); epoch++) {
      const ids = this.startIds(roomId, epoch)
      if (epoch === 0 && !ids.includes('')) ids.unshift('')
      for (const id of ids) {
        const key = this.keyOf(scope, roomId, epoch, id)
        if (key) out.push(key)
      }
    }
    return out
  }

  /** Known starts of one epoch of a room, canonical first (none for epoch 0 but legacy ones). */
  starts(roomId: string, epoch: number): EpochStartRecord[] {
    const byId = this.startsByRoom.get(roomId)?.get(epoch)
    return byId ? [...byId.values()].sort((a, b) => compareIds(a.startId, b.startId)) : []
  }

  /** The start this device would seal under in `epoch`: known start records only, canonical first. */
  canonicalStart(roomId: string, epoch: number): EpochStartRecord | undefined {
    return this.start(roomId, epoch, this.startIds(roomId, epoch)[0] ?? '')
  }

  /**
   * True when an envelope of `scope` sealed under `epoch` is stale: some later epoch of the room
   * started more than `graceMs` ago both by the starting owner's clock and by this device's
   * monotonic clock since it learned of it (WIRE.md "Keys and epochs", epoch freshness).
   */
  isStale(scope: string, epoch: number, graceMs: number): boolean {
    const byEpoch = this.startsByRoom.get(this.roomId(scope))
    if (!byEpoch) return false
    const now = this.clock.now()
    const monotonic = this.clock.monotonic()
    for (const [later, starts] of byEpoch) {
      if (later <= epoch) continue
      for (const start of starts.values()) {
        if (now - start.startedAt >= graceMs && monotonic - start.learnedAt >= graceMs) return true
      }
    }
    return false
  }

  /**
   * An owner's key for a start of `epoch` with `salt` (the legacy derivation without one). Throws
   * on member devices.
   */
  deriveEpochKey(scope: string, epoch: number, salt?: Uint8Array): Uint8Array {
    const master = scope === LOCAL_SCOPE && this.localMaster ? this.localMaster : this.master
    if (!master) throw new PermissionError('deriving epoch keys needs the account root (owner device)')
    // Legacy starts and epoch 0 keep the salt-free label, so stores written before salts still open.
    return deriveKey(master, salt ? `scope/${scope}/epoch/${epoch}/salt/${toHex(salt)}` : `scope/${scope}/epoch/${epoch}`)
  }

  /**
   * The key of this device's own at-rest copy of a room's applied state (the replica
   * checkpoint). Derived from the device's secret, so it never leaves the device and no other
   * device — nor anyone holding the scope's keys — can open or forge a checkpoint.
   */
  atRestKey(roomId: string): Uint8Array {
    if (!this.localMaster) throw new PermissionError('an at-rest key needs the device secret')
    return deriveKey(this.localMaster, `at-rest/${roomId}`)
  }

  /** Record a scope's room id (from a verified scope definition). */
  setRoom(scope: string, roomId: string): void {
    this.rooms.set(scope, roomId)
  }

  /** Record a verified epoch start; false when it was known already. */
  addStart(start: EpochStart): boolean {
    const startId = startIdOf(start.salt)
    let byEpoch = this.startsByRoom.get(start.roomId)
    if (!byEpoch) this.startsByRoom.set(start.roomId, (byEpoch = new Map()))
    let byId = byEpoch.get(start.epoch)
    if (!byId) byEpoch.set(start.epoch, (byId = new Map()))
    if (byId.has(startId)) return false
    const record: EpochStartRecord = { roomId: start.roomId, epoch: start.epoch, startId, startedAt: start.startedAt, learnedAt: this.clock.monotonic() }
    if (start.salt) record.salt = start.salt
    if (start.recipients) record.recipients = [...start.recipients]
    if (start.excluded && start.excluded.length > 0) record.excluded = [...start.excluded]
    byId.set(startId, record)
    this.noteEpoch(start.roomId, start.epoch)
    return true
  }

  /** Record a key opened from a lockbox (of the start with `salt`); false when it was known. */
  addKey(roomId: string, epoch: number, key: Uint8Array, salt?: Uint8Array): boolean {
    const byId = this.keyMap(roomId, epoch)
    const startId = startIdOf(salt)
    if (byId.has(startId)) return false
    byId.set(startId, key)
    // A root-signed key of an epoch proves the epoch exists: never seal under an older one.
    this.noteEpoch(roomId, epoch)
    return true
  }

  /** Install the rule that tells whether a start may be sealed under (set by the registry). */
  setSafetyCheck(safety: StartSafety): void {
    this.safety = safety
  }

  private noteEpoch(roomId: string, epoch: number): void {
    if ((this.epochs.get(roomId) ?? 0) < epoch) this.epochs.set(roomId, epoch)
  }

  /** Start ids of an epoch known from starts or keys, canonical (smallest salt, legacy '' first) first. */
  private startIds(roomId: string, epoch: number): string[] {
    const ids = new Set<string>(this.startsByRoom.get(roomId)?.get(epoch)?.keys() ?? [])
    for (const id of this.keysByRoom.get(roomId)?.get(epoch)?.keys() ?? []) ids.add(id)
    return [...ids].sort(compareIds)
  }

  /** The record of a start; epoch 0 and legacy keys have an implicit one (recipients not stated). */
  private start(roomId: string, epoch: number, startId: string): EpochStartRecord | undefined {
    const known = this.startsByRoom.get(roomId)?.get(epoch)?.get(startId)
    if (known) return known
    return startId === '' ? { roomId, epoch, startId, startedAt: 0, learnedAt: -Infinity } : undefined
  }

  private keyOf(scope: string, roomId: string, epoch: number, startId: string): Uint8Array | undefined {
    const byId = this.keyMap(roomId, epoch)
    const cached = byId.get(startId)
    if (cached) return cached
    const local = scope === LOCAL_SCOPE && this.localMaster !== undefined
    if (!this.master && !local) return undefined
    let salt: Uint8Array | undefined
    if (startId !== '') {
      salt = this.startsByRoom.get(roomId)?.get(epoch)?.get(startId)?.salt
      if (!salt) return undefined
    }
    const key = this.deriveEpochKey(scope, epoch, salt)
    byId.set(startId, key)
    return key
  }

  private keyMap(roomId: string, epoch: number): Map<string, Uint8Array> {
    let byEpoch = this.keysByRoom.get(roomId)
    if (!byEpoch) this.keysByRoom.set(roomId, (byEpoch = new Map()))
    let byId = byEpoch.get(epoch)
    if (!byId) byEpoch.set(epoch, (byId = new Map()))
    return byId
  }
}

function compareIds(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** Keyring of an owner device (tests and tools): derives everything from the account root. */
export function ownerKeyring(account: AccountKeys): DeviceKeyring {
  if (!account.rootSeed) throw new PermissionError('deriving scope keys needs the account root (owner device)')
  return new DeviceKeyring(account)
}
