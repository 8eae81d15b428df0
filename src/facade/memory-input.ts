/**
 * What `dev.memory` makes of an app's input before anything is written: a new item from
 * `remember`/`supersede` fields, a field patch from `update`, a reconcile function's decision —
 * each checked whole, so a bad field throws a `ValidationError` and nothing is written. Plus the
 * two item helpers every part of the memory API shares (expiry, defensive copies).
 *
 * @module
 */
import { MEMORY_KINDS, type MemoryFieldsPatch, type MemoryItem, type MemoryKind } from '../crdt/memory.js'
import { ValidationError } from '../errors.js'
import { randomId } from './ids.js'
import { requireEmbedding, requireLabel } from './check-json-args.js'
import type { ReconcileDecision } from './memory-types.js'
import { checkValidity, optionalNumber, requireId, requireObject, requireOneOf, requireTags, requireText } from './check-args.js'

/**
 * A new item from `remember`/`supersede` fields, in `scope`, written by `deviceId`; omitted kind
 * and tags come from `inherit` (the version it supersedes).
 */
export function buildItem(
  fields: Record<string, unknown>,
  scope: string,
  deviceId: string,
  inherit: { kind?: MemoryKind; tags?: string[] },
): MemoryItem {
  const text = requireText(fields.text, 'text')
  const kind = requireOneOf(fields.kind, MEMORY_KINDS, 'kind', inherit.kind ?? 'fact')
  const tags = fields.tags === undefined && inherit.tags ? [...inherit.tags] : requireTags(fields.tags)
  const confidence = optionalNumber(fields.confidence, 'confidence', 0, 1)
  const validFrom = optionalNumber(fields.validFrom, 'validFrom', 0)
  const validTo = optionalNumber(fields.validTo, 'validTo', 0)
  const expiresAt = optionalNumber(fields.expiresAt, 'expiresAt', 0)
  checkValidity(validFrom, validTo)
  const now = Date.now()
  const item: MemoryItem = {
    id: randomId(),
    text,
    scope,
    kind,
    tags,
    createdAt: now,
    updatedAt: now,
    source: { deviceId },
  }
  const source = fields.source === undefined ? {} : requireObject(fields.source, 'source')
  const sessionId = fields.sessionId ?? source.sessionId
  const turnId = fields.turnId ?? source.turnId
  if (sessionId !== undefined) item.source.sessionId = requireId(sessionId, 'sessionId')
  if (turnId !== undefined) item.source.turnId = requireId(turnId, 'turnId')
  if (confidence !== undefined) item.confidence = confidence
  if (validFrom !== undefined) item.validFrom = validFrom
  if (validTo !== undefined) item.validTo = validTo
  if (expiresAt !== undefined) item.expiresAt = expiresAt
  if (fields.embedding !== undefined) item.embedding = requireEmbedding(fields.embedding)
  if (fields.embeddingModel !== undefined) item.embeddingModel = requireLabel(fields.embeddingModel, 'embeddingModel')
  return item
}

/** The field patch of `update(id, patch)`: `null` removes an optional field, `undefined` keeps it. */
export function buildPatch(fields: Record<string, unknown>): MemoryFieldsPatch {
  const changes: MemoryFieldsPatch = {}
  if (fields.text !== undefined) changes.text = requireText(fields.text, 'text')
  if (fields.tags !== undefined) changes.tags = requireTags(fields.tags)
  if (fields.kind !== undefined) changes.kind = requireOneOf(fields.kind, MEMORY_KINDS, 'kind')
  const nullable = <K extends 'confidence' | 'validFrom' | 'validTo' | 'expiresAt'>(key: K, min: number, max: number): void => {
    if (fields[key] === null) changes[key] = undefined
    else if (fields[key] !== undefined) changes[key] = optionalNumber(fields[key], key, min, max)
  }
  nullable('confidence', 0, 1)
  nullable('validFrom', 0, Infinity)
  nullable('validTo', 0, Infinity)
  nullable('expiresAt', 0, Infinity)
  if (fields.embedding === null) changes.embedding = undefined
  else if (fields.embedding !== undefined) changes.embedding = requireEmbedding(fields.embedding)
  if (fields.embeddingModel === null) changes.embeddingModel = undefined
  else if (fields.embeddingModel !== undefined) changes.embeddingModel = requireLabel(fields.embeddingModel, 'embeddingModel')
  return changes
}

/** A reconcile function's answer, checked: one of the four decisions, with valid ids and text. */
export function requireDecision(value: unknown): ReconcileDecision {
  const shape = "{ action: 'ADD' } | { action: 'UPDATE', id, text? } | { action: 'SUPERSEDE', id } | { action: 'NOOP', id? }"
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError(`reconcile must resolve to ${shape}, got ${value === null ? 'null' : typeof value}`)
  }
  const { action, id, text } = value as Record<string, unknown>
  switch (action) {
    case 'ADD':
      return { action }
    case 'UPDATE':
      return text === undefined ? { action, id: requireId(id, 'reconcile UPDATE id') } : { action, id: requireId(id, 'reconcile UPDATE id'), text: requireText(text, 'reconcile UPDATE text') }
    case 'SUPERSEDE':
      return { action, id: requireId(id, 'reconcile SUPERSEDE id') }
    case 'NOOP':
      return id === undefined ? { action } : { action, id: requireId(id, 'reconcile NOOP id') }
    default:
      throw new ValidationError(`reconcile must resolve to ${shape}, got action ${JSON.stringify(action)}`)
  }
}

/** True once an item's `expiresAt` has passed (expired items are hidden everywhere). */
export function isExpired(item: { expiresAt?: number }, now: number): boolean {
  return item.expiresAt !== undefined && item.expiresAt <= now
}

/** A copy the app may change without touching what the API holds. */
export function copyItem(item: MemoryItem): MemoryItem {
  const out: MemoryItem = { ...item, tags: [...item.tags], source: { ...item.source } }
  if (item.embedding) out.embedding = new Float32Array(item.embedding)
  return out
}
