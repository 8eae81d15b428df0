/**
 * JSON values as stored in inner docs (tool inputs and outputs, data parts, handoff payloads,
 * metadata). Plain data only; `readJson` re-validates what another device wrote.
 *
 * @module
 */

/** A JSON value. */
export type JsonValue = null | boolean | number | string | JsonValue[] | JsonObject
/** A JSON object. */
export interface JsonObject {
  [key: string]: JsonValue
}

/** Deepest nesting accepted in stored JSON. */
export const MAX_JSON_DEPTH = 64

/**
 * Validate an untrusted value as JSON (finite numbers, plain objects and arrays, bounded depth)
 * and return a deep copy — values read from a Y.Map are the doc's own objects, which the app must
 * not be able to mutate. `undefined` when the value is not JSON.
 */
export function readJson(value: unknown, depth = 0): JsonValue | undefined {
  if (depth > MAX_JSON_DEPTH) return undefined
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return value
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined
  if (Array.isArray(value)) {
    const out: JsonValue[] = []
    for (const v of value) {
      const copy = readJson(v, depth + 1)
      if (copy === undefined) return undefined
      out.push(copy)
    }
    return out
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: JsonObject = {}
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const copy = readJson(v, depth + 1)
      if (copy === undefined) return undefined
      // An own '__proto__' key must stay data, not become the copy's prototype.
      if (k === '__proto__') Object.defineProperty(out, k, { value: copy, enumerable: true, writable: true, configurable: true })
      else out[k] = copy
    }
    return out
  }
  return undefined
}

/** {@link readJson} restricted to objects. */
export function readJsonObject(value: unknown): JsonObject | undefined {
  const json = readJson(value)
  return json !== undefined && json !== null && typeof json === 'object' && !Array.isArray(json) ? json : undefined
}
