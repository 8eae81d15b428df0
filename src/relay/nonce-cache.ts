/**
 * The relay's replay cache for access tokens (README.md "The relay"; THREAT_MODEL.md, the relay).
 *
 * Tokens are single-use: the relay remembers each admitted token's nonce for as long as the token
 * could still verify (its expiry plus the tolerated clock skew), then forgets it. The cache never
 * refuses a token because it holds many nonces — a full cache that refuses everyone would lock
 * every account out — and forgetting costs no scan: nonces sit in buckets by the second their
 * expiry falls in, and a whole bucket is dropped once its time has passed, so each nonce is
 * touched once when stored and once when forgotten.
 *
 * Its size is bounded by the lifetime window, not by a count: at most (tokens admitted per second)
 * × (longest accepted lifetime + skew) nonces, which is why the relay caps the accepted token
 * lifetime (`tokenAuth`'s `maxLifetimeSeconds`, 10 minutes by default). Admitting a token costs
 * its signature checks, so the rate is bounded by the relay's CPU.
 *
 * @module
 */

/** Options of {@link NonceCache}. */
export interface NonceCacheOptions {
  /** Clock in ms (tests). */
  now?: () => number
  /** Width of an expiry bucket in ms; default 1 000. */
  bucketMs?: number
  /**
   * Called with every newly claimed nonce, so the relay can keep it in its store and a token
   * spent before a restart stays spent after it ({@link NonceCache.restore}).
   */
  onClaim?: (nonce: string, keepUntil: number) => void
}

/** Remembers token nonces until their expiry so each token works once. */
export class NonceCache {
  /** nonce → the time (ms) it may be forgotten. */
  private readonly seen = new Map<string, number>()
  /** bucket index → nonces whose keep-until falls in it. */
  private readonly buckets = new Map<number, string[]>()
  /** Every bucket below this index has been dropped. */
  private oldest: number
  private readonly now: () => number
  private readonly bucketMs: number

  private readonly onClaim: ((nonce: string, keepUntil: number) => void) | undefined

  constructor(options: NonceCacheOptions = {}) {
    this.now = options.now ?? Date.now
    this.bucketMs = options.bucketMs ?? 1_000
    this.onClaim = options.onClaim
    this.oldest = Math.floor(this.now() / this.bucketMs)
  }

  /**
   * Record `nonce` until `keepUntil` (ms). False when it is still remembered (a replay). Always
   * records a fresh nonce: there is no capacity to run out of.
   */
  claim(nonce: string, keepUntil: number): boolean {
    const t = this.now()
    this.expire(t)
    const until = this.seen.get(nonce)
    if (until !== undefined && until > t) return false
    if (keepUntil <= t) return true
    this.remember(nonce, keepUntil)
    this.onClaim?.(nonce, keepUntil)
    return true
  }

  /** Remember nonces spent before this cache existed (read back from the relay's store). */
  restore(entries: Iterable<{ nonce: string; keepUntil: number }>): void {
    const t = this.now()
    for (const { nonce, keepUntil } of entries) if (keepUntil > t && (this.seen.get(nonce) ?? 0) < keepUntil) this.remember(nonce, keepUntil)
  }

  private remember(nonce: string, keepUntil: number): void {
    this.seen.set(nonce, keepUntil)
    // Rounded up: a bucket is dropped only when every nonce in it may be forgotten.
    const index = Math.ceil(keepUntil / this.bucketMs)
    let bucket = this.buckets.get(index)
    if (!bucket) this.buckets.set(index, (bucket = []))
    bucket.push(nonce)
  }

  /** Nonces currently remembered (tests, metrics). */
  get size(): number {
    return this.seen.size
  }

  /** Drop every bucket whose time has passed. Amortized O(1) per nonce ever claimed. */
  private expire(t: number): void {
    const current = Math.floor(t / this.bucketMs)
    if (current < this.oldest) return
    // After a long idle stretch (or a clock jump) walk the held buckets, not every index between.
    if (current - this.oldest > this.buckets.size) {
      for (const [index, nonces] of this.buckets) if (index <= current) this.drop(index, nonces)
    } else {
      for (let index = this.oldest; index <= current; index++) {
        const nonces = this.buckets.get(index)
        if (nonces) this.drop(index, nonces)
      }
    }
    this.oldest = current + 1
  }

  private drop(index: number, nonces: string[]): void {
    this.buckets.delete(index)
    for (const nonce of nonces) {
      // A nonce claimed again after it was forgotten sits in a later bucket too; keep that one.
      const until = this.seen.get(nonce)
      if (until !== undefined && Math.ceil(until / this.bucketMs) <= index) this.seen.delete(nonce)
    }
  }
}
