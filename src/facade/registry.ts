/**
 * The account registry as seen by one device: every verified statement about devices, scopes,
 * grants, epochs and keys (DESIGN §4). It is the {@link SenderDirectory} of every scope, feeds the
 * device's {@link DeviceKeyring} with room ids, epochs and lockbox keys, and — on owner devices —
 * writes new statements.
 *
 * Trust: every statement is verified against the account root on read; one that fails is ignored
 * and reported with its code. Private statements (in the registry scope's sealed inner doc) are
 * authoritative; the public copies next to the sealed log exist for the relay and for bootstrap
 * (lockboxes), and can only ever add verified facts, never remove one.
 *
 * @module
 */
import * as Y from 'yjs'
import {
  certificateKey,
  epochKey,
  grantKey,
  passKey,
  publicStatementsMap,
  revocationKey,
  scopeKey,
  statementsMap,
} from '../crdt/registry.js'
import {
  issueCertificate,
  issueLockbox,
  issueRelayPass,
  lockboxKey,
  lockboxRecipient,
  openLockbox,
  REGISTRY_SCOPE,
  signEpochStart,
  signGrant,
  signRevocation,
  signScopeDefinition,
  verifyCertificate,
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
  type Revocation,
  type ScopeDefinition,
} from '../crypto/index.js'
import type { RejectCode } from '../crypto/codes.js'
import type { Replica, SenderDirectory, SenderStatus } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import { fromHex, toHex } from '../util/bytes.js'
import { BUILTIN_SCOPES, DEFAULT_SCOPE_KINDS, isDeviceLocal } from './scopes.js'

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

/** Verified view of the registry, plus owner actions. */
export class Registry {
  /** Typed events. */
  readonly events = new Emitter<RegistryEvents>()
  private readonly certificates = new Map<string, DeviceCertificate>()
  private readonly revocations = new Map<string, Revocation>()
  private readonly definitions = new Map<string, ScopeDefinition>()
  private readonly grants = new Map<string, Set<string>>()
  private readonly passes = new Map<string, { issuedAt: number; bytes: Uint8Array }>()
  private readonly lastSeenAt = new Map<string, number>()
  /** Signatures of statements already applied (a statement is verified once). */
  private readonly ingested = new Set<string>()

  constructor(
    private readonly replica: Replica,
    private readonly account: AccountKeys,
    private readonly device: DeviceKeys,
    private readonly keyring: DeviceKeyring,
  ) {
    const statements = statementsMap(replica.inner)
    const publicStatements = publicStatementsMap(replica.outer)
    // Public first: lockboxes hold the keys that open the private part on member devices.
    this.ingest(publicStatements, [...publicStatements.keys()], 'public')
    this.ingest(statements, [...statements.keys()], 'private')
    publicStatements.observe((event: Y.YMapEvent<Uint8Array>) => this.ingest(publicStatements, [...event.keysChanged], 'public'))
    statements.observe((event: Y.YMapEvent<Uint8Array>) => this.ingest(statements, [...event.keysChanged], 'private'))
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

  /** The revocation of a device, if it was revoked. */
  revocation(deviceId: string): Revocation | undefined {
    return this.revocations.get(deviceId)
  }

  /** When this device last applied an envelope from `deviceId` (ms), if ever. */
  lastSeen(deviceId: string): number | undefined {
    return this.lastSeenAt.get(deviceId)
  }

  /** @internal called by replicas when they apply an envelope. */
  sawSender(deviceId: string): void {
    this.lastSeenAt.set(deviceId, Date.now())
  }

  /** A scope's definition: the verified statement, or the built-in default. */
  definition(scope: string): ScopeDefinition | undefined {
    const defined = this.definitions.get(scope)
    if (defined) return defined
    const kinds = DEFAULT_SCOPE_KINDS[scope as keyof typeof DEFAULT_SCOPE_KINDS]
    if (!kinds) return undefined
    if (!this.keyring.knowsRoom(scope) && !isDeviceLocal(scope)) return undefined
    return { name: scope, roomId: this.keyring.roomId(scope), kinds: [...kinds], retentionMs: 0, definedAt: 0 }
  }

  /** Every scope name known to this device (built-in and defined). */
  scopeNames(): string[] {
    return [...new Set([...BUILTIN_SCOPES, ...this.definitions.keys()])]
  }

  /** True when `deviceId` may hold `scope`: its kind is in the scope's policy, or it was granted it. */
  holds(deviceId: string, scope: string): boolean {
    const certificate = this.certificates.get(deviceId)
    if (!certificate || this.revocations.has(deviceId)) return false
    if (isDeviceLocal(scope)) return true
    const definition = this.definition(scope)
    if (!definition) return false
    return definition.kinds.includes(certificate.kind) || this.grants.get(scope)?.has(deviceId) === true
  }

  /** Scopes `deviceId` holds. */
  heldScopes(deviceId: string): string[] {
    return this.scopeNames().filter((scope) => this.holds(deviceId, scope))
  }

  /** The newest relay pass issued for a device. */
  relayPass(deviceId: string): Uint8Array | undefined {
    return this.passes.get(deviceId)?.bytes
  }

  /** The {@link SenderDirectory} of one scope's room. */
  directoryFor(scope: string, roomId: string): SenderDirectory {
    return {
      resolve: (senderId: string, seq: number, epoch: number): SenderStatus => {
        const certificate = this.certificates.get(senderId)
        if (!certificate) return { status: 'unknown' }
        const revocation = this.revocations.get(senderId)
        if (revocation) {
          const cutoff = revocation.cutoffs.get(roomId)
          if (!cutoff || epoch >= cutoff.epoch || (cutoff.maxSeq > 0 && seq > cutoff.maxSeq)) return { status: 'revoked' }
        }
        const granted =
          certificate.role === 'owner' ||
          isDeviceLocal(scope) ||
          this.definition(scope)?.kinds.includes(certificate.kind) === true ||
          this.grants.get(scope)?.has(senderId) === true
        if (!granted) return { status: 'not-granted', signPublicKey: certificate.signPublicKey }
        return { status: 'known', signPublicKey: certificate.signPublicKey }
      },
    }
  }

  // ── owner actions ──────────────────────────────────────────────────────────

  /**
   * Publish this (owner) device's certificate and pass, and the built-in scope definitions,
   * unless they are already there.
   */
  async enrolOwner(info: { kind: string; name: string }): Promise<void> {
    const writes: Array<[string, Uint8Array]> = []
    if (!this.certificates.has(this.device.deviceId)) {
      writes.push([certificateKey(this.device.deviceId), issueCertificate(this.account, this.device, { ...info, role: 'owner' })])
    }
    for (const scope of BUILTIN_SCOPES) {
      if (isDeviceLocal(scope) || this.definitions.has(scope)) continue
      const definition = this.definition(scope)!
      writes.push([scopeKey(scope), signScopeDefinition(this.account, { ...definition, definedAt: Date.now() })])
    }
    const pass = this.passes.get(this.device.deviceId)
    if (!pass) writes.push([passKey(this.device.deviceId), issueRelayPass(this.account, this.device, { rooms: 'all' })])
    await this.write(writes, writes.filter(([key]) => key.startsWith('pass/')))
  }

  /**
   * Admit a paired device: certificate, grants for `scopes`, lockboxes for every epoch of every
   * scope it holds (and of the registry), and its relay pass.
   */
  async admit(device: AdmittedDevice, info: { kind: string; name: string }, scopes: string[]): Promise<Uint8Array> {
    const certificate = issueCertificate(this.account, device, { ...info, role: 'member' })
    const priv: Array<[string, Uint8Array]> = [[certificateKey(device.deviceId), certificate]]
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

  /** Grant one scope to one device (owner only) and hand it the keys. */
  async grant(scope: string, deviceId: string): Promise<void> {
    await this.write([[grantKey(scope, deviceId), signGrant(this.account, { scope, deviceId, grantedAt: Date.now() })]], [])
    const certificate = this.certificates.get(deviceId)
    if (certificate) await this.refreshKeysFor(deviceId, certificate.boxPublicKey)
  }

  /** Define or redefine a scope (owner only); members of the named kinds and devices get keys. */
  async define(name: string, policy: { kinds: string[]; devices: string[]; retentionMs: number }): Promise<void> {
    const roomId = this.keyring.roomId(name)
    const writes: Array<[string, Uint8Array]> = [
      [scopeKey(name), signScopeDefinition(this.account, { name, roomId, kinds: policy.kinds, retentionMs: policy.retentionMs, definedAt: Date.now() })],
    ]
    for (const deviceId of policy.devices) {
      writes.push([grantKey(name, deviceId), signGrant(this.account, { scope: name, deviceId, grantedAt: Date.now() })])
    }
    await this.write(writes, [])
    for (const certificate of this.certificates.values()) {
      if (certificate.role === 'member' && this.holds(certificate.deviceId, name)) {
        await this.refreshKeysFor(certificate.deviceId, certificate.boxPublicKey)
      }
    }
  }

  /**
   * Revoke a device (owner only): a signed revocation (with, per room, the last seq of its that
   * stays valid), and a new key epoch for every room it could read, sealed to the devices that
   * remain. Returns the scopes whose epoch moved, so the caller can re-seal them by compaction.
   */
  async revoke(deviceId: string, appliedSeqs: (roomId: string) => number): Promise<string[]> {
    const certificate = this.certificates.get(deviceId)
    const affected = certificate
      ? [REGISTRY_SCOPE, ...this.scopeNames().filter((s) => !isDeviceLocal(s) && this.holds(deviceId, s))]
      : []
    const cutoffs = new Map<string, { epoch: number; maxSeq: number }>()
    const epochWrites: Array<[string, Uint8Array]> = []
    const lockboxes: Array<[string, Uint8Array]> = []
    const remaining = this.members().filter((m) => m.deviceId !== deviceId)
    for (const scope of affected) {
      const roomId = this.keyring.roomId(scope)
      const epoch = this.keyring.currentEpoch(scope) + 1
      cutoffs.set(roomId, { epoch, maxSeq: appliedSeqs(roomId) })
      epochWrites.push([epochKey(roomId, epoch), signEpochStart(this.account, { roomId, epoch, startedAt: Date.now() })])
      for (const member of remaining) {
        if (scope === REGISTRY_SCOPE || this.holds(member.deviceId, scope)) {
          const key = this.keyring.epochKey(scope, epoch)!
          lockboxes.push([lockboxKey(roomId, epoch, member.deviceId), issueLockbox(this.account, member, roomId, epoch, key)])
        }
      }
    }
    const revocation = signRevocation(this.account, { deviceId, revokedAt: Date.now(), cutoffs })
    const statements: Array<[string, Uint8Array]> = [[revocationKey(deviceId), revocation], ...epochWrites]
    // Public copies for the relay; lockboxes land in the same transaction as the new epochs, so
    // no remaining device learns of an epoch without its key.
    await this.write(statements, [...lockboxes, ...statements])
    return affected.filter((s) => s !== REGISTRY_SCOPE)
  }

  /** Members (non-owner, not revoked) with their certificates. */
  private members(): DeviceCertificate[] {
    return [...this.certificates.values()].filter((c) => c.role === 'member' && !this.revocations.has(c.deviceId))
  }

  /**
   * Seal every epoch key of every room `deviceId` holds (and of the registry) to it, and issue a
   * relay pass covering those rooms.
   */
  private async refreshKeysFor(deviceId: string, boxPublicKey: Uint8Array): Promise<void> {
    const publicWrites: Array<[string, Uint8Array]> = []
    const existing = publicStatementsMap(this.replica.outer)
    const rooms: string[] = []
    for (const scope of [REGISTRY_SCOPE, ...this.heldScopes(deviceId).filter((s) => !isDeviceLocal(s))]) {
      const roomId = this.keyring.roomId(scope)
      rooms.push(roomId)
      for (let epoch = 0; epoch <= this.keyring.currentEpoch(scope); epoch++) {
        const key = lockboxKey(roomId, epoch, deviceId)
        if (existing.has(key)) continue
        publicWrites.push([key, issueLockbox(this.account, { deviceId, boxPublicKey }, roomId, epoch, this.keyring.epochKey(scope, epoch)!)])
      }
    }
    const certificate = this.certificates.get(deviceId)
    if (certificate) {
      const pass = issueRelayPass(
        this.account,
        { deviceIdBytes: fromHex(deviceId)!, signPublicKey: certificate.signPublicKey },
        { rooms, issuedAt: Math.max(Date.now(), (this.passes.get(deviceId)?.issuedAt ?? 0) + 1) },
      )
      publicWrites.push([passKey(deviceId), pass])
    }
    await this.write(publicWrites.filter(([k]) => k.startsWith('pass/')), publicWrites)
  }

  /** Write statements: `priv` into the sealed registry, `pub` into the public map; wait until stored. */
  private async write(priv: Array<[string, Uint8Array]>, pub: Array<[string, Uint8Array]>): Promise<void> {
    if (!this.isOwner) throw new Error('only owner devices write registry statements')
    if (pub.length > 0) {
      const map = publicStatementsMap(this.replica.outer)
      Y.transact(this.replica.outer, () => {
        for (const [key, value] of pub) map.set(key, value)
      })
    }
    if (priv.length > 0) {
      const map = statementsMap(this.replica.inner)
      this.replica.inner.transact(() => {
        for (const [key, value] of priv) map.set(key, value)
      })
    }
    await this.replica.whenFlushed()
  }

  // ── ingest ─────────────────────────────────────────────────────────────────

  private ingest(map: Y.Map<Uint8Array>, keys: string[], where: 'public' | 'private'): void {
    const changed: string[] = []
    let keysAdded = false
    for (const key of keys) {
      const bytes = map.get(key)
      if (!(bytes instanceof Uint8Array)) continue
      const kind = key.slice(0, key.indexOf('/'))
      // The public map only carries what the relay or a bootstrapping member needs.
      if (where === 'public' && !['lockbox', 'revoke', 'epoch', 'pass'].includes(kind)) continue
      const accepted = this.ingestOne(kind, key, bytes)
      if (accepted === 'key') keysAdded = true
      if (accepted) changed.push(key)
    }
    if (keysAdded) this.replica.retryHeld()
    if (changed.length > 0) this.events.emit('change', { keys: changed })
  }

  /** Verify and record one statement; returns what it changed (or false). */
  private ingestOne(kind: string, key: string, bytes: Uint8Array): false | 'fact' | 'key' {
    // Revocations, epochs and passes come twice (private and public copy): verify each once.
    const signature = toHex(bytes.subarray(Math.max(0, bytes.length - 64)))
    if (this.ingested.has(signature)) return false
    const result = this.ingestVerified(kind, key, bytes)
    if (result !== false) this.ingested.add(signature)
    return result
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
        if (this.revocations.has(r.value.deviceId)) return false
        this.revocations.set(r.value.deviceId, r.value)
        return 'fact'
      }
      case 'scope': {
        const r = verifyScopeDefinition(this.account, bytes)
        if (!r.ok) return fail(r)
        const current = this.definitions.get(r.value.name)
        if (current && current.definedAt > r.value.definedAt) return false
        this.definitions.set(r.value.name, r.value)
        this.keyring.setRoom(r.value.name, r.value.roomId)
        return 'fact'
      }
      case 'grant': {
        const r = verifyGrant(this.account, bytes)
        if (!r.ok) return fail(r)
        let set = this.grants.get(r.value.scope)
        if (!set) this.grants.set(r.value.scope, (set = new Set()))
        set.add(r.value.deviceId)
        return 'fact'
      }
      case 'epoch': {
        const r = verifyEpochStart(this.account, bytes)
        if (!r.ok) return fail(r)
        return this.keyring.setEpoch(r.value.roomId, r.value.epoch) ? 'fact' : false
      }
      case 'pass': {
        const r = verifyRelayPass(this.account, bytes)
        if (!r.ok) return fail(r)
        const current = this.passes.get(r.value.deviceId)
        if (current && current.issuedAt >= r.value.issuedAt) return false
        this.passes.set(r.value.deviceId, { issuedAt: r.value.issuedAt, bytes })
        return 'fact'
      }
      case 'lockbox': {
        // Owners derive every key, and a lockbox for another device is no business of this one:
        // skip its signature check (each rotation writes one per remaining member).
        if (this.keyring.derivesKeys || lockboxRecipient(bytes) !== this.device.deviceId) return false
        const r = verifyLockbox(this.account, bytes)
        if (!r.ok) return fail(r)
        if (r.value.recipient !== this.device.deviceId || this.keyring.derivesKeys) return false
        const opened = openLockbox(r.value, this.device)
        if (!opened) return false
        return this.keyring.addKey(r.value.roomId, r.value.epoch, opened) ? 'key' : false
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
