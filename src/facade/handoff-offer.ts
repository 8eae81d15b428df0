/**
 * {@link HandoffOffer}: a handoff of a session this device offered to another.
 *
 * @module
 */
import { offerMap, sessionMap, type HandoffInfo, type HandoffStatus } from '../crdt/sessions.js'
import { NotFoundError } from '../errors.js'
import type { Replica } from '../sync/replica.js'
import type { SessionsHost } from './session-api-types.js'

/** A handoff offer made by this device. */
export class HandoffOffer {
  /** @internal */
  constructor(
    /** The offer id. */
    readonly id: string,
    /** The session offered. */
    readonly sessionId: string,
    private readonly replica: Replica,
    private readonly api: SessionsHost,
  ) {}

  /** The offer as it stands now (by this device's view). */
  info(): HandoffInfo {
    const info = this.api.offersOf(this.replica, this.sessionId).find((o) => o.id === this.id)
    if (!info) throw new NotFoundError(`handoff offer '${this.id}' no longer exists on this device`)
    return info
  }

  /** Its status now. */
  status(): HandoffStatus {
    return this.info().status
  }

  /** Resolves once it was accepted, declined, cancelled or expired. Rejects with `ClosedError` on close. */
  settled(): Promise<HandoffInfo> {
    return this.api.settled(this.replica, this.sessionId, this.id)
  }

  /** Withdraw the offer (no effect once it was answered). */
  async cancel(): Promise<void> {
    this.api.scopes.assertOpen()
    const map = sessionMap(this.replica.inner, this.sessionId)
    const offer = map && offerMap(map, this.id)
    if (!offer || this.status() !== 'pending') return
    this.replica.inner.transact(() => offer.set('cancelledAt', Date.now()))
    await this.replica.whenFlushed()
  }
}
