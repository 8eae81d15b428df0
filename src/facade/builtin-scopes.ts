/**
 * Built-in privacy scopes, and the device kinds their default policies name. Each scope is its own
 * inner doc, sealed log, relay room and key epochs (WIRE.md "Keys and epochs"). `local` never
 * leaves the device: it is stored (sealed) but never attached to a transport.
 *
 * @module
 */
import { requireObject, requireOneOf } from './check-args.js'

/** The scopes every account has. */
export const BUILTIN_SCOPES = ['personal', 'health', 'payments', 'location', 'work', 'local'] as const
/** One of {@link BUILTIN_SCOPES}. */
export type BuiltinScope = (typeof BUILTIN_SCOPES)[number]

/** Device kinds contextsync knows how to wire. */
export const DEVICE_KINDS = ['phone', 'glasses', 'car', 'pc', 'other'] as const
/** One of {@link DEVICE_KINDS}. */
export type DeviceKind = (typeof DEVICE_KINDS)[number]

/**
 * Default policy of the built-in scopes: the device kinds that hold each one. `local` is held by
 * every device and never leaves it.
 */
export const DEFAULT_SCOPE_KINDS: Record<BuiltinScope, readonly DeviceKind[]> = {
  personal: DEVICE_KINDS,
  health: ['phone', 'glasses'],
  payments: ['phone'],
  location: ['phone', 'glasses', 'car'],
  work: ['phone', 'pc'],
  local: DEVICE_KINDS,
}

/** True for scopes whose sealed log is never handed to a transport. */
export function isDeviceLocal(scope: string): boolean {
  return scope === 'local'
}

/** What a device is, as the app names it. */
export interface DeviceProfile {
  kind: DeviceKind
  name: string
}

/** Default display name of a device kind. */
export function defaultName(kind: DeviceKind): string {
  return `My ${kind === 'pc' ? 'PC' : kind}`
}

/** Validate `{ kind, name? }` from the app (undefined passes through). */
export function requestedProfile(value: unknown): DeviceProfile | undefined {
  if (value === undefined) return undefined
  const deviceInfo = requireObject(value, 'device')
  const kind = requireOneOf(deviceInfo.kind, DEVICE_KINDS, 'device.kind')
  const name = deviceInfo.name === undefined ? defaultName(kind) : String(deviceInfo.name).slice(0, 200)
  return { kind, name }
}
