/**
 * contextsync — end-to-end encrypted sync of an AI assistant's memory and conversations across
 * one person's devices (glasses, phone, car, PC). Isomorphic core; Node-only and browser-only
 * parts live in their own entry points (`contextsync/sqlite`, `contextsync/idb`,
 * `contextsync/websocket`, `contextsync/relay`).
 *
 * @example
 * ```ts
 * import { ContextSync, createAccount, memoryStorage, loopbackNetwork } from 'contextsync'
 * const account = await createAccount()
 * const net = loopbackNetwork({ seed: 1 })
 * const phone = await ContextSync.open({ account, device: { kind: 'phone' }, storage: memoryStorage(), transports: [net.transport()] })
 * await phone.memory.remember({ text: 'Prefers aisle seats', kind: 'preference', tags: ['travel'] })
 * ```
 *
 * @module
 */
export { ContextSync } from './facade/context-sync.js'
export type { OpenOptions, SyncOptions, ContextSyncEvents, StorageErrorEvent } from './facade/context-sync.js'
export type { SyncPeerStatus, SyncLagEvent } from './facade/sync-monitor.js'
export { Account, createAccount } from './facade/account.js'
// Memory, sessions, recall, handoff and presence (the SDK adapters: `contextsync/compat`).
export * from './facade/ai.js'
export { BUILTIN_SCOPES, DEVICE_KINDS, DEFAULT_SCOPE_KINDS, type BuiltinScope, type DeviceKind } from './facade/builtin-scopes.js'
export { DevicesApi, type DeviceInfo } from './facade/devices.js'
export { ScopesApi, type ScopePolicy } from './facade/scopes-api.js'
export { PairingError, type Invite, type InviteOptions, type JoinOptions, type PairingFailure, type PairingRequest } from './facade/pairing.js'
export {
  ContextSyncError,
  ValidationError,
  ScopeAccessError,
  NotFoundError,
  ClosedError,
  ConfigError,
  PermissionError,
  AccessEndedError,
  type ContextSyncErrorCode,
} from './errors.js'
export { RejectCode, rejectCodeName } from './crypto/codes.js'
export { useCryptoBackend, cryptoBackend, type CryptoBackendName, type CryptoBackendChoice } from './crypto/sodium.js'
export { plainKeys, type KeyProtector } from './crypto/key-protector.js'
export { passphraseKeys, type PassphraseKeysOptions } from './crypto/passphrase-keys.js'
export { wrappingKeyKeys } from './crypto/wrapping-key-keys.js'
export type { RejectedEvent } from './sync/replica.js'
export { StorageError, type StorageAdapter, type StorageKey, type StorageChunk, type StorageErrorCode } from './adapters/storage.js'
export type { Transport, TransportAttachment, TransportStatus, SealedLogRoom } from './adapters/transport.js'
export { memoryStorage } from './adapters/memory-storage.js'
export { loopbackNetwork } from './testing/loopback/index.js'
export type { LoopbackNetwork, LoopbackOptions } from './testing/loopback/index.js'
