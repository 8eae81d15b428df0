/**
 * Relay limits: defaults, validation, and the per-connection token bucket.
 *
 * Each limit has a default, a CLI flag and a close code (see `close-codes.ts`):
 *
 * | limit                      | default  | flag                  | close code |
 * |----------------------------|----------|-----------------------|------------|
 * | `maxMessageBytes`          | 16 MiB   | `--max-message-bytes` | 1009       |
 * | `messagesPerSecond`        | 200      | `--rate`              | 4429       |
 * | `burst`                    | 2000     | `--burst`             | 4429       |
 * | `maxRoomsPerAccount`       | 256      | `--max-rooms`         | 4414       |
 * | `maxStoredBytesPerAccount` | 256 MiB  | `--max-stored-bytes`  | 4413       |
 *
 * Why these numbers: a single frame must carry a snapshot envelope or a device's first sync of a
 * large store (compaction snapshots of ~100k memories run to several MiB), hence 16 MiB. Clients
 * batch writes into one envelope per flush, so a few hundred messages per second is far above a
 * healthy device; the burst absorbs reconnect catch-up. An account holds ~10 scopes, and room
 * quotas only guard against a runaway client creating rooms.
 *
 * @module
 */

/** Limits enforced by the relay. All positive integers. */
export interface RelayLimits {
  /** Largest accepted frame in bytes; larger ones close the connection with 1009. */
  maxMessageBytes: number
  /** Sustained messages per second per connection (token bucket refill rate). */
  messagesPerSecond: number
  /** Token bucket size: messages a connection may send at once. */
  burst: number
  /** Rooms (stored or open) one account may have. */
  maxRoomsPerAccount: number
  /** Bytes one account may have stored, measured after merging updates. */
  maxStoredBytesPerAccount: number
}

/** The defaults, documented in the module comment. */
export const DEFAULT_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxMessageBytes: 16 * 1024 * 1024,
  messagesPerSecond: 200,
  burst: 2000,
  maxRoomsPerAccount: 256,
  maxStoredBytesPerAccount: 256 * 1024 * 1024,
})

/** Thrown when a limit is not a positive safe integer (programmer or operator error). */
export class RelayConfigError extends Error {
  override readonly name = 'RelayConfigError'
}

/** Merge `partial` over the defaults and check every value. Throws {@link RelayConfigError}. */
export function resolveLimits(partial: Partial<RelayLimits> = {}): RelayLimits {
  const limits: RelayLimits = { ...DEFAULT_LIMITS }
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof RelayLimits)[]) {
    const value = partial[key]
    if (value === undefined) continue
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new RelayConfigError(`limits.${key} must be a positive integer, got ${String(value)}`)
    }
    limits[key] = value
  }
  return limits
}

/**
 * A token bucket: `capacity` tokens, refilled at `ratePerSecond`. One message costs one token.
 * Kept as two numbers per connection so idle connections stay cheap.
 */
export class TokenBucket {
  private tokens: number
  private last: number

  /** @param now clock in ms, injectable for tests. */
  constructor(
    private readonly ratePerSecond: number,
    private readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = capacity
    this.last = now()
  }

  /** Take one token; false when the bucket is empty (the caller refuses the message). */
  take(): boolean {
    const t = this.now()
    const elapsed = t - this.last
    if (elapsed > 0) {
      this.tokens = Math.min(this.capacity, this.tokens + (elapsed * this.ratePerSecond) / 1000)
      this.last = t
    }
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }
}
