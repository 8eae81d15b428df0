/**
 * The verified state of the account registry on one device (WIRE.md "Signed statements", "Keys
 * and epochs"): every statement read from the registry room, checked against the account root,
 * and what the device asks of it — who holds which scope and until when, the newest relay pass of
 * each device, how a sender of a room resolves. {@link Registry} builds on it with the owner's
 * actions and key upkeep; this part only reads and verifies.
 *
 * Trust: a statement that fails verification is ignored and reported with its code. Private
 * statements (in the registry scope's sealed inner doc) are authoritative; public copies can only
 * add verified facts, never remove one.
 *
 * @module
 */
import type * as Y from 'yjs'
import { certificateKey, defaultScopeKey, grantKey, scopeKey, statementsMap, termKey } from '../crdt/registry.js'
import {
  lockboxRecipient,
  openLockbox,
  REGISTRY_SCOPE,
  verifyCertificate,
  verifyDeviceTerm,
  verifyEndCutoff,
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
  type Revocation,
  type RevocationCutoff,
  type ScopeDefinition,
} from '../crypto/index.js'
import type { RejectCode } from '../crypto/codes.js'
import type { Replica, SenderDirectory, SenderStatus } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import { bytesEqual, toHex } from '../util/bytes.js'
import { BUILTIN_SCOPES, DEFAULT_SCOPE_KINDS, isDeviceLocal } from './builtin-scopes.js'
import { EndCutoffs } from './end-cutoffs.js'

/** Events of a {@link Registry}. */
export interface RegistryEvents {
  /** Something the registry knows changed (certificates, grants, epochs, keys, revocations). */
  change: (event: { keys: string[] }) => void
  /** A statement failed verification and is ignored. */
  rejected: (event: { code: RejectCode; reason: string; key: string }) => void
}

/**
 * Verified statements of the registry and the queries on them. Statements come in through
 * {@link ingest}, which {@link Registry} wires to the registry maps.
 */
export abstract class RegistryState {
  /** Typed events. */
  readonly events = new Emitter<RegistryEvents>()
  protected readonly certificates = new Map<string, DeviceCertificate>()
  /** Every verified revocation of a device: owners revoking concurrently each state their cutoffs. */
  protected readonly revocations = new Map<string, Revocation[]>()
  /** Owners' scope definitions (`scope/<name>`). */
  protected readonly definitions = new Map<string, ScopeDefinition>()
  /** Built-in defaults as owners wrote them (`scope/<name>/default`). */
  protected readonly defaults = new Map<string, ScopeDefinition>()
  /** The statement bytes of each definition in force, by key (`scope/<name>` or its default). */
  protected readonly definitionBytes = new Map<string, Uint8Array>()
  protected readonly grants = new Map<string, Set<string>>()
  /** When each grant was issued (`<scope>/<deviceId>` → ms): a grant newer than a start undoes its exclusion. */
  protected readonly grantTimes = new Map<string, number>()
  /** Signature of the grant statement under each grant key, to forget it when it is withdrawn. */
  protected readonly grantSignatures = new Map<string, string>()
  /** End of each temporary grant (`<scope>/<deviceId>` → ms), as its newest grant states it. */
  protected readonly grantEnds = new Map<string, number>()
  /** Each member's term (when its membership ends), the newest by `issuedAt`. */
  protected readonly terms = new Map<string, DeviceTerm>()
  /**
   * The latest time a verified statement states (ms). Ends are judged by the later of it and this
   * device's clock, so a device whose clock is behind (a head unit) still sees its end pass once
   * it hears of anything an owner did after it.
   */
  private signedClock = 0
  private endTimer: ReturnType<typeof setTimeout> | undefined
  protected readonly passes = new Map<string, { issuedAt: number; bytes: Uint8Array }>()
  /** Owners' end cutoffs: what of a member whose temporary access ended stays valid, per room. */
  protected readonly endCutoffs = new EndCutoffs()
  protected readonly lastSeenAt = new Map<string, number>()
  /** Signatures of statements already applied (a statement is verified once). */
  protected readonly ingested = new Set<string>()
  /** Public statements verified here, kept with the registry checkpoint (kept-statements.ts). */
  protected readonly kept = new Map<string, Uint8Array>()
  protected readonly epochGraceMs: number
  protected closed = false

  constructor(
    protected readonly replica: Replica,
    protected readonly account: AccountKeys,
    protected readonly device: DeviceKeys,
    protected readonly keyring: DeviceKeyring,
    epochGraceMs: number,
  ) {
    this.epochGraceMs = epochGraceMs
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
  protected hasGrant(scope: string, deviceId: string): boolean {
    if (this.grants.get(scope)?.has(deviceId) !== true) return false
    const end = this.grantEnds.get(`${scope}/${deviceId}`)
    return end === undefined || end > this.now()
  }

  /** True when the device's temporary grant of `scope` has ended. */
  protected grantEnded(scope: string, deviceId: string): boolean {
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
        // Sealed with a key it kept past its end: only what an owner had applied by then counts.
        if (certificate.role === 'member' && this.endCutoffs.refuses(roomId, senderId, seq, epoch)) return { status: 'ended' }
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

  /** Stop the end timer (the device is closing). */
  close(): void {
    this.closed = true
    if (this.endTimer) clearTimeout(this.endTimer)
  }

  /**
   * Wake at the next end of a term or temporary grant still ahead: nothing else changes in the
   * registry when one passes, yet owners must rotate then and the device itself must purge.
   */
  protected scheduleEnd(): void {
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

  // ── ingest ─────────────────────────────────────────────────────────────────

  protected ingest(map: Y.Map<Uint8Array>, keys: string[], where: 'public' | 'private'): void {
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
      case 'endcut': {
        const r = verifyEndCutoff(this.account, bytes)
        if (!r.ok) return fail(r)
        return this.endCutoffs.add(key, r.value) ? 'fact' : false
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