/**
 * What {@link createRelay} (server.ts) is started with, and the running relay it returns.
 *
 * @module
 */
import type { CloseCode } from '../wire/close-codes.js'
import type { AuthHook } from './auth.js'
import type { RelayLimits } from './limits.js'
import type { RelayLogger } from './log.js'
import type { RelayMetricsSnapshot } from './metrics.js'
import type { RelayStorageBackend } from './persistence.js'
import type { RelayStore } from './store.js'
import type { RelayFanout } from './fanout.js'

/** Storage merge policy. */
export interface RelayPersistenceOptions {
  /** Merge every loaded room's rows into one at this interval (ms); default 10 000. */
  mergeIntervalMs?: number
  /** Merge a room as soon as it has this many stored rows; default 500. */
  mergeEveryUpdates?: number
  /** A custom single-process backend; overrides `dataDir` (a {@link RelayOptions.store} overrides both). */
  backend?: RelayStorageBackend
}

/** Options of {@link createRelay}. */
export interface RelayOptions {
  /** Interface to bind; default `127.0.0.1`. */
  host?: string
  /** TCP port; default 0 (a free port, see `relay.port`). */
  port?: number
  /**
   * Directory of the SQLite database (created if missing). `undefined` keeps rooms in memory for
   * the relay's lifetime; the embedded demo passes a temporary directory.
   */
  dataDir?: string
  /**
   * Where rooms, revocations and spent nonces are kept (see `store.ts`), e.g.
   * `postgresStore(url)` for several relay nodes; overrides `dataDir`. The relay closes it.
   */
  store?: RelayStore
  /**
   * Fan-out to the other relay nodes sharing `store`, e.g. `redisFanout(url)`: committed updates
   * and awareness go to them, theirs come here (see `fanout.ts`). The relay starts and closes it.
   */
  fanout?: RelayFanout
  /** With a fan-out: how often every open room is caught up from the store anyway (ms); default 10 000. */
  catchUpIntervalMs?: number
  /** Limits; each unset one takes its default (see `limits.ts`). */
  limits?: Partial<RelayLimits>
  /**
   * Auth hooks, run in priority order on every upgrade; default `tokenAuth()`. `'none'` accepts
   * everyone — for tests and local development only; the relay logs a loud warning.
   */
  auth?: 'none' | AuthHook | readonly AuthHook[]
  /** Where JSON logs go; default JSON lines to stderr at level `info`. */
  logger?: RelayLogger
  /** Storage merge policy. */
  persistence?: RelayPersistenceOptions
  /** Ping interval; a connection that missed a pong by the next ping is dropped. Default 30 000. */
  keepAliveMs?: number
  /** How long {@link Relay.close} waits for clients to acknowledge 1001 before cutting; default 2 000. */
  shutdownGraceMs?: number
  /**
   * Operator hook: may this account use the relay at all? Called on every upgrade after auth
   * (pairing rooms excepted: a device being paired has no account yet); false refuses with 4403,
   * a throw with 1011. Default: every account (the CLI's `--accounts FILE` sets a list).
   *
   * @example
   * ```ts
   * const allowed = new Set(['3f2a…'])
   * await createRelay({ authorizeAccount: (accountId) => allowed.has(accountId) })
   * ```
   */
  authorizeAccount?: (accountId: string) => boolean | Promise<boolean>
  /**
   * The audiences devices' tokens must name: the `host[:port]` of the URL devices connect to,
   * e.g. `'relay.example.com'` behind a TLS proxy. A token naming another relay, or none, is
   * refused with 4403, so a token captured at another relay is useless here (README "The
   * relay"). Unset: not checked — set it for a relay on the internet.
   */
  audience?: string | readonly string[]
  /**
   * Behind a reverse proxy, the request header naming the client's address (e.g.
   * `x-forwarded-for`; its last entry, the one the proxy appended, is used). Per-address limits
   * then count that address, from the upgrade on. Unset: the socket's peer address.
   */
  clientAddressHeader?: string
}

/** A running relay. */
export interface Relay {
  /** `ws://host:port`; clients connect to `${url}/${roomId}?token=…`. */
  readonly url: string
  /** The bound host. */
  readonly host: string
  /** The bound port (useful with `port: 0`). */
  readonly port: number
  /** Current metrics. */
  metrics(): RelayMetricsSnapshot
  /**
   * Close every live connection of one device (e.g. after a revocation) with `code` (default
   * 4403 Forbidden). Returns how many connections were closed.
   */
  closeDevice(accountId: string, deviceId: string, code?: CloseCode): number
  /**
   * Graceful shutdown: stop accepting, close sockets with 1001, merge and flush storage, release
   * the port. Idempotent.
   */
  close(): Promise<void>
}
