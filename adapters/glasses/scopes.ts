/**
 * Which scopes glasses hold (ARCHITECTURE.md "adapters/glasses"): a device on someone's face,
 * easily lost or borrowed, with a camera and microphones — by default `personal` and `location`
 * only, never `health` or `payments` unless the owner allows them (`allowScopes`).
 *
 * @module
 */
import { ValidationError } from '../../src/index.js'

/** Scopes glasses hold by default. */
export const GLASSES_DEFAULT_SCOPES: readonly string[] = ['personal', 'location']

/** Scopes glasses refuse unless `allowScopes` names them, and why. */
export const GLASSES_GUARDED_SCOPES: Readonly<Record<string, string>> = {
  health: 'health data does not belong on glasses that are easily lost, borrowed or left on a table',
  payments: 'payment data does not belong on glasses that are easily lost, borrowed or left on a table',
}

/** Why glasses left `scope` unopened, in words for the owner's screen. */
export function glassesRefusalReason(scope: string): string {
  const guarded = GLASSES_GUARDED_SCOPES[scope]
  if (guarded) return `the glasses do not hold '${scope}': ${guarded}; the owner can allow it explicitly (openGlasses({ allowScopes: ['${scope}'] }))`
  return `the glasses do not hold '${scope}': they hold ${GLASSES_DEFAULT_SCOPES.join(' and ')} unless allowScopes names more`
}

/** The scopes glasses agree to hold: the defaults plus what the owner explicitly allowed. */
export function glassesScopes(allowScopes: unknown): string[] {
  if (allowScopes === undefined) return [...GLASSES_DEFAULT_SCOPES]
  if (!Array.isArray(allowScopes) || allowScopes.some((s) => typeof s !== 'string' || s.length === 0)) {
    throw new ValidationError('allowScopes must be an array of scope names')
  }
  return [...new Set([...GLASSES_DEFAULT_SCOPES, ...(allowScopes as string[])])]
}
