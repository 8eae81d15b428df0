/**
 * Which scopes a head unit holds (ARCHITECTURE.md "adapters/car"). A car is shared by whoever
 * drives it, sits in parking garages and service bays, and may be a rental: by default it holds
 * `personal` and `location` only, and never `health` or `payments` whatever an owner grants it,
 * unless the host app was told to by the owner (`allowScopes`).
 *
 * @module
 */
import { ValidationError } from '../../src/index.js'

/** Scopes a head unit holds by default. */
export const CAR_DEFAULT_SCOPES: readonly string[] = ['personal', 'location']

/** Scopes a head unit refuses unless `allowScopes` names them, and why. */
export const CAR_GUARDED_SCOPES: Readonly<Record<string, string>> = {
  health: 'health data does not belong on a head unit that other drivers, passengers and service staff can reach',
  payments: 'payment data does not belong on a head unit that other drivers, passengers and service staff can reach',
}

/** Why a head unit left `scope` unopened, in words for the owner's screen. */
export function refusalReason(scope: string): string {
  const guarded = CAR_GUARDED_SCOPES[scope]
  if (guarded) return `the car does not hold '${scope}': ${guarded}; the owner can allow it explicitly (openCar({ allowScopes: ['${scope}'] }))`
  return `the car does not hold '${scope}': it holds ${CAR_DEFAULT_SCOPES.join(' and ')} unless allowScopes names more`
}

/** The scopes a head unit agrees to hold: the defaults plus what the owner explicitly allowed. */
export function carScopes(allowScopes: unknown): string[] {
  if (allowScopes === undefined) return [...CAR_DEFAULT_SCOPES]
  if (!Array.isArray(allowScopes) || allowScopes.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new ValidationError('allowScopes must be an array of scope names')
  }
  return [...new Set([...CAR_DEFAULT_SCOPES, ...(allowScopes as string[])])]
}
