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
  lockboxRecipient,
  openLockbox,
  randomBytes,
  REGISTRY_SCOPE,
  SALT_BYTES,
  signEpochStart,
  signGrant,
  signRevocation,
  signDeviceTerm,
  signScopeDefinition,
  startIdOf,
  verifyCertificate,
  verifyDeviceTerm,
  verifyEpochStart,
  verifyGrant,
  verifyLockbox,
  verifyRelayPass,
  verifyRevocation,
  verifyScopeDefinition,
  verifyStatement,
  type AccountKeys,
  type DeviceCertificate,
  type DeviceKeyring,
  type DeviceKeys,
  type DeviceTerm,
  type EpochStartRecord,
  type Revocation,
  type RevocationCutoff,
  type ScopeDefinition,
} from '../crypto/index.js'
import { RejectCode } from '../crypto/codes.js'
import type { Replica, SenderDirectory, SenderStatus } from '../sync/replica.js'
import type { SeqSet } from '../sync/seq-set.js'
import { Emitter } from '../util/emitter.js'
import { bytesEqual, fromHex, toHex } from '../util/bytes.js'
import { decodeKeptStatements, encodeKeptStatements, watchPublicDeletions } from './kept-statements.js'
import { BUILTIN_SCOPES, DEFAULT_SCOPE_KINDS, isDeviceLocal } from './builtin-scopes.js'
import { PermissionError } from '../errors.js'

/** Events of a {@link Registry}. */
export interface RegistryEvents {
  /** Something the registry knows changed (certificates, grants, epochs, keys, revocations). */
  change: (event: { keys: string[] }) => void
  /** A statement failed verification and is ignored. */
  rejected: (event: { code: RejectCode; reason: string; key: string }) => void
}

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
export class Registry {
  /** Typed events. */
  readonly events = new Emitter<RegistryEvents>()
  private readonly certificates = new Map<string, DeviceCertificate>()
  /** Every verified revocation of a device: owners revoking concurrently each state their cutoffs. */
  private readonly revocations = new Map<string, Revocation[]>()
  /** Owners' scope definitions (`scope/<name>`). */
  private readonly definitions = new Map<string, ScopeDefinition>()
  /** Built-in defaults as owners wrote them (`scope/<name>/default`). */
  private readonly defaults = new Map<string, ScopeDefinition>()
  /** The statement bytes of each definition in force, by key (`scope/<name>` or its default). */
  private readonly definitionBytes = new Map<string, Uint8Array>()
  private readonly grants = new Map<string, Set<string>>()
  /** When each grant was issued (`<scope>/<deviceId>` → ms): a grant newer than a start undoes its exclusion. */
  private readonly grantTimes = new Map<string, number>()
  /** Signature of the grant statement under each grant key, to forget it when it is withdrawn. */
  private readonly grantSignatures = new Map<string, string>()
  /** End of each temporary grant (`<scope>/<deviceId>` → ms), as its newest grant states it. */
  private readonly grantEnds = new Map<string, number>()
  /** Each member's term (when its membership ends), the newest by `issuedAt`. */
  private readonly terms = new Map<string, DeviceTerm>()
  /**
   * The latest time a verified statement states (ms). Ends are judged by the later of it and this
   * device's clock, so a device whose clock is behind (a head unit) still sees its end pass once
   * it hears of anything an owner did after it.
   */
  private signedClock = 0
  private endTimer: ReturnType<typeof setTimeout> | undefined
  private readonly passes = new Map<string, { issuedAt: number; bytes: Uint8Array }>()
  private readonly lastSeenAt = new Map<string, number>()
  /** Signatures of statements already applied (a statement is verified once). */
  private readonly ingested = new Set<string>()
  /** Public statements verified here, kept with the registry checkpoint (kept-statements.ts). */
  private readonly kept = new Map<string, Uint8Array>()
  private readonly stopWatchingPublic: () => void
  /** Owner side: lockbox signatures checked for {@link currentEpochUnsafe}, and the verdict. */
  private readonly lockboxVerdicts = new Map<string, boolean>()
  private readonly epochGraceMs: number
  private maintaining: Promise<void> | undefined
  private maintainAgain = false
  private closed = false

  constructor(
    private readonly replica: Replica,
    private readonly account: AccountKeys,
    private readonly device: DeviceKeys,
    private readonly keyring: DeviceKeyring,
    options: RegistryOptions = {},
  ) {
    this.epochGraceMs = options.epochGraceMs ?? DEFAULT_EPOCH_GRACE_MS
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

  // ── queries ────────────────────────────────────────────────────────────────

  /** True when this device holds the account root (it can sign statements). */
  get isOwner(): boolean {
    return this.account.rootSecretKey !== undefined
  }

  /** The verified certificate of a device, if any. */
  certificate(deviceId: string): DeviceCertificate | undefined {
    return this.certificates.get(deviceId)
  }

  /** Every verified certificate. */
  list(): DeviceCertificate[] {
    return [...this.certificates.values()]
  }

  /**
   * The revocation of a device, if it was revoked — the earliest, when owners revoked it
   * concurrently (each one's cutoffs still count for its envelopes).
   */
  revocation(deviceId: string): Revocation | undefined {
    const all = this.revocations.get(deviceId)
    return all && [...all].sort((a, b) => a.revokedAt - b.revokedAt)[0]
  }

  /** When this device last applied an envelope from `deviceId` (ms), if ever. */
  lastSeen(deviceId: string): number | undefined {
    return this.lastSeenAt.get(deviceId)
  }

  /** @internal called by replicas when they apply an envelope. */
  sawSender(deviceId: string): void {
    this.lastSeenAt.set(deviceId, Date.now())
  }

  /** A scope's definition: an owner's statement, else the built-in default. */
  definition(scope: string): ScopeDefinition | undefined {
    const defined = this.definitions.get(scope) ?? this.defaults.get(scope)
    if (defined) return defined
    const kinds = DEFAULT_SCOPE_KINDS[scope as keyof typeof DEFAULT_SCOPE_KINDS]
    if (!kinds) return undefined
    if (!this.keyring.knowsRoom(scope) && !isDeviceLocal(scope)) return undefined
    return { name: scope, roomId: this.keyring.roomId(scope), kinds: [...kinds], retentionMs: 0, definedAt: 0 }
  }

  /** Every scope name known to this device (built-in and defined). */
  scopeNames(): string[] {
    return [...new Set([...BUILTIN_SCOPES, ...this.defaults.keys(), ...this.definitions.keys()])]
  }

  /**
   * True when `deviceId` may hold `scope`: its kind is in the scope's policy, or it was granted it
   * (and the grant has not ended); never once its term ended or it was revoked.
   */
  holds(deviceId: string, scope: string): boolean {
    const certificate = this.certificates.get(deviceId)
    if (!certificate || this.revocations.has(deviceId)) return false
    if (certificate.role === 'member' && this.termEnded(deviceId)) return false
    if (isDeviceLocal(scope) || scope === REGISTRY_SCOPE) return true
    const definition = this.definition(scope)
    if (!definition) return false
    return definition.kinds.includes(certificate.kind) || this.hasGrant(scope, deviceId)
  }

  /** Now, for judging ends (ms): the later of this device's clock and the newest signed time it saw. */
  now(): number {
    return Math.max(Date.now(), this.signedClock)
  }

  /** A member's term, if its membership ends. */
  term(deviceId: string): DeviceTerm | undefined {
    return this.terms.get(deviceId)
  }

  /** True once a member's term has ended. */
  termEnded(deviceId: string): boolean {
    const term = this.terms.get(deviceId)
    return term !== undefined && term.until <= this.now()
  }

  /** When the device's grant of `scope` ends (ms), for a temporary grant. */
  grantEnd(scope: string, deviceId: string): number | undefined {
    return this.grants.get(scope)?.has(deviceId) === true ? this.grantEnds.get(`${scope}/${deviceId}`) : undefined
  }

  /** True while `deviceId` holds a grant of `scope` that has not ended. */
  private hasGrant(scope: string, deviceId: string): boolean {
    if (this.grants.get(scope)?.has(deviceId) !== true) return false
    const end = this.grantEnds.get(`${scope}/${deviceId}`)
    return end === undefined || end > this.now()
  }

  /** True when the device's temporary grant of `scope` has ended. */
  private grantEnded(scope: string, deviceId: string): boolean {
    const end = this.grantEnd(scope, deviceId)
    return end !== undefined && end <= this.now()
  }

  /**
   * True when a stated policy (an owner's definition, or the default every owner writes) no
   * longer lets `deviceId` hold `scope` — not while the policy is merely unknown here yet, so
   * that a device still syncing its registry never drops a scope it holds.
   */
  removedFrom(deviceId: string, scope: string): boolean {
    if (isDeviceLocal(scope) || !this.certificates.has(deviceId) || this.revocations.has(deviceId)) return false
    if (!this.definitions.has(scope) && !this.defaults.has(scope)) return false
    return !this.holds(deviceId, scope)
  }

  /** Scopes `deviceId` holds. */
  heldScopes(deviceId: string): string[] {
    return this.scopeNames().filter((scope) => this.holds(deviceId, scope))
  }

  /** The newest relay pass issued for a device. */
  relayPass(deviceId: string): Uint8Array | undefined {
    return this.passes.get(deviceId)?.bytes
  }

  /**
   * The {@link SenderDirectory} of one scope's room. `applied` tells which envelopes this device
   * applied before, which epoch freshness never refuses.
   */
  directoryFor(scope: string, roomId: string, options: { applied?: (senderId: string, seq: number) => boolean } = {}): SenderDirectory {
    return {
      revoked: (senderId: string) => this.revocations.has(senderId),
      resolve: (senderId: string, seq: number, epoch: number): SenderStatus => {
        const certificate = this.certificates.get(senderId)
        if (!certificate) return { status: 'unknown' }
        const revocations = this.revocations.get(senderId)
        if (revocations && !revocations.some((r) => cutoffAccepts(r.cutoffs.get(roomId), seq, epoch))) return { status: 'revoked' }
        const granted =
          certificate.role === 'owner' ||
          (!this.termEnded(senderId) &&
            (isDeviceLocal(scope) || this.definition(scope)?.kinds.includes(certificate.kind) === true || this.hasGrant(scope, senderId)))
        // A device removed from the scope (narrowing) wrote its older envelopes while it held it:
        // only a holder had that epoch's key. Those stay valid (until stale, like anyone's); under
        // the current epoch it holds no key, so anything there waits for a grant.
        if (!granted && epoch >= this.keyring.currentEpoch(scope)) return { status: 'not-granted', signPublicKey: certificate.signPublicKey }
        if (this.keyring.isStale(scope, epoch, this.epochGraceMs) && options.applied?.(senderId, seq) !== true) return { status: 'stale' }
        return { status: 'known', signPublicKey: certificate.signPublicKey }
      },
    }
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
  close(): void {
    this.closed = true
    if (this.endTimer) clearTimeout(this.endTimer)
    this.stopWatchingPublic()
  }

  /**
   * Wake at the next end of a term or temporary grant still ahead: nothing else changes in the
   * registry when one passes, yet owners must rotate then and the device itself must purge.
   */
  private scheduleEnd(): void {
    if (this.closed) return
    if (this.endTimer) clearTimeout(this.endTimer)
    this.endTimer = undefined
    const now = this.now()
    const ends = [...[...this.terms.values()].map((t) => t.until), ...this.grantEnds.values()].filter((t) => t > now)
    if (ends.length === 0) return
    const next = Math.min(...ends)
    // setTimeout holds at most 2^31 - 1 ms; a later end re-arms on the way.
    this.endTimer = setTimeout(() => {
      this.endTimer = undefined
      if (this.closed) return
      if (this.now() >= next) this.events.emit('change', { keys: ['term'] })
      this.scheduleEnd()
    }, Math.min(next - now + 1, 2 ** 31 - 1))
    ;(this.endTimer as { unref?: () => void }).unref?.()
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
      if (this.currentEpochUnsafe(scope) || this.endedHolders(scope).length > 0) {
        const rotation = this.rotation(scope, new Set())
        pub.push(rotation.start, ...rotation.lockboxes)
        priv.push(rotation.start)
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

  // ── ingest ─────────────────────────────────────────────────────────────────

  private ingest(map: Y.Map<Uint8Array>, keys: string[], where: 'public' | 'private'): void {
    const changed: string[] = []
    let keysAdded = false
    for (const key of keys) {
      const bytes = map.get(key)
      const kind = key.slice(0, key.indexOf('/'))
      if (!(bytes instanceof Uint8Array)) {
        // Only an owner's sealed registry envelope can delete a private entry: a withdrawn grant.
        if (where === 'private' && kind === 'grant' && this.withdrawGrant(key)) changed.push(key)
        continue
      }
      // The public map only carries what the relay or a bootstrapping member needs.
      if (where === 'public' && !['lockbox', 'revoke', 'epoch', 'pass'].includes(kind)) continue
      const accepted = this.ingestOne(kind, key, bytes)
      if (accepted === 'key') keysAdded = true
      if (accepted) changed.push(key)
      // Keep every public statement verified here (now or as its private copy), and on owners the
      // private originals of the public copies, to put back when deleted: see kept-statements.ts.
      const verified = accepted !== false || this.ingested.has(signatureOf(bytes))
      const publicKind = kind === 'revoke' || kind === 'epoch' || kind === 'pass'
      if (verified && (where === 'public' || (this.isOwner && publicKind))) this.kept.set(key, bytes)
    }
    if (keysAdded) this.replica.retryHeld()
    if (changed.some((key) => key.startsWith('term/') || key.startsWith('grant/'))) this.scheduleEnd()
    if (changed.length > 0) this.events.emit('change', { keys: changed })
  }

  /** Verify and record one statement; returns what it changed (or false). */
  private ingestOne(kind: string, key: string, bytes: Uint8Array): false | 'fact' | 'key' {
    // Revocations, epochs and passes come twice (private and public copy): verify each once.
    const signature = signatureOf(bytes)
    if (this.ingested.has(signature)) return false
    const result = this.ingestVerified(kind, key, bytes)
    if (result !== false) {
      this.ingested.add(signature)
      if (kind === 'grant') this.grantSignatures.set(key, signature)
    }
    return result
  }

  /** Note a time an owner signed: ends are judged by the later of it and this clock (see {@link now}). */
  private sawTime(at: number): void {
    if (at > this.signedClock) this.signedClock = at
  }

  /** Write the newer definition back over an older one the private map kept (owners only). */
  private reassertDefinition(key: string, bytes: Uint8Array): void {
    setTimeout(() => {
      if (this.closed) return
      const map = statementsMap(this.replica.inner)
      const now = map.get(key)
      if (now instanceof Uint8Array && bytesEqual(now, bytes)) return
      this.replica.inner.transact(() => map.set(key, bytes))
    }, 0)
  }

  private withdrawGrant(key: string): boolean {
    const rest = key.slice('grant/'.length)
    const slash = rest.lastIndexOf('/')
    const scope = rest.slice(0, slash)
    const deviceId = rest.slice(slash + 1)
    const signature = this.grantSignatures.get(key)
    // The same grant may be written again later; it must be ingested again then.
    if (signature !== undefined) this.ingested.delete(signature)
    this.grantSignatures.delete(key)
    this.grantEnds.delete(`${scope}/${deviceId}`)
    return this.grants.get(scope)?.delete(deviceId) === true
  }

  private ingestVerified(kind: string, key: string, bytes: Uint8Array): false | 'fact' | 'key' {
    const fail = (result: { code: RejectCode; reason: string }): false => {
      this.events.emit('rejected', { code: result.code, reason: result.reason, key })
      return false
    }
    switch (kind) {
      case 'cert': {
        const r = verifyCertificate(this.account, bytes)
        if (!r.ok) return fail(r)
        if (certificateKey(r.value.deviceId) !== key) return false
        this.certificates.set(r.value.deviceId, r.value)
        return 'fact'
      }
      case 'revoke': {
        const r = verifyRevocation(this.account, bytes)
        if (!r.ok) return fail(r)
        let all = this.revocations.get(r.value.deviceId)
        if (!all) this.revocations.set(r.value.deviceId, (all = []))
        all.push(r.value)
        this.sawTime(r.value.revokedAt)
        return 'fact'
      }
      case 'scope': {
        const r = verifyScopeDefinition(this.account, bytes)
        if (!r.ok) return fail(r)
        const table = key === scopeKey(r.value.name) ? this.definitions : key === defaultScopeKey(r.value.name) ? this.defaults : undefined
        if (!table) return false
        // The newest definition is the policy. Two owners defining a scope concurrently write the
        // same key, and the map may keep the older one: the newer stands here, and the owner that
        // holds it writes it again, so every device converges on it (WIRE.md "Signed
        // statements", scope definitions).
        const current = table.get(r.value.name)
        const currentBytes = this.definitionBytes.get(key)
        if (current && currentBytes && newerDefinition(current, currentBytes, r.value, bytes)) {
          if (this.isOwner) this.reassertDefinition(key, currentBytes)
          return false
        }
        table.set(r.value.name, r.value)
        this.definitionBytes.set(key, bytes)
        this.keyring.setRoom(r.value.name, r.value.roomId)
        return 'fact'
      }
      case 'grant': {
        const r = verifyGrant(this.account, bytes)
        if (!r.ok) return fail(r)
        if (grantKey(r.value.scope, r.value.deviceId) !== key) return false
        let set = this.grants.get(r.value.scope)
        if (!set) this.grants.set(r.value.scope, (set = new Set()))
        set.add(r.value.deviceId)
        const at = `${r.value.scope}/${r.value.deviceId}`
        // The newest grant of the key says whether, and when, it ends (a renewal moves the end).
        if (r.value.grantedAt >= (this.grantTimes.get(at) ?? 0)) {
          if (r.value.until === undefined) this.grantEnds.delete(at)
          else this.grantEnds.set(at, r.value.until)
        }
        this.grantTimes.set(at, Math.max(this.grantTimes.get(at) ?? 0, r.value.grantedAt))
        this.sawTime(r.value.grantedAt)
        return 'fact'
      }
      case 'term': {
        const r = verifyDeviceTerm(this.account, bytes)
        if (!r.ok) return fail(r)
        if (termKey(r.value.deviceId) !== key) return false
        const current = this.terms.get(r.value.deviceId)
        if (current && current.issuedAt >= r.value.issuedAt) return false
        this.terms.set(r.value.deviceId, r.value)
        this.sawTime(r.value.issuedAt)
        return 'fact'
      }
      case 'epoch': {
        const r = verifyEpochStart(this.account, bytes)
        if (!r.ok) return fail(r)
        this.sawTime(r.value.startedAt)
        // A new start is a new key on owners, and may be the one a held envelope waits for.
        return this.keyring.addStart(r.value) ? 'key' : false
      }
      case 'pass': {
        const r = verifyRelayPass(this.account, bytes)
        if (!r.ok) return fail(r)
        const current = this.passes.get(r.value.deviceId)
        if (current && current.issuedAt >= r.value.issuedAt) return false
        this.passes.set(r.value.deviceId, { issuedAt: r.value.issuedAt, bytes })
        this.sawTime(r.value.issuedAt)
        return 'fact'
      }
      case 'lockbox': {
        // Owners derive every key, and a lockbox for another device is no business of this one:
        // skip its signature check (each rotation writes one per remaining member).
        if (this.keyring.derivesKeys || lockboxRecipient(bytes) !== this.device.deviceId) return false
        const r = verifyLockbox(this.account, bytes)
        if (!r.ok) return fail(r)
        if (r.value.recipient !== this.device.deviceId) return false
        const opened = openLockbox(r.value, this.device)
        if (!opened) return false
        return this.keyring.addKey(r.value.roomId, r.value.epoch, opened, r.value.salt) ? 'key' : false
      }
      default: {
        // A statement kind this build does not know: still verified (so forgeries are reported),
        // then ignored — a newer owner may write kinds older devices do not use.
        const r = verifyStatement(this.account, bytes)
        return r.ok ? false : fail(r)
      }
    }
  }
}

/** Whether a revocation's cutoff for a room keeps an envelope of the revoked device as history. */
function cutoffAccepts(cutoff: RevocationCutoff | undefined, seq: number, epoch: number): boolean {
  return cutoff !== undefined && epoch < cutoff.epoch && cutoff.seqs.has(seq)
}

/**
 * True when definition `a` is newer than `b`: later `definedAt`, ties broken by the statement
 * bytes (so every device picks the same one).
 */
function newerDefinition(a: ScopeDefinition, aBytes: Uint8Array, b: ScopeDefinition, bBytes: Uint8Array): boolean {
  if (a.definedAt !== b.definedAt) return a.definedAt > b.definedAt
  return toHex(aBytes) > toHex(bBytes)
}

/** A statement's identity for "verified once": its signature (the last 64 bytes). */
function signatureOf(bytes: Uint8Array): string {
  return toHex(bytes.subarray(Math.max(0, bytes.length - 64)))
}
