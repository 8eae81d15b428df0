/**
 * Expiry of memories (`expiresAt`): an expired item is hidden at read time everywhere at once,
 * and swept — deleted and compacted away, so its text leaves the sealed logs — on every device
 * that can write its scope, each on its own clock. Concurrent deletes and compactions are
 * harmless, so no device waits for another.
 *
 * @module
 */
import { deleteMemory } from '../crdt/memory.js'
import { EarliestTimer } from '../util/timers.js'
import type { ScopeReplicas } from './device-context.js'
import type { RecallIndex } from './recall-index.js'

/** Sweeps expired memories out of the scopes of one device. */
export class ExpirySweeper {
  private readonly timer = new EarliestTimer(() => void this.sweep(), { unref: true })
  private lastSweep = -Infinity
  private closed = false

  /** `index` knows every memory's expiry; `scopes` are the replicas to sweep. */
  constructor(
    private readonly index: RecallIndex,
    private readonly scopes: ScopeReplicas,
  ) {}

  /**
   * Arm the timer for `at` (an expired item arrived), or for the next expiry after the last
   * sweep (earlier ones were handled).
   */
  schedule(at?: number): void {
    if (this.closed) return
    const next = at ?? this.index.nextExpiry(this.lastSweep)
    if (next !== undefined) this.timer.arm(next)
  }

  /** Stop sweeping. */
  close(): void {
    this.closed = true
    this.timer.cancel()
  }

  /** Delete expired items in every writable scope and compact, so their text leaves the sealed logs. */
  private async sweep(): Promise<void> {
    if (this.closed) return
    const now = Date.now()
    this.lastSweep = now
    const byScope = new Map<string, string[]>()
    for (const meta of this.index.expired(now)) {
      let ids = byScope.get(meta.scope)
      if (!ids) byScope.set(meta.scope, (ids = []))
      ids.push(meta.id)
    }
    for (const [scope, ids] of byScope) {
      const replica = this.scopes.replicas().find((r) => r.scope === scope)
      // A scope this device cannot write keeps its expired items hidden at read time.
      if (!replica || !replica.writable) continue
      replica.inner.transact(() => {
        for (const id of ids) deleteMemory(replica.inner, id)
      })
      try {
        await replica.compactNow({ erasing: true })
      } catch {
        // A storage failure is reported through `storage-error`; a later sweep compacts again.
      }
      if (this.closed) return
    }
    this.schedule()
  }
}
