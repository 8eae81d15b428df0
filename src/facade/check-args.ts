/**
 * Argument checks at the public API. Misuse throws a {@link ValidationError} with a message that
 * names the argument and what was wrong.
 *
 * @module
 */
import { ValidationError } from '../errors.js'

/** Longest memory text or turn text accepted in one call (characters). */
export const MAX_TEXT_LENGTH = 100_000
/** Most tags on one memory. */
export const MAX_TAGS = 64

/** Throw unless `value` is a plain object. */
export function requireObject(value: unknown, name: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(`${name} must be an object, got ${typeName(value)}`)
  }
  return value as Record<string, unknown>
}

/** Throw unless `value` is a non-empty (after trimming) string of bounded length. */
export function requireText(value: unknown, name: string, options: { allowEmpty?: boolean } = {}): string {
  if (typeof value !== 'string') throw new ValidationError(`${name} must be a string, got ${typeName(value)}`)
  if (!options.allowEmpty && value.trim().length === 0) throw new ValidationError(`${name} must not be empty`)
  if (value.length > MAX_TEXT_LENGTH) {
    throw new ValidationError(`${name} is ${value.length} characters; the limit is ${MAX_TEXT_LENGTH}`)
  }
  return value
}

/** Throw unless `value` is one of `allowed`; `fallback` when undefined. */
export function requireOneOf<T extends string>(value: unknown, allowed: readonly T[], name: string, fallback?: T): T {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new ValidationError(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`)
  }
  return value as T
}

/** Throw unless `value` is an array of non-empty strings (deduplicated on return). */
export function requireTags(value: unknown, name = 'tags'): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw new ValidationError(`${name} must be an array of strings, got ${typeName(value)}`)
  if (value.length > MAX_TAGS) throw new ValidationError(`${name} has ${value.length} entries; the limit is ${MAX_TAGS}`)
  for (const tag of value) {
    if (typeof tag !== 'string' || tag.trim().length === 0 || tag.length > 200) {
      throw new ValidationError(`${name} must contain non-empty strings (≤ 200 characters), got ${describe(tag)}`)
    }
  }
  return [...new Set(value as string[])]
}

/** Throw unless `value` is a finite number within `[min, max]`; undefined passes through. */
export function optionalNumber(value: unknown, name: string, min = -Infinity, max = Infinity): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new ValidationError(`${name} must be a number between ${min} and ${max}, got ${describe(value)}`)
  }
  return value
}

/** Throw unless `value` is a non-empty string id. */
export function requireId(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 200) {
    throw new ValidationError(`${name} must be a non-empty string id, got ${describe(value)}`)
  }
  return value
}

/** Throw unless `value` is a positive integer (or undefined → fallback). */
export function optionalLimit(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new ValidationError(`${name} must be a positive integer, got ${describe(value)}`)
  }
  return value
}

function typeName(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'an array'
  return typeof value
}

function describe(value: unknown): string {
  if (typeof value === 'string') return `'${value.length > 40 ? `${value.slice(0, 40)}…` : value}'`
  return typeName(value) === 'number' ? String(value) : typeName(value)
}

/** Throw when a validity window ends before it starts. */
export function checkValidity(validFrom: number | undefined, validTo: number | undefined): void {
  if (validFrom !== undefined && validTo !== undefined && validTo < validFrom) {
    throw new ValidationError(`validTo (${validTo}) must not be before validFrom (${validFrom})`)
  }
}

/** A time in ms since the epoch that lies ahead (an access's end): a safe integer after now. */
export function requireFutureTime(value: unknown, name: string, now = Date.now()): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= now) {
    throw new ValidationError(`${name} must be a time ahead, in ms since the epoch (like Date.now() + 86_400_000), got ${String(value)}`)
  }
  return value
}
