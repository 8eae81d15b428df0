/**
 * The one internal context a device hands its sub-APIs (memory, sessions, presence, the sync
 * monitor, devices, scopes, pairing): its keys, account, keyring and registry, its transports,
 * and the replicas of the scopes it holds. `ContextSync` builds a single {@link DeviceContext}
 * object and passes it to each of them. Kept apart from `context-sync.ts` so those modules do not
 * import the facade that builds them.
 *
 * {@link ScopeReplicas} and {@link DeviceIdentity} are narrower views of that same object, for
 * modules and helpers that need only the replicas or only the identity (and for test doubles).
 *
 * @module
 */
import type { Transport } from '../adapters/transport.js'
import type { AccountKeys, DeviceKeyring, DeviceKeys, ScopeKeyring } from '../crypto/index.js'
import type { RejectedEvent, Replica } from '../sync/replica.js'
import type { Registry } from './registry.js'

/** Internal (not exported by an entry point): the replicas of the scopes this device holds. */
export interface ScopeReplicas {
  readonly deviceId: string
  /** The replica of a scope this device holds; throws `ValidationError` / `ScopeAccessError`. */
  replica(scope: unknown): Replica
  /** Every replica this device holds. */
  replicas(): Replica[]
  /** Throws `ClosedError` after close. */
  assertOpen(): void
  /** Call `fn` for every replica held now and for each one opened later. */
  eachReplica(fn: (replica: Replica) => void): void
}

/** Internal (not exported by an entry point): the device an API runs on: its keys, account, keyring and registry. */
export interface DeviceIdentity {
  readonly device: Pick<DeviceKeys, 'deviceId' | 'deviceIdBytes' | 'signPublicKey' | 'signSecretKey'>
  readonly account: Pick<AccountKeys, 'accountId' | 'rootPublicKey'>
  readonly keyring: ScopeKeyring
  readonly registry: Pick<Registry, 'certificate' | 'list' | 'holds' | 'revocation' | 'events'>
  /** Every replica, the registry's included. */
  allReplicas(): Replica[]
  /** Count and report refused input that no replica saw (statements, import lines). */
  reportRejection(event: RejectedEvent): void
}

/** Internal (not exported by an entry point): everything the sub-APIs need from the device. */
export interface DeviceContext extends ScopeReplicas, DeviceIdentity {
  readonly device: DeviceKeys
  readonly account: AccountKeys
  readonly keyring: DeviceKeyring
  readonly registry: Registry
  readonly transports: Transport[]
  /** Replica of a scope this device holds, if open. */
  heldReplica(scope: string): Replica | undefined
}
