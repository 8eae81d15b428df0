/**
 * Argument checks for JSON values and embeddings at the public API (`check-args.ts` has the rest).
 *
 * @module
 */
import type { JsonObject, JsonValue } from '../crdt/json.js'
import { MAX_EMBEDDING_DIMENSIONS } from '../crdt/memory.js'
import { ValidationError } from '../errors.js'

/** Largest JSON value (tool input/output, data part, metadata) accepted, serialized, in bytes. */
export const MAX_JSON_BYTES = 256 * 1024

/**
 * Throw unless `value` is JSON-serializable within `maxBytes`; returns a normalized deep copy
 * (so later changes to the caller's object never reach the doc).
 */
export function requireJson(value: unknown, name: string, maxBytes = MAX_JSON_BYTES): JsonValue {
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (error) {
    throw new ValidationError(`${name} must be JSON-serializable (${error instanceof Error ? error.message : 'stringify failed'})`)
  }
  if (text === undefined) throw new ValidationError(`${name} must be a JSON value, got ${typeof value}`)
  // UTF-16 length is a lower bound of the UTF-8 size (×3 at most); encode only when it matters.
  const bytes = text.length * 3 <= maxBytes ? text.length : new TextEncoder().encode(text).length
  if (bytes > maxBytes) throw new ValidationError(`${name} is ${bytes} bytes as JSON; the limit is ${maxBytes} (UTF-8)`)
  return JSON.parse(text) as JsonValue
}

/** {@link requireJson} restricted to plain objects. */
export function requireJsonObject(value: unknown, name: string, maxBytes = MAX_JSON_BYTES): JsonObject {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(`${name} must be a plain object`)
  }
  return requireJson(value, name, maxBytes) as JsonObject
}

/**
 * Throw unless `value` is a usable embedding: a `Float32Array` or an array of finite numbers,
 * 1..4096 dimensions, not all zero. Returns a fresh `Float32Array`.
 */
export function requireEmbedding(value: unknown, name = 'embedding'): Float32Array {
  let vector: Float32Array
  if (value instanceof Float32Array) vector = new Float32Array(value)
  else if (Array.isArray(value) && value.every((v) => typeof v === 'number')) vector = Float32Array.from(value as number[])
  else throw new ValidationError(`${name} must be a Float32Array or an array of numbers`)
  if (vector.length === 0 || vector.length > MAX_EMBEDDING_DIMENSIONS) {
    throw new ValidationError(`${name} must have 1..${MAX_EMBEDDING_DIMENSIONS} dimensions, got ${vector.length}`)
  }
  let norm = 0
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i]!
    if (!Number.isFinite(v)) throw new ValidationError(`${name} must contain finite numbers only (index ${i})`)
    norm += v * v
  }
  if (norm === 0) throw new ValidationError(`${name} must not be all zeros`)
  return vector
}

/** Throw unless `value` is a short non-empty label (model names, tool names, data names…). */
export function requireLabel(value: unknown, name: string, max = 200): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > max) {
    throw new ValidationError(`${name} must be a non-empty string of at most ${max} characters`)
  }
  return value
}
