/**
 * Noticing a withholding relay (WIRE.md "Presence and seq announcements"). A relay cannot read or
 * forge envelopes, but it can simply not forward some. So every device announces, in sealed
 * presence on each scope's awareness, the latest seq it has sealed into that scope's log
 * (`logSeq`); a device that has not applied a peer's announced seq within `lagTimeoutMs` reports
 * the scope as lagging behind that peer. So does a scope whose inner doc keeps updates it cannot
 * integrate (Yjs "pending": an earlier update is missing) for that long — a relay dropping an
 * envelope in the middle and passing later ones.
 *
 * The personal scope's announcement rides in the ordinary presence envelope (`PresenceApi`);
 * every other scope this device writes to gets a presence envelope carrying only `logSeq`,
 * sealed under that scope's key — so a device without the scope (the car, for health) learns
 * nothing about it; owners announce their registry seqs the same way, so a relay withholding
 * registry statements (revocations, epochs) from a member is noticed too. An announced seq counts
 * as arrived when this device applied it, when the sender's own snapshot covers it, or when the
 * inner doc reaches the announced *tip* (where the sender's latest update ends): a seq compacted
 * away by someone else's snapshot is then not reported missing, yet no snapshot's claim about
 * another sender can hide a withheld envelope. The device-local scope is not monitored.
 *
 * Limits: a relay that drops a scope's announcements together with its envelopes is not noticed
 * (the writer still shows online through personal presence); a catch-up slower than the timeout,
 * or envelopes held for a missing key or grant, are reported too (the device *is* behind).
 *
 * @module
 */
import { RejectCode } from '../crypto/codes.js'
import { LOCAL_SCOPE, REGISTRY_SCOPE } from '../crypto/keyring.js'
import { openPresence, PresenceSeqs } from '../sync/presence.js'
import type { Replica } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import { unref } from '../util/timers.js'
import type { DeviceContext, DeviceIdentity } from './device-context.js'
import { PRESENCE_SCOPE } from './presence.js'
import { presenceKeys, PresencePublisher, Throttle } from './presence-state.js'

/** How far this device is behind one peer in one scope, by what the peer announced. */
export interface SyncPeerStatus {
  scope: string
  deviceId: string
  /** The latest seq the peer says it sealed into the scope's log. */
  announcedSeq: number
  /** True once that seq (or a snapshot covering it) has been applied here. */
  caughtUp: boolean
  /** Local time (ms) since when the announced seq has been missing, while not caught up. */
  behindSince?: number
}

/**
 * A peer's announced seq stayed missing for longer than `lagTimeoutMs` (`behind`) — the relay
 * may be withholding envelopes, or the peer's upload is still under way — or it arrived after
 * such a report (`caught-up`).
 */
export interface SyncLagEvent {
  state: 'behind' | 'caught-up'
  scope: string
  deviceId: string
  announcedSeq: number
  /** How long it has been missing (ms); 0 for `caught-up`. */
  behindForMs: number
}

/** Events of {@link SyncMonitor}. */
export interface SyncMonitorEvents {
  lag: (event: SyncLagEvent) => void
}

/** Tuning of {@link SyncMonitor}. */
export interface SyncMonitorOptions {
  /** How long an announced seq may stay missing before `behind` is reported. Default 30 000 ms. */
  lagTimeoutMs?: number
  /** How often this device re-seals its announcements. Default 14 000 ms (as presence). */
  heartbeatMs?: number
  /** Smallest gap between two announcements after local writes. Default 1 000 ms. */
  announceDelayMs?: number
}

interface Announced {
  seq: number
  /** Where the sender's latest sealed update ends in the inner doc, when announced. */
  tip?: { client: number; clock: number }
  /** When (monotonic ms) this announcement arrived. */
  since: number
  /** A `behind` was emitted and no `caught-up` yet. */
  reported: boolean
}

/** Monotonic ms: elapsed times must not jump with the wall clock (a car syncing NTP). */
const monotonic = (): number => performance.now()

/** Tracks what peers announce and publishes this device's own seqs. */
export class SyncMonitor {
  private readonly emitter = new Emitter<SyncMonitorEvents>()
  /** scope → peer device id → latest announcement. */
  private readonly announced = new Map<string, Map<string, Announced>>()
  private readonly beacons = new Map<string, Beacon>()
  /** scope → since when (monotonic ms) its inner doc has held pending updates. */
  private readonly pendingSince = new Map<string, number>()
  private readonly lagTimeoutMs: number
  private readonly heartbeatMs: number
  private readonly announceDelayMs: number
  private readonly checker: ReturnType<typeof setInterval>
  private closed = false


  constructor(private readonly context: DeviceContext, options: SyncMonitorOptions = {}) {
    this.lagTimeoutMs = options.lagTimeoutMs ?? 30_000
    this.heartbeatMs = options.heartbeatMs ?? 14_000
    this.announceDelayMs = options.announceDelayMs ?? 1_000
    context.eachReplica((replica) => this.attach(replica))
    const registry = context.allReplicas().find((r) => r.scope === REGISTRY_SCOPE)
    if (registry) this.attach(registry)
    this.checker = setInterval(() => this.check(), Math.max(50, Math.min(1_000, this.lagTimeoutMs / 4)))
    unref(this.checker)
  }

  /** Record a peer's verified announcement of its latest seq (and tip) in `scope`. */
  announce(scope: string, deviceId: string, logSeq: number, tip?: { client: number; clock: number }): void {
    if (this.closed || logSeq <= 0 || deviceId === this.context.deviceId) return
    let peers = this.announced.get(scope)
    if (!peers) this.announced.set(scope, (peers = new Map()))
    const previous = peers.get(deviceId)
    if (previous && previous.seq >= logSeq) return
    // A newer announcement while still behind keeps the original `since`: the lag goes on.
    const stillBehind = previous !== undefined && !this.arrived(scope, deviceId, previous)
    if (previous?.reported && !stillBehind) {
      // The reported seq arrived before the next check: say so before tracking the new one.
      this.emitter.emit('lag', { state: 'caught-up', scope, deviceId, announcedSeq: previous.seq, behindForMs: 0 })
    }
    const next: Announced = { seq: logSeq, since: stillBehind ? previous.since : monotonic(), reported: stillBehind && previous.reported }
    if (tip) next.tip = tip
    peers.set(deviceId, next)
  }

  /** Every peer's announced progress in every monitored scope this device holds. */
  status(): SyncPeerStatus[] {
    const out: SyncPeerStatus[] = []
    for (const [scope, peers] of this.announced) {
      if (!this.monitored().some((r) => r.scope === scope)) continue
      for (const [deviceId, a] of peers) {
        if (this.context.registry.revocation(deviceId)) continue
        const since = this.behindSince(scope, deviceId, a)
        const entry: SyncPeerStatus = { scope, deviceId, announcedSeq: a.seq, caughtUp: since === undefined }
        // Reported in wall-clock ms, converted from the monotonic clock at this moment.
        if (since !== undefined) entry.behindSince = Date.now() - (monotonic() - since)
        out.push(entry)
      }
    }
    return out
  }

  /** Stop monitoring a scope this device no longer holds (its replica is being closed). */
  detach(scope: string): void {
    this.beacons.get(scope)?.close()
    this.beacons.delete(scope)
    this.announced.delete(scope)
    this.pendingSince.delete(scope)
  }

  /** Subscribe; returns an unsubscribe function. */
  on<E extends keyof SyncMonitorEvents>(event: E, listener: SyncMonitorEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /** Stop announcing (withdraws this device's beacons) and checking. */
  close(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.checker)
    for (const beacon of this.beacons.values()) beacon.close()
    this.beacons.clear()
    this.emitter.clear()
  }

  /** The scope replicas and the registry's. */
  private monitored(): Replica[] {
    return this.context.allReplicas()
  }

  private replicaOf(scope: string): Replica | undefined {
    return this.monitored().find((r) => r.scope === scope)
  }

  /** The announced seq, or the content it ends with, is here. */
  private arrived(scope: string, deviceId: string, a: Announced): boolean {
    const replica = this.replicaOf(scope)
    if (!replica) return false
    if (replica.hasApplied(deviceId, a.seq)) return true
    return a.tip !== undefined && replica.holdsContent(a.tip.client, a.tip.clock)
  }

  /** Since when (monotonic ms) this device is behind `deviceId` in `scope`; `undefined` when it is not. */
  private behindSince(scope: string, deviceId: string, a: Announced): number | undefined {
    if (!this.arrived(scope, deviceId, a)) return a.since
    return this.pendingSince.get(scope)
  }

  private check(): void {
    if (this.closed) return
    const now = monotonic()
    for (const replica of this.monitored()) {
      if (!replica.hasPendingUpdates()) this.pendingSince.delete(replica.scope)
      else if (!this.pendingSince.has(replica.scope)) this.pendingSince.set(replica.scope, now)
    }
    for (const [scope, peers] of this.announced) {
      for (const [deviceId, a] of peers) {
        if (this.context.registry.revocation(deviceId)) {
          peers.delete(deviceId)
          continue
        }
        const since = this.behindSince(scope, deviceId, a)
        if (since === undefined && a.reported) {
          a.reported = false
          this.emitter.emit('lag', { state: 'caught-up', scope, deviceId, announcedSeq: a.seq, behindForMs: 0 })
        } else if (since !== undefined && !a.reported && now - since >= this.lagTimeoutMs) {
          a.reported = true
          this.emitter.emit('lag', { state: 'behind', scope, deviceId, announcedSeq: a.seq, behindForMs: Math.round(now - since) })
        }
      }
    }
  }

  private attach(replica: Replica): void {
    const scope = replica.scope
    // Presence carries the personal scope's seq; the local scope is not monitored.
    if (this.closed || scope === PRESENCE_SCOPE || scope === LOCAL_SCOPE || this.beacons.has(scope)) return
    this.beacons.set(scope, new Beacon(replica, this.context, this, { heartbeatMs: this.heartbeatMs, announceDelayMs: this.announceDelayMs }))
  }
}

/** This device's announcements on one scope's awareness, and the peers' it reads there. */
class Beacon {
  private readonly seqs = new PresenceSeqs()
  /** Last refused state per awareness client (each renewal of the same bad state counts once). */
  private readonly refused = new Map<number, string>()
  private readonly publisher: PresencePublisher
  private readonly announce: Throttle
  private lastLogSeq = 0
  private readonly heartbeat: ReturnType<typeof setInterval>
  private readonly offSealed: () => void
  private readonly onAwareness: (change: { added: number[]; updated: number[]; removed: number[] }) => void
  private closed = false

  constructor(
    private readonly replica: Replica,
    private readonly identity: DeviceIdentity,
    private readonly monitor: SyncMonitor,
    options: { heartbeatMs: number; announceDelayMs: number },
  ) {
    const awareness = replica.awareness
    const publisher = (this.publisher = new PresencePublisher(identity, replica))
    this.announce = new Throttle(options.announceDelayMs, () => publisher.publishedAt, () => this.publish())
    this.onAwareness = ({ added, updated, removed }) => {
      for (const client of [...added, ...updated]) {
        if (client !== awareness.clientID) this.ingest(client, awareness.getStates().get(client))
      }
      for (const client of removed) this.refused.delete(client)
    }
    awareness.on('update', this.onAwareness)
    for (const [client, state] of awareness.getStates()) if (client !== awareness.clientID) this.ingest(client, state)
    this.offSealed = replica.events.on('sealed', () => this.announce.schedule())
    this.heartbeat = setInterval(() => this.publish(), options.heartbeatMs)
    unref(this.heartbeat)
    this.publish()
  }

  close(): void {
    if (this.closed) return
    this.closed = true
    clearInterval(this.heartbeat)
    this.announce.cancel()
    this.offSealed()
    this.replica.awareness.off('update', this.onAwareness)
    // Withdraw while transports are still attached (ContextSync closes this before replicas).
    if (this.lastLogSeq > 0) this.replica.awareness.setLocalState(null)
  }

  private publish(): void {
    if (this.closed) return
    const logSeq = this.replica.latestOwnSeq()
    // A device that never wrote here has nothing to announce (and stays invisible in this room).
    if (logSeq === 0) return
    const tip = this.replica.latestOwnTip()
    if (this.publisher.publish({ logSeq, ...(tip.clock > 0 && { tip }) })) this.lastLogSeq = logSeq
  }

  private ingest(client: number, state: unknown): void {
    if (this.closed || state === null || state === undefined) return
    const opened = openPresence(state, presenceKeys(this.identity, this.replica))
    // Unknown sender or epoch: the state is renewed every ~15 s, so it is simply read again later.
    if (!opened.ok && 'held' in opened) return
    const verdict = opened.ok ? this.seqs.check(opened.value) : undefined
    // An older announcement is a late copy (a relay keeps old awareness clients for a while).
    if (verdict === 'stale') return
    if (!opened.ok || verdict === 'replay') {
      const signature = JSON.stringify(state) ?? ''
      if (this.refused.get(client) === signature) return
      this.refused.set(client, signature)
      const code = opened.ok ? RejectCode.Replay : opened.code
      const reason = opened.ok ? 'announcement seq is not newer than the last one' : opened.reason
      this.identity.reportRejection({
        code,
        reason: `sync announcement: ${reason}`,
        scope: this.replica.scope,
        roomId: this.replica.roomId,
        source: 'presence',
        ...(opened.ok && { senderId: opened.value.senderId }),
      })
      return
    }
    this.refused.delete(client)
    const { senderId, payload } = opened.value
    if (payload.logSeq !== undefined) this.monitor.announce(this.replica.scope, senderId, payload.logSeq, payload.tip)
  }
}
