/**
 * Helpers over the identity view of the device context (`DeviceIdentity`, declared with the
 * context in `device-context.ts`): the kind a device's certificate states, and this device's own
 * certificate as the registry holds it.
 *
 * @module
 */
import { certificateKey, statementsMap } from '../crdt/registry.js'
import { REGISTRY_SCOPE } from '../crypto/keyring.js'
import type { DeviceIdentity } from './device-context.js'
import { DEVICE_KINDS, type DeviceKind } from './builtin-scopes.js'

export type { DeviceIdentity } from './device-context.js'

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
