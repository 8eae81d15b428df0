/**
 * What the AI-context APIs (memory export/import, handoff, presence) need to know about the device
 * they run on. `ContextSync` passes its device context, which has this shape; the interface is
 * declared here, narrowly, so these modules do not import the facade that builds them.
 *
 * @module
 */
import { certificateKey, statementsMap } from '../crdt/registry.js'
import type { AccountKeys, DeviceKeys, ScopeKeyring } from '../crypto/index.js'
import { REGISTRY_SCOPE } from '../crypto/keyring.js'
import type { RejectedEvent, Replica } from '../sync/replica.js'
import type { Registry } from './registry.js'
import { DEVICE_KINDS, type DeviceKind } from './scopes.js'

/** @internal The device an API runs on: its keys, account, keyring and registry. */
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

/** The device kind a certificate states (`'other'` for unknown kinds or devices). */
export function kindOf(identity: DeviceIdentity, deviceId: string): DeviceKind | undefined {
  const kind = identity.registry.certificate(deviceId)?.kind
  if (kind === undefined) return undefined
  return (DEVICE_KINDS as readonly string[]).includes(kind) ? (kind as DeviceKind) : 'other'
}

/** The root-signed certificate statement of this device, as stored in the registry. */
export function ownCertificateBytes(identity: DeviceIdentity): Uint8Array | undefined {
  const registry = identity.allReplicas().find((r) => r.scope === REGISTRY_SCOPE)
  if (!registry) return undefined
  const bytes = statementsMap(registry.inner).get(certificateKey(identity.device.deviceId))
  return bytes instanceof Uint8Array ? bytes : undefined
}
