/**
 * The account registry as seen by one device: every verified statement about devices, scopes,
 * grants, epochs and keys (WIRE.md "Signed statements", "Keys and epochs"). It is the
 * {@link SenderDirectory} of every scope, feeds the device's {@link DeviceKeyring} with room
 * ids, epoch starts and lockbox keys, and — on owner devices — writes new statements and keeps
 * the key epochs safe: it rotates any room whose current epoch a device that should not hold it
 * can open, and hands every holder the keys of every start of every epoch it holds.
 *
 * Trust: every statement is verified against the account root on read; one that fails is ignored
 * and reported with its code. Private statements (in the registry scope's sealed inner doc) are
 * authoritative; the public copies next to the sealed log exist for the relay and for bootstrap
 * (lockboxes), and can only ever add verified facts, never remove one.
 *
 * Reading and verifying statements, and the queries on what they say, are
 * {@link RegistryState} (registry-state.ts); this module wires it to the registry maps and adds
 * the owner side: writing statements, rotating epochs, handing out lockboxes and relay passes.
 *
 * @module
 */
import * as Y from 'yjs'
import { StorageError } from '../adapters/storage.js'
import {
  certificateKey,
  defaultScopeKey,
  epochKey,
  grantKey,
  passKey,
  publicStatementsMap,
  revocationKey,
  scopeKey,
  statementsMap,
  termKey,
} from '../crdt/registry.js'
import {
  issueCertificate,
  issueLockbox,
  issueRelayPass,
  lockboxKey,
  randomBytes,
  REGISTRY_SCOPE,
  SALT_BYTES,
  signEndCutoff,
  signEpochStart,
  signGrant,
  signRevocation,
  signDeviceTerm,
  signScopeDefinition,
  startIdOf,
  verifyLockbox,
  type AccountKeys,
  type DeviceCertificate,
  type DeviceKeyring,
  type DeviceKeys,
  type EpochStartRecord,
  type RevocationCutoff,
} from '../crypto/index.js'
import { RejectCode } from '../crypto/codes.js'
import type { Replica } from '../sync/replica.js'
import { SeqSet } from '../sync/seq-set.js'
import { fromHex, toHex } from '../util/bytes.js'
import { decodeKeptStatements, encodeKeptStatements, watchPublicDeletions } from './kept-statements.js'
import { BUILTIN_SCOPES, isDeviceLocal } from './builtin-scopes.js'
import { PermissionError } from '../errors.js'
import { RegistryState } from './registry-state.js'
import { endCutoffKey } from './end-cutoffs.js'

export type { RegistryEvents } from './registry-state.js'

/** The public keys of a device being admitted. */
export interface AdmittedDevice {
  deviceIdBytes: Uint8Array
  deviceId: string
  signPublicKey: Uint8Array
  boxPublicKey: Uint8Array
}

/** Options of a {@link Registry}. */
export interface RegistryOptions {
  /**
   * How long envelopes under a superseded key epoch stay acceptable (`sync.epochGraceMs`), by the
   * starting owner's clock and by this device's since it learned of the newer epoch. Default
   * {@link DEFAULT_EPOCH_GRACE_MS}.
   */
  epochGraceMs?: number
  /** How long public statements this device kept may stay deleted before it puts them back (`sync.repairDelayMs`). Default 500 ms. */
  repairDelayMs?: number
}

/** Origin of this device's own re-publication of kept public statements. */
const RESTORE_ORIGIN = Symbol('contextsync/registry-restore')

/** Default of `sync.epochGraceMs`: 10 minutes. */
export const DEFAULT_EPOCH_GRACE_MS = 10 * 60_000

type Entry = [key: string, bytes: Uint8Array]

/** Verified view of the registry, plus owner actions. */
export class Registry extends RegistryState {
  private readonly stopWatchingPublic: () => void
  /** Owner side: lockbox signatures checked for {@link currentEpochUnsafe}, and the verdict. */
  private readonly lockboxVerdicts = new Map<string, boolean>()
  private maintaining: Promise<void> | undefined
  private maintainAgain = false
  /** Seqs of a sender this device applied in a room (owners state them at an end); set by the device. */
  private appliedSeqs: ((roomId: string, deviceId: string) => SeqSet | undefined) | undefined

  constructor(
    replica: Replica,
    account: AccountKeys,
    device: DeviceKeys,
    keyring: DeviceKeyring,
    options: RegistryOptions = {},
  ) {
    super(replica, account, device, keyring, options.epochGraceMs ?? DEFAULT_EPOCH_GRACE_MS)
    keyring.setSafetyCheck((scope, start) => this.startIsSafe(scope, start))
    const statements = statementsMap(replica.inner)
    const publicStatements = publicStatementsMap(replica.outer)
    // What this device kept from the public map comes back first, whatever the map holds now
    // (anyone in the room can delete its entries): put back what is missing, verified like any.
    const restored = decodeKeptStatements(replica.restoredExtra).filter(([key]) => !publicStatements.has(key))
    if (restored.length > 0) {
      Y.transact(replica.outer, () => {
        for (const [key, bytes] of restored) publicStatements.set(key, bytes)
      }, RESTORE_ORIGIN)
    }
    replica.keepWithCheckpoint(() => encodeKeptStatements(this.kept))
    this.stopWatchingPublic = watchPublicDeletions(publicStatements, {
      kept: (key) => this.kept.get(key),
      delayMs: options.repairDelayMs ?? 500,
      ownOrigin: RESTORE_ORIGIN,
      erased: (count) =>
        this.events.emit('rejected', {
          code: RejectCode.Erased,
          reason: `${count} public registry statement${count === 1 ? ' was' : 's were'} deleted from the registry room; putting them back`,
          key: '',
        }),
    })
    // Public first: lockboxes hold the keys that open the private part on member devices.
    this.ingest(publicStatements, [...publicStatements.keys()], 'public')
    this.ingest(statements, [...statements.keys()], 'private')
    publicStatements.observe((event: Y.YMapEvent<Uint8Array>) => {
      this.ingest(publicStatements, [...event.keysChanged], 'public')
      // Lockboxes deleted (a relay wiping the public map): owners issue them again.
      if (this.isOwner && [...event.changes.keys.values()].some((change) => change.action === 'delete')) this.scheduleMaintenance()
    })
    statements.observe((event: Y.YMapEvent<Uint8Array>) => this.ingest(statements, [...event.keysChanged], 'private'))
    if (this.isOwner) this.events.on('change', () => this.scheduleMaintenance())
    this.scheduleEnd()
  }

  // ── owner actions ──────────────────────────────────────────────────────────

  /**
   * Publish this (owner) device's certificate and pass, and the built-in scope definitions,
   * unless they are already there; then check the key epochs (see {@link maintain}).
   */
  async enrolOwner(info: { kind: string; name: string }): Promise<void> {
    const writes: Entry[] = []
    if (!this.certificates.has(this.device.deviceId)) {
      writes.push([certificateKey(this.device.deviceId), issueCertificate(this.account, this.device, { ...info, role: 'owner' })])
    }
    for (const scope of BUILTIN_SCOPES) {
      if (isDeviceLocal(scope) || this.definitions.has(scope) || this.defaults.has(scope)) continue
      const definition = this.definition(scope)!
      // definedAt 0: every owner writes byte-identical defaults (Ed25519 is deterministic).
      writes.push([defaultScopeKey(scope), signScopeDefinition(this.account, { ...definition, definedAt: 0 })])
    }
    const pass = this.passes.get(this.device.deviceId)
    if (!pass) writes.push([passKey(this.device.deviceId), issueRelayPass(this.account, this.device, { rooms: 'all' })])
    await this.write(writes, writes.filter(([key]) => key.startsWith('pass/')))
    this.scheduleMaintenance()
  }

  /**
   * Admit a paired device: certificate, grants for `scopes`, lockboxes for every start of every
   * epoch of every scope it holds (and of the registry), and its relay pass.
   */
  async admit(device: AdmittedDevice, info: { kind: string; name: string }, scopes: string[], until?: number): Promise<Uint8Array> {
    const certificate = issueCertificate(this.account, device, { ...info, role: 'member' })
    const priv: Entry[] = [[certificateKey(device.deviceId), certificate]]
    // The term lands with the certificate: there is never a moment the device is a member for good.
    if (until !== undefined) priv.push([termKey(device.deviceId), signDeviceTerm(this.account, { deviceId: device.deviceId, until, issuedAt: Date.now() })])
    for (const scope of scopes) {
      if (isDeviceLocal(scope)) continue
      priv.push([grantKey(scope, device.deviceId), signGrant(this.account, { scope, deviceId: device.deviceId, grantedAt: Date.now() })])
    }
    // Apply locally first so `holds` sees the new certificate and grants.
    await this.write(priv, [])
    await this.refreshKeysFor(device.deviceId, device.boxPublicKey)
    return this.relayPass(device.deviceId)!
  }

  /**
   * Record a statement received out of band (a new device's relay pass, handed over during
   * pairing so it can reach the relay before it can read the registry). Verified like any other.
   */
  addPublicStatement(key: string, bytes: Uint8Array): void {
    Y.transact(this.replica.outer, () => publicStatementsMap(this.replica.outer).set(key, bytes))
  }

  /**
   * Grant one scope to one device (owner only) and hand it the keys; with `until`, the grant ends
   * then (the scope rotates without the device, its relay pass stops admitting it to the room).
   */
  async grant(scope: string, deviceId: string, until?: number): Promise<void> {
    const grant = signGrant(this.account, { scope, deviceId, grantedAt: Date.now(), ...(until !== undefined && { until }) })
    await this.write([[grantKey(scope, deviceId), grant]], [])
    const certificate = this.certificates.get(deviceId)
    if (certificate) await this.refreshKeysFor(deviceId, certificate.boxPublicKey)
  }

  /**
   * Move a member's end to `until` (owner only): a newer term, when it has one, and a renewal of
   * every temporary grant of it still running; then a fresh relay pass with the new ends.
   */
  async extend(deviceId: string, until: number): Promise<void> {
    const now = Date.now()
    const priv: Entry[] = []
    if (this.terms.has(deviceId)) priv.push([termKey(deviceId), signDeviceTerm(this.account, { deviceId, until, issuedAt: now })])
    for (const scope of this.scopeNames()) {
      if (this.grantEnd(scope, deviceId) === undefined || !this.hasGrant(scope, deviceId)) continue
      priv.push([grantKey(scope, deviceId), signGrant(this.account, { scope, deviceId, grantedAt: now, until })])
    }
    await this.write(priv, [])
    const certificate = this.certificates.get(deviceId)
    if (certificate) await this.refreshKeysFor(deviceId, certificate.boxPublicKey)
  }

  /**
   * Define or redefine a scope (owner only): its kinds, and the devices granted it beyond them —
   * grants of devices not listed are withdrawn. Devices the policy now covers get keys; when it
   * no longer covers a member that held the scope, the scope rotates exactly as on a revocation
   * (a new epoch sealed to the remaining holders) and the removed members' relay passes are
   * reissued without its room.
   */
  async define(name: string, policy: { kinds: string[]; devices: string[]; retentionMs: number }): Promise<void> {
    const roomId = this.keyring.roomId(name)
    const before = this.holders(name).map((c) => c.deviceId)
    const priv: Entry[] = [
      [scopeKey(name), signScopeDefinition(this.account, { name, roomId, kinds: policy.kinds, retentionMs: policy.retentionMs, definedAt: Date.now() })],
    ]
    for (const deviceId of policy.devices) {
      priv.push([grantKey(name, deviceId), signGrant(this.account, { scope: name, deviceId, grantedAt: Date.now() })])
    }
    const withdrawn = [...(this.grants.get(name) ?? [])].filter((id) => !policy.devices.includes(id)).map((id) => grantKey(name, id))
    // Staged synchronously, so `holds` below already sees the new policy.
    this.stage(priv, [], withdrawn)
    const removed = before.filter((id) => !this.holds(id, name))
    if (removed.length > 0) {
      const rotation = this.rotation(name, new Set(removed))
      const passes = removed.map((id) => this.passEntry(id)).filter((e): e is Entry => e !== undefined)
      this.stage([rotation.start, ...passes], [rotation.start, ...rotation.lockboxes, ...passes])
    }
    await this.replica.whenFlushed()
    for (const certificate of this.certificates.values()) {
      if (certificate.role === 'member' && this.holds(certificate.deviceId, name)) {
        await this.refreshKeysFor(certificate.deviceId, certificate.boxPublicKey)
      }
    }
  }

  /**
   * Revoke a device (owner only): a signed revocation stating, per room this device holds a
   * replica of, exactly the seqs of the device it applied (`appliedSeqs`), and a new key epoch for
   * every room the device could read, sealed to the devices that remain. Returns the scopes whose
   * epoch moved, so the caller can re-seal them by compaction.
   */
  async revoke(deviceId: string, appliedSeqs: (roomId: string) => SeqSet | undefined): Promise<string[]> {
    const certificate = this.certificates.get(deviceId)
    const scopes = [REGISTRY_SCOPE, ...this.scopeNames().filter((s) => !isDeviceLocal(s) && this.keyring.knowsRoom(s))]
    // Every room it holds, or whose current key it may have been handed anyway.
    const affected = certificate ? scopes.filter((s) => s === REGISTRY_SCOPE || this.holds(deviceId, s) || this.mayHoldCurrentKey(deviceId, s)) : []
    const cutoffs = new Map<string, RevocationCutoff>()
    for (const scope of scopes) {
      const roomId = this.keyring.roomId(scope)
      const seqs = appliedSeqs(roomId)
      // A room this device held no replica of (or applied nothing of it in) is not listed: there,
      // nothing of the revoked device is accepted.
      if (seqs && seqs.size() > 0) cutoffs.set(roomId, { epoch: this.keyring.currentEpoch(scope) + 1, seqs })
    }
    const exclude = new Set([deviceId])
    const rotations = affected.map((scope) => this.rotation(scope, exclude))
    const revocation: Entry = [revocationKey(deviceId), signRevocation(this.account, { deviceId, revokedAt: Date.now(), cutoffs })]
    const starts = rotations.map((r) => r.start)
    // Public copies for the relay; lockboxes land in the same transaction as the new epochs, so
    // no remaining device learns of an epoch without its key.
    await this.write([revocation, ...starts], [...rotations.flatMap((r) => r.lockboxes), revocation, ...starts])
    return affected.filter((s) => s !== REGISTRY_SCOPE)
  }

  /** Stop maintaining (the device is closing). */
  /** Stop maintaining (the device is closing). */
  override close(): void {
    super.close()
    this.stopWatchingPublic()
  }


  /**
   * Owner upkeep after any registry change (WIRE.md "Keys and epochs"): rotate every room whose
   * current epoch is unsafe — its canonical start was sealed to, or its key handed to, a device
   * that is revoked or no longer holds the scope — to a new epoch for the remaining holders only,
   * and give every holder a lockbox for every start of every epoch it holds that it lacks.
   * Concurrent owners doing this at once both exclude every such device, so the result is safe
   * whichever start ends up canonical.
   */
  private async maintain(): Promise<void> {
    const pub: Entry[] = []
    const priv: Entry[] = []
    for (const scope of [REGISTRY_SCOPE, ...this.scopeNames().filter((s) => !isDeviceLocal(s) && this.keyring.knowsRoom(s))]) {
      const ended = this.endedHolders(scope)
      if (this.currentEpochUnsafe(scope) || ended.length > 0) {
        const cutoffs = this.endCutoffEntries(scope, ended)
        const rotation = this.rotation(scope, new Set())
        pub.push(rotation.start, ...rotation.lockboxes)
        priv.push(rotation.start, ...cutoffs)
      }
      for (const member of this.holders(scope)) pub.push(...this.missingLockboxes(scope, member))
    }
    if (pub.length === 0 && priv.length === 0) return
    await this.write(priv, pub)
  }

  private scheduleMaintenance(): void {
    if (!this.isOwner || this.closed) return
    this.maintainAgain = true
    if (this.maintaining) return
    this.maintaining = (async () => {
      while (this.maintainAgain && !this.closed) {
        this.maintainAgain = false
        // Let the batch of statements that triggered this land first (one sync message carries many).
        await new Promise<void>((resolve) => setTimeout(resolve, 0))
        if (!this.closed) await this.maintain()
      }
    })()
      .catch((error: unknown) => {
        // A failed store is reported by the replica and retried by the next change; after close
        // nothing is left to maintain. Anything else is a bug and must surface.
        if (!(error instanceof StorageError) && !this.closed) throw error
      })
      .finally(() => {
        this.maintaining = undefined
      })
  }

  /** A new epoch for `scope`'s room with a fresh salt, sealed to its holders but `exclude`. */
  private rotation(scope: string, exclude: Set<string>): { start: Entry; lockboxes: Entry[] } {
    const roomId = this.keyring.roomId(scope)
    const epoch = this.keyring.currentEpoch(scope) + 1
    const salt = randomBytes(SALT_BYTES)
    const startId = startIdOf(salt)
    const recipients = this.holders(scope).filter((c) => !exclude.has(c.deviceId))
    // Named, so an owner that has not heard why yet keeps them out as well (stickyExcluded).
    const excluded = [...new Set([...exclude, ...this.revocations.keys(), ...this.stickyExcluded(scope), ...this.endedMembers(scope)])].filter((id) => !recipients.some((c) => c.deviceId === id))
    const key = this.keyring.deriveEpochKey(scope, epoch, salt)
    const start = signEpochStart(this.account, { roomId, epoch, startedAt: Date.now(), salt, recipients: recipients.map((c) => c.deviceId), excluded })
    const lockboxes = recipients.map((c): Entry => [lockboxKey(roomId, epoch, c.deviceId, startId), issueLockbox(this.account, c, roomId, epoch, key, salt)])
    return { start: [epochKey(roomId, epoch, startId), start], lockboxes }
  }

  /**
   * @internal The device's applied seqs per room and sender: an owner states them in the end
   * cutoffs it writes when it rotates a room at a member's end (without it, it writes none).
   */
  setAppliedSeqs(applied: (roomId: string, deviceId: string) => SeqSet | undefined): void {
    this.appliedSeqs = applied
  }

  /**
   * End cutoffs for members whose access to `scope` ended, for the rotation about to start: per
   * member, exactly the seqs of it this device applied in the room — as a revocation states them
   * (WIRE.md "Keys and epochs"); none applied, or no replica here, lists none.
   */
  private endCutoffEntries(scope: string, ended: string[]): Entry[] {
    const applied = this.appliedSeqs
    if (!applied) return []
    const roomId = this.keyring.roomId(scope)
    const epoch = this.keyring.currentEpoch(scope) + 1
    return ended.map((deviceId): Entry => {
      const endedAt = this.termEnded(deviceId) ? this.terms.get(deviceId)!.until : (this.grantEnd(scope, deviceId) ?? this.now())
      const seqs = applied(roomId, deviceId) ?? SeqSet.fromRanges([])
      return [endCutoffKey(roomId, deviceId, this.device.deviceId), signEndCutoff(this.account, { deviceId, roomId, endedAt, epoch, seqs })]
    })
  }

  /** Lockboxes `member` lacks for the starts of every epoch of `scope` so far. */
  private missingLockboxes(scope: string, member: { deviceId: string; boxPublicKey: Uint8Array }): Entry[] {
    const roomId = this.keyring.roomId(scope)
    const existing = publicStatementsMap(this.replica.outer)
    const out: Entry[] = []
    for (let epoch = 0; epoch <= this.keyring.currentEpoch(scope); epoch++) {
      const starts: Array<Pick<EpochStartRecord, 'startId' | 'salt' | 'excluded'> & { startedAt?: number }> = this.keyring.starts(roomId, epoch)
      if (epoch === 0 && !starts.some((s) => s.startId === '')) starts.unshift({ startId: '' })
      for (const start of starts) {
        const key = lockboxKey(roomId, epoch, member.deviceId, start.startId)
        if (existing.has(key)) continue
        // Never hand a start's key to a device its owner knowingly left out, unless let in since.
        if (start.excluded?.includes(member.deviceId) && !this.includedAfter(member.deviceId, scope, start.startedAt ?? 0)) continue
        out.push([key, issueLockbox(this.account, member, roomId, epoch, this.keyring.deriveEpochKey(scope, epoch, start.salt), start.salt)])
      }
    }
    return out
  }

  /** True when the current epoch of `scope` can be opened by a device that should not hold it. */
  private currentEpochUnsafe(scope: string): boolean {
    const roomId = this.keyring.roomId(scope)
    const epoch = this.keyring.currentEpoch(scope)
    const canonical = this.keyring.canonicalStart(roomId, epoch)
    if (!canonical) return false
    if (!this.startIsSafe(scope, canonical)) return true
    // A lockbox of the canonical start given to a device that lost the scope (say, admitted by
    // one owner while another narrowed the scope); epoch 0 and legacy starts name no recipients.
    const existing = publicStatementsMap(this.replica.outer)
    for (const certificate of this.certificates.values()) {
      if (certificate.role !== 'member' || this.mayHold(certificate.deviceId, scope)) continue
      const bytes = existing.get(lockboxKey(roomId, epoch, certificate.deviceId, canonical.startId))
      if (bytes instanceof Uint8Array && this.isLockboxOf(bytes, canonical, certificate.deviceId)) return true
    }
    return false
  }

  /** True when `bytes` is a genuine lockbox of `start` for `deviceId` (verified once per signature). */
  private isLockboxOf(bytes: Uint8Array, start: EpochStartRecord, deviceId: string): boolean {
    const signature = toHex(bytes.subarray(Math.max(0, bytes.length - 64)))
    let verdict = this.lockboxVerdicts.get(signature)
    if (verdict === undefined) {
      const r = verifyLockbox(this.account, bytes)
      verdict = r.ok && r.value.roomId === start.roomId && r.value.epoch === start.epoch && r.value.recipient === deviceId && startIdOf(r.value.salt) === start.startId
      this.lockboxVerdicts.set(signature, verdict)
    }
    return verdict
  }

  /**
   * Whether a start may be sealed under: none of the members it was sealed to is revoked or known
   * to no longer hold the scope. A recipient whose certificate has not arrived here yet is not
   * held against it (it would only delay writes until the certificate comes).
   */
  private startIsSafe(scope: string, start: EpochStartRecord): boolean {
    return start.recipients === undefined || start.recipients.every((id) => this.mayHold(id, scope))
  }

  private mayHold(deviceId: string, scope: string): boolean {
    if (this.revocations.has(deviceId)) return false
    if (this.stickyExcluded(scope).has(deviceId)) return false
    return !this.certificates.has(deviceId) || this.holds(deviceId, scope)
  }

  /**
   * Devices a start of the room's current epoch knowingly left out, unless a grant or scope
   * definition newer than that start lets them in again. An owner that has not heard why yet (the
   * revocation or narrowing behind it was withheld, or is still on its way) must not treat them as
   * holders: rotate to them, or hand them the keys of such a start.
   */
  private stickyExcluded(scope: string): Set<string> {
    const out = new Set<string>()
    const roomId = this.keyring.roomId(scope)
    for (const start of this.keyring.starts(roomId, this.keyring.currentEpoch(scope))) {
      for (const id of start.excluded ?? []) if (!this.includedAfter(id, scope, start.startedAt)) out.add(id)
    }
    return out
  }

  /** True when a grant or scope definition newer than `at` (ms) lets `deviceId` hold `scope`. */
  private includedAfter(deviceId: string, scope: string, at: number): boolean {
    if ((this.grantTimes.get(`${scope}/${deviceId}`) ?? 0) > at && this.grants.get(scope)?.has(deviceId) === true) return true
    const definition = this.definition(scope)
    const kind = this.certificates.get(deviceId)?.kind
    return definition !== undefined && definition.definedAt > at && kind !== undefined && definition.kinds.includes(kind)
  }

  /** True when `deviceId` was a recipient of, or holds a lockbox of, a start of the current epoch. */
  private mayHoldCurrentKey(deviceId: string, scope: string): boolean {
    const roomId = this.keyring.roomId(scope)
    const epoch = this.keyring.currentEpoch(scope)
    const existing = publicStatementsMap(this.replica.outer)
    const starts = this.keyring.starts(roomId, epoch)
    if (starts.some((s) => s.recipients?.includes(deviceId))) return true
    return ['', ...starts.map((s) => s.startId)].some((id) => existing.has(lockboxKey(roomId, epoch, deviceId, id)))
  }

  /**
   * Members whose term, or temporary grant of `scope`, ended and that may still hold the scope's
   * current key (a recipient or lockbox holder of a start of the current epoch, epoch 0 included):
   * an owner rotates the scope without them, as on a revocation.
   */
  private endedHolders(scope: string): string[] {
    return this.endedMembers(scope).filter((id) => this.mayHoldCurrentKey(id, scope))
  }

  /** Members that no longer hold `scope` because their term or their temporary grant of it ended. */
  private endedMembers(scope: string): string[] {
    return this.members()
      .map((c) => c.deviceId)
      .filter((id) => !this.holds(id, scope) && (this.termEnded(id) || this.grantEnded(scope, id)))
  }

  /** Members (non-owner, not revoked) with their certificates. */
  private members(): DeviceCertificate[] {
    return [...this.certificates.values()].filter((c) => c.role === 'member' && !this.revocations.has(c.deviceId))
  }

  /** Members holding `scope` (every member for the registry): who a new start is sealed to. */
  private holders(scope: string): DeviceCertificate[] {
    const sticky = this.stickyExcluded(scope)
    return this.members().filter((c) => this.holds(c.deviceId, scope) && !sticky.has(c.deviceId))
  }

  /** A fresh relay pass for a member: the registry and the rooms of the scopes it holds now. */
  private passEntry(deviceId: string): Entry | undefined {
    const certificate = this.certificates.get(deviceId)
    if (!certificate) return undefined
    const scopes = [REGISTRY_SCOPE, ...this.heldScopes(deviceId).filter((s) => !isDeviceLocal(s))]
    const rooms = scopes.map((s) => this.keyring.roomId(s))
    // Ends ride in the root-signed pass, so the relay refuses the device then by its own clock.
    const roomsUntil: Record<string, number> = {}
    for (const scope of scopes) {
      const end = this.grantEnd(scope, deviceId)
      if (end !== undefined) roomsUntil[this.keyring.roomId(scope)] = end
    }
    const until = this.terms.get(deviceId)?.until
    const pass = issueRelayPass(
      this.account,
      { deviceIdBytes: fromHex(deviceId)!, signPublicKey: certificate.signPublicKey },
      { rooms, issuedAt: Math.max(Date.now(), (this.passes.get(deviceId)?.issuedAt ?? 0) + 1), ...(until !== undefined && { until }), roomsUntil },
    )
    return [passKey(deviceId), pass]
  }

  /**
   * Seal every start of every epoch of every room `deviceId` holds (and of the registry) to it,
   * and issue a relay pass covering those rooms.
   */
  private async refreshKeysFor(deviceId: string, boxPublicKey: Uint8Array): Promise<void> {
    const publicWrites: Entry[] = []
    for (const scope of [REGISTRY_SCOPE, ...this.heldScopes(deviceId).filter((s) => !isDeviceLocal(s))]) {
      publicWrites.push(...this.missingLockboxes(scope, { deviceId, boxPublicKey }))
    }
    const pass = this.passEntry(deviceId)
    if (pass) publicWrites.push(pass)
    await this.write(publicWrites.filter(([k]) => k.startsWith('pass/')), publicWrites)
  }

  /** Write statements (see {@link stage}) and wait until they are sealed and stored. */
  private async write(priv: Entry[], pub: Entry[], remove: string[] = []): Promise<void> {
    this.stage(priv, pub, remove)
    await this.replica.whenFlushed()
    // A public entry written over an older one is a deletion too, which the store records only in
    // a rewrite (with a checkpoint): do it now, so an acknowledged statement is on disk.
    if (pub.length > 0) await this.replica.checkpoint()
  }

  /**
   * Apply statements now, synchronously (each map's observer ingests them before this returns):
   * `priv` into the sealed registry, `pub` into the public map, and delete the private `remove`
   * keys (withdrawn grants).
   */
  private stage(priv: Entry[], pub: Entry[], remove: string[] = []): void {
    if (!this.isOwner) throw new PermissionError('only owner devices write registry statements')
    if (pub.length > 0) {
      const map = publicStatementsMap(this.replica.outer)
      Y.transact(this.replica.outer, () => {
        for (const [key, value] of pub) map.set(key, value)
      })
    }
    if (priv.length > 0 || remove.length > 0) {
      const map = statementsMap(this.replica.inner)
      this.replica.inner.transact(() => {
        for (const [key, value] of priv) map.set(key, value)
        for (const key of remove) map.delete(key)
      })
    }
  }
}
