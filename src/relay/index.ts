/**
 * `contextsync/relay`: the blind relay server (Node only). It stores and forwards sealed logs —
 * ciphertext it cannot read — over the y-websocket protocol, with auth on upgrade, limits,
 * persistence in SQLite or PostgreSQL (several nodes), `/healthz`, Prometheus `/metrics` and JSON logs.
 *
 * @example
 * ```ts
 * import { createRelay } from 'contextsync/relay'
 * const relay = await createRelay({ port: 8787, dataDir: './relay-data' })
 * ```
 *
 * @module
 */
export { createRelay, type Relay, type RelayOptions, type RelayPersistenceOptions } from './server.js'
export { CloseCode, closeCodeName, closeReason, isCloseCode, REFUSAL_CODES } from '../wire/close-codes.js'
export {
  tokenAuth,
  tokenCheck,
  noAuth,
  NonceCache,
  DEFAULT_MAX_TOKEN_LIFETIME_SECONDS,
  type NonceCacheOptions,
  RelayRefusal,
  ROOM_ID_PATTERN,
  type AuthHook,
  type AuthContext,
  type RelayIdentity,
  type TokenAuthOptions,
} from './auth.js'
export { DEFAULT_LIMITS, RelayConfigError, resolveLimits, TokenBucket, type RelayLimits } from './limits.js'
export { jsonLogger, silentLogger, isLogLevel, LOG_LEVELS, type LogLevel, type LogFields, type RelayLogger } from './log.js'
export { renderPrometheus, PROMETHEUS_CONTENT_TYPE, LIMIT_NAMES, type LimitName, type RelayMetricsSnapshot } from './metrics.js'
export { addressKey } from './addresses.js'
export {
  sqliteBackend,
  memoryBackend,
  backendStore,
  memoryStore,
  sqliteStore,
  DATABASE_FILE,
  type RelayStorageBackend,
  type SqliteBackendOptions,
} from './persistence.js'
export {
  accountOfRoom,
  type RelayStore,
  type StoredRevocation,
  type StoredUpdate,
  type StoredRoomSummary,
  type AppendQuota,
  type AppendResult,
  type CompactResult,
  type SpentNonce,
} from './store.js'
export { postgresStore, POSTGRES_SCHEMA_VERSION, type PostgresStoreOptions } from './postgres-store.js'
export { redisFanout, type RedisFanoutOptions } from './redis-fanout.js'
export { type RelayFanout, type FanoutHandlers, type FanoutMessage, type AwarenessOwner } from './fanout.js'
