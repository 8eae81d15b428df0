/**
 * What presence (`PresenceApi`, personal scope) and seq announcements (`SyncMonitor`, every other
 * scope) share: sealing this device's state into a scope's awareness, the keys to open the states
 * of others, and announcing soon after local writes without sealing once per write.
 *
 * @module
 */
import { nextPresenceSeq, sealPresence, type PresenceKeys, type PresencePayload } from '../sync/presence.js'
import type { Replica } from '../sync/replica.js'
import { unref } from '../util/timers.js'
import type { DeviceIdentity } from './identity.js'

/** The sender and key lookups that open presence states in `replica`'s room. */
export function presenceKeys(identity: DeviceIdentity, replica: Replica): PresenceKeys {
  return {
    roomId: replica.roomId,
    sender: (senderId) => {
      if (identity.registry.revocation(senderId)) return { status: 'revoked' }
      const certificate = identity.registry.certificate(senderId)
      return certificate ? { status: 'known', signPublicKey: certificate.signPublicKey } : { status: 'unknown' }
    },
    epochKeys: (epoch) => identity.keyring.openingKeys(replica.scope, epoch),
  }
}

/** Seals this device's presence states in one room, each with a fresh presence seq. */
export class PresencePublisher {
  private seq = 0
  /** Epoch of the last published state (a new epoch means: publish again under its key). */
  epoch: number | undefined
  /** Local time of the last publication (ms). */
  publishedAt = 0

  constructor(
    private readonly identity: DeviceIdentity,
    private readonly replica: Replica,
  ) {}

  /**
   * Seal `payload` under the scope's sealing key (its current, canonical, safe epoch — the one
   * envelopes are sealed under) as this device's awareness state; false while there is none.
   */
  publish(payload: Omit<PresencePayload, 'at'>): boolean {
    const sealing = this.identity.keyring.sealingKey(this.replica.scope)
    if (!sealing) return false
    const { epoch, key } = sealing
    const now = Date.now()
    this.seq = nextPresenceSeq(this.seq, now)
    this.epoch = epoch
    this.publishedAt = now
    this.replica.awareness.setLocalState(
      sealPresence({
        roomId: this.replica.roomId,
        epoch,
        key,
        sender: this.identity.device.deviceIdBytes,
        signSecretKey: this.identity.device.signSecretKey,
        seq: this.seq,
        payload: { at: now, ...payload },
      }),
    )
    return true
  }
}

/** Runs `task` soon after `schedule()`, but at most once per `minGapMs` since `lastRun()`. */
export class Throttle {
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly minGapMs: number,
    private readonly lastRun: () => number,
    private readonly task: () => void,
  ) {}

  schedule(): void {
    if (this.timer) return
    const wait = Math.max(0, this.lastRun() + this.minGapMs - Date.now())
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.task()
    }, wait)
    unref(this.timer)
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
  }
}
