/**
 * What the sub-APIs of a device (devices, scopes, pairing, presence, memory, sessions) need from
 * it. Kept apart from `context-sync.ts` so those modules do not import the facade that builds them.
 *
 * @module
 */
import type { Transport } from '../adapters/transport.js'
import type { AccountKeys, DeviceKeyring, DeviceKeys } from '../crypto/index.js'
import type { RejectedEvent, Replica } from '../sync/replica.js'
import type { Registry } from './registry.js'

/** @internal Everything the sub-APIs (devices, scopes, pairing) need from the device. */
export interface DeviceContext {
  readonly device: DeviceKeys
  readonly account: AccountKeys
  readonly keyring: DeviceKeyring
  readonly registry: Registry
  readonly transports: Transport[]
  assertOpen(): void
  /** Replica of a scope this device holds, if open. */
  heldReplica(scope: string): Replica | undefined
  /** Every replica, the registry's included. */
  allReplicas(): Replica[]
  /** Count and report refused input that no replica saw (statements, import lines). */
  reportRejection(event: RejectedEvent): void
}


/** @internal The replicas of the scopes this device holds, as the memory, sessions and presence APIs use them. */
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
