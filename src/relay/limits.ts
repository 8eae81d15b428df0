/**
 * Relay limits: defaults, validation, and the per-connection token bucket.
 *
 * Each limit has a default, a `createRelay({ limits })` option, a CLI flag with its environment
 * variable (`CONTEXTSYNC_RELAY_<FLAG>`), the close code a client sees (see `src/wire/close-codes.ts`) and a
 * `/metrics` counter, `contextsync_relay_limit_hits_total{limit="<name>"}` (README.md, "The relay"):
 *
 * | limit                           | default  | flag                          | close code     | `limit` label           |
 * |---------------------------------|----------|-------------------------------|----------------|-------------------------|
 * | `maxMessageBytes`               | 16 MiB   | `--max-message-bytes`         | 1009           | —                       |
 * | `messagesPerSecond`             | 200      | `--rate`                      | 4429           | —                       |
 * | `burst`                         | 2000     | `--burst`                     | 4429           | —                       |
 * | `maxConnectionsPerAddress`      | 256      | `--max-connections-per-address` | 4429 ¹       | `connectionsPerAddress` |
 * | `maxConnections`                | 20 000   | `--max-connections`           | 1013 ¹         | `connections`           |
 * | `upgradeTimeoutMs`              | 10 s     | `--upgrade-timeout`           | none ²         | `upgradeTimeout`        |
 * | `maxRoomsPerAccount`            | 256      | `--max-rooms`                 | 4414           | `roomsPerAccount`       |
 * | `maxRooms`                      | 100 000  | `--max-rooms-total`           | 4414           | `rooms`                 |
 * | `maxStoredBytesPerAccount`      | 256 MiB  | `--max-stored-bytes`          | 4413           | `storedBytesPerAccount` |
 * | `maxStoredBytes`                | 8 GiB    | `--max-stored-bytes-total`    | 4413           | `storedBytes`           |
 * | `maxPairingRoomsPerAddress`     | 8        | `--max-pairing-rooms-per-address` | 4414       | `pairingRoomsPerAddress`|
 * | `maxPairingRoomBytes`           | 256 KiB  | `--max-pairing-room-bytes`    | 4413           | `pairingRoomBytes`      |
 * | `pairingRoomLifetimeMs`         | 10 min   | `--pairing-room-lifetime`     | 4410           | `pairingRoomLifetime`   |
 * | `maxAwarenessStatesPerConnection` | 8      | `--max-awareness-states`      | dropped ³      | `awarenessStates`       |
 * | `maxAwarenessBytesPerConnection`  | 64 KiB | `--max-awareness-bytes`       | dropped ³      | `awarenessBytes`        |
 *
 * ¹ Counted over TCP connections (a pending upgrade counts): one past the limit still completes
 * its handshake to receive the close code; past twice the limit the socket is dropped at once, so
 * a flood of idle sockets cannot pile up either.
 * ² A socket that has not completed its WebSocket upgrade (or an HTTP request) within the timeout
 * is destroyed: there is no WebSocket yet to carry a close code (slowloris).
 * ³ An awareness update that would take a connection past its count or bytes is dropped whole;
 * entries for client ids another connection introduced are dropped one by one (`awarenessForeign`).
 *
 * Why these numbers: a frame must carry the largest envelope — sync data comes in frames of at most
 * 1 MiB and snapshots in parts of at most 960 KiB (WIRE.md, "Frame sizes"), but one flush of
 * 4096 long memories makes an update envelope of several MiB — hence 16 MiB. Clients
 * batch writes into one envelope per flush, so a few hundred messages per second is far above a
 * healthy device; the burst absorbs reconnect catch-up. An account holds ~10 scopes, and room
 * quotas only guard against a runaway client creating rooms. A device opens one connection per
 * room (~12), so 256 per address leaves room for ~20 devices behind one NAT; the global caps bound
 * what self-minted accounts can take in total (anyone can create an account root, so per-account
 * limits alone bound nothing). Pairing needs one room for two devices for as long as an invite is
 * open (`invite()` defaults to 10 minutes), and its messages are a few hundred bytes. A
 * y-websocket client has one awareness client id per doc; 8 leaves room for reconnects, and a
 * sealed presence envelope is a few KiB.
 *
 * @module
 */
import { ContextSyncError } from '../errors.js'

/** Limits enforced by the relay. All positive integers. */
export interface RelayLimits {
  /** Largest accepted frame in bytes; larger ones close the connection with 1009. */
  maxMessageBytes: number
  /** Sustained messages per second per connection (token bucket refill rate). */
  messagesPerSecond: number
  /** Token bucket size: messages a connection may send at once. */
  burst: number
  /** TCP connections (pending upgrades and WebSockets) one source address may hold. */
  maxConnectionsPerAddress: number
  /** TCP connections the relay holds in total. */
  maxConnections: number
  /** Milliseconds a socket may take to complete its WebSocket upgrade (auth included). */
  upgradeTimeoutMs: number
  /** Rooms (stored or open) one account may have. Pairing rooms have their own quota. */
  maxRoomsPerAccount: number
  /** Rooms (stored or open) over all accounts, pairing rooms included. */
  maxRooms: number
  /** Bytes one account may have stored, measured as the merged size of its rooms. */
  maxStoredBytesPerAccount: number
  /** Bytes stored over all accounts, measured like `maxStoredBytesPerAccount`. */
  maxStoredBytes: number
  /** Pairing rooms one source address may have connections in at once. */
  maxPairingRoomsPerAddress: number
  /** Bytes one pairing room may hold. */
  maxPairingRoomBytes: number
  /** Milliseconds after which a pairing room is closed (4410) and deleted, whoever is in it. */
  pairingRoomLifetimeMs: number
  /** Awareness states (client ids) one connection may have set. */
  maxAwarenessStatesPerConnection: number
  /** Bytes (JSON) of the awareness states one connection has set, summed. */
  maxAwarenessBytesPerConnection: number
}

const KIB = 1024
const MIB = 1024 * KIB

/** The defaults, documented in the module comment. */
export const DEFAULT_LIMITS: Readonly<RelayLimits> = Object.freeze({
  maxMessageBytes: 16 * MIB,
  messagesPerSecond: 200,
  burst: 2000,
  maxConnectionsPerAddress: 256,
  maxConnections: 20_000,
  upgradeTimeoutMs: 10_000,
  maxRoomsPerAccount: 256,
  maxRooms: 100_000,
  maxStoredBytesPerAccount: 256 * MIB,
  maxStoredBytes: 8 * 1024 * MIB,
  maxPairingRoomsPerAddress: 8,
  maxPairingRoomBytes: 256 * KIB,
  pairingRoomLifetimeMs: 10 * 60_000,
  maxAwarenessStatesPerConnection: 8,
  maxAwarenessBytesPerConnection: 64 * KIB,
})

/** Thrown when a limit is not a positive safe integer (programmer or operator error; code `config`). */
export class RelayConfigError extends ContextSyncError {
  override readonly name = 'RelayConfigError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('config', message, options)
  }
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
