/**
 * Inner schema for memory items (WIRE.md "Inner doc of a scope", `memories`). Plain Yjs; no crypto,
 * no I/O.
 *
 * Layout in a scope's inner doc: `memories: Y.Map<Y.Map<unknown>>`, one nested map per item keyed
 * by id, one key per field — so concurrent edits of different fields on two devices both survive
 * (per-field last-writer-wins), and deleting the item deletes (and, with GC, erases) every field.
 *
 * Fields (all plain values; `embedding` is binary):
 *
 * | key | type | meaning |
 * |---|---|---|
 * | `text` `scope` `kind` | string | what is remembered, where, as what |
 * | `tags` | string[] | |
 * | `createdAt` `updatedAt` | number (ms) | |
 * | `source` | `{ deviceId, sessionId?, turnId?, accountId? }` | provenance (`accountId`: another account's, on import) |
 * | `confidence` | number 0..1 | |
 * | `validFrom` `validTo` | number (ms) | when the fact is true in the world |
 * | `expiresAt` | number (ms) | after this the item is hidden everywhere and swept |
 * | `supersedes` | string | id of the version this item replaced (never rewritten) |
 * | `supersededBy` | string | id of the newer version (set on the old item by `supersede`) |
 * | `embedding` | Uint8Array | little-endian float32 vector, 4 bytes per dimension |
 * | `embeddingModel` | string | which model produced the vector |
 *
 * @module
 */
import * as Y from 'yjs'

/** Kinds of memory, after mem0/Letta: what the assistant should treat the text as. */
export const MEMORY_KINDS = ['fact', 'preference', 'instruction', 'event', 'summary'] as const
/** One of {@link MEMORY_KINDS}. */
export type MemoryKind = (typeof MEMORY_KINDS)[number]

/** Most dimensions an embedding may have. */
export const MAX_EMBEDDING_DIMENSIONS = 4096

/** Where a memory came from. */
export interface MemorySource {
  /** The device that wrote it. */
  deviceId: string
  /** The session it was learned in. */
  sessionId?: string
  /** The turn it was learned from. */
  turnId?: string
  /**
   * The account `deviceId` belongs to, when it is not this one: set by `memory.import` on memories
   * from another account's file (WIRE.md "memories"). Absent for the account's own memories.
   */
  accountId?: string
}

/** A memory item as the app sees it. Plain data; a fresh object on every read. */
export interface MemoryItem {
  id: string
  text: string
  scope: string
  kind: MemoryKind
  tags: string[]
  createdAt: number
  updatedAt: number
  /** Provenance: the device (and conversation) it came from. */
  source: MemorySource
  /** 0..1; how sure the writer was. */
  confidence?: number
  /** Epoch ms from which the fact holds in the world. */
  validFrom?: number
  /** Epoch ms from which the fact no longer holds in the world. */
  validTo?: number
  /** Epoch ms after which the item is gone on every device (retention / TTL). */
  expiresAt?: number
  /** Id of the older version this item replaced (see `memory.supersede`). */
  supersedes?: string
  /** Id of the newer version that replaced this one; superseded items are history. */
  supersededBy?: string
  /** Vector for similarity recall. */
  embedding?: Float32Array
  /** Name of the model that produced {@link embedding}; recall only compares like with like. */
  embeddingModel?: string
}

/** Name of the memory map inside an inner doc. */
export const MEMORIES_KEY = 'memories'

/** The memory map of an inner doc. */
export function memoriesMap(doc: Y.Doc): Y.Map<Y.Map<unknown>> {
  return doc.getMap<Y.Map<unknown>>(MEMORIES_KEY)
}

const FIELDS = [
  'text',
  'scope',
  'kind',
  'tags',
  'createdAt',
  'updatedAt',
  'source',
  'confidence',
  'validFrom',
  'validTo',
  'expiresAt',
  'supersedes',
  'supersededBy',
  'embedding',
  'embeddingModel',
] as const
type Field = (typeof FIELDS)[number]

/** A patch of stored fields; a field set to `undefined` is removed. */
export type MemoryFieldsPatch = Partial<Pick<MemoryItem, Field>>

/** Float32 vector → 4 bytes per dimension, little-endian (the stored form). */
export function encodeEmbedding(vector: Float32Array): Uint8Array {
  const out = new Uint8Array(vector.length * 4)
  const view = new DataView(out.buffer)
  for (let i = 0; i < vector.length; i++) view.setFloat32(i * 4, vector[i]!, true)
  return out
}

/** The stored form back to a vector; `undefined` when the bytes are not a valid finite vector. */
export function decodeEmbedding(bytes: unknown): Float32Array | undefined {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0 || bytes.length % 4 !== 0) return undefined
  const n = bytes.length / 4
  if (n > MAX_EMBEDDING_DIMENSIONS) return undefined
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) {
    const v = view.getFloat32(i * 4, true)
    if (!Number.isFinite(v)) return undefined
    out[i] = v
  }
  return out
}

function storedValue(field: Field, value: unknown): unknown {
  if (field === 'embedding' && value instanceof Float32Array) return encodeEmbedding(value)
  if (field === 'tags' && Array.isArray(value)) return [...(value as string[])]
  if (field === 'source' && typeof value === 'object' && value !== null) return { ...(value as MemorySource) }
  return value
}

/** Write a whole item (insert). Call inside a transaction. */
export function insertMemory(doc: Y.Doc, item: MemoryItem): void {
  const map = new Y.Map<unknown>()
  for (const field of FIELDS) {
    const value = item[field]
    if (value !== undefined) map.set(field, storedValue(field, value))
  }
  memoriesMap(doc).set(item.id, map)
}

/** Overwrite some fields of an existing item. Returns false when the item does not exist. */
export function patchMemory(doc: Y.Doc, id: string, patch: MemoryFieldsPatch): boolean {
  const map = memoriesMap(doc).get(id)
  if (!(map instanceof Y.Map)) return false
  for (const field of FIELDS) {
    if (!(field in patch)) continue
    const value = patch[field]
    if (value === undefined) {
      if (map.has(field)) map.delete(field)
      continue
    }
    const stored = storedValue(field, value)
    if (!sameValue(map.get(field), stored)) map.set(field, stored)
  }
  return true
}

/** Delete an item; its fields are erased from the doc by Yjs GC. */
export function deleteMemory(doc: Y.Doc, id: string): boolean {
  const memories = memoriesMap(doc)
  if (!memories.has(id)) return false
  memories.delete(id)
  return true
}

/**
 * Read one item, validating the shape — inner docs come from other devices, so a field of the
 * wrong type yields `undefined` (required fields) or is dropped (optional fields) rather than a
 * malformed object. With `scope`, the item is reported in the scope of the doc it was read from,
 * whatever its `scope` field claims.
 */
export function readMemory(id: string, map: unknown, scope?: string): MemoryItem | undefined {
  return readMemoryWithMeta(id, map, scope)?.item
}

/**
 * {@link readMemory} plus the item's {@link MemoryMeta}, read once — for callers that keep both
 * (the recall index on every change), instead of projecting the meta back out of the item.
 */
export function readMemoryWithMeta(id: string, map: unknown, scope?: string): { item: MemoryItem; meta: MemoryMeta } | undefined {
  if (!(map instanceof Y.Map)) return undefined
  const storedScope = map.get('scope')
  // The filterable fields are read (and the required ones checked) exactly as the index reads them.
  const meta = readMemoryMeta(id, map, scope ?? (typeof storedScope === 'string' ? storedScope : ''))
  if (!meta) return undefined
  const item: MemoryItem = { ...meta, text: map.get('text') as string, source: readSource(map.get('source') as MemorySource) }
  const confidence = map.get('confidence')
  if (typeof confidence === 'number' && confidence >= 0 && confidence <= 1) item.confidence = confidence
  const embedding = decodeEmbedding(map.get('embedding'))
  if (embedding) item.embedding = embedding
  return { item, meta }
}

/**
 * The fields recall filters on, read without decoding text or vector (cheap; used by the index).
 * `undefined` for an item {@link readMemory} would reject.
 */
export interface MemoryMeta {
  id: string
  scope: string
  kind: MemoryKind
  tags: string[]
  createdAt: number
  updatedAt: number
  validFrom?: number
  validTo?: number
  expiresAt?: number
  supersededBy?: string
  supersedes?: string
  embeddingModel?: string
}

/**
 * Read only the filterable fields of an item (no text copy, no vector decoding) — what the index
 * keeps for every item. Accepts exactly the items {@link readMemory} accepts.
 */
export function readMemoryMeta(id: string, map: unknown, scope: string): MemoryMeta | undefined {
  if (!(map instanceof Y.Map)) return undefined
  const kind = map.get('kind')
  const createdAt = map.get('createdAt')
  const updatedAt = map.get('updatedAt')
  if (typeof map.get('text') !== 'string' || typeof map.get('scope') !== 'string' || !isKind(kind)) return undefined
  if (!isTime(createdAt) || !isTime(updatedAt) || !isSource(map.get('source'))) return undefined
  const tags = map.get('tags')
  const meta: MemoryMeta = {
    id,
    scope,
    kind,
    tags: Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [],
    createdAt,
    updatedAt,
  }
  for (const field of ['validFrom', 'validTo', 'expiresAt'] as const) {
    const value = map.get(field)
    if (isTime(value)) meta[field] = value
  }
  for (const field of ['supersedes', 'supersededBy', 'embeddingModel'] as const) {
    const value = map.get(field)
    if (typeof value === 'string' && value.length > 0 && value.length <= 200) meta[field] = value
  }
  return meta
}

/** Project an item onto its {@link MemoryMeta}. */
export function memoryMeta(item: MemoryItem): MemoryMeta {
  const meta: MemoryMeta = {
    id: item.id,
    scope: item.scope,
    kind: item.kind,
    tags: item.tags,
    createdAt: item.createdAt,
    updatedAt: item.updatedAt,
  }
  if (item.validFrom !== undefined) meta.validFrom = item.validFrom
  if (item.validTo !== undefined) meta.validTo = item.validTo
  if (item.expiresAt !== undefined) meta.expiresAt = item.expiresAt
  if (item.supersededBy !== undefined) meta.supersededBy = item.supersededBy
  if (item.supersedes !== undefined) meta.supersedes = item.supersedes
  if (item.embeddingModel !== undefined) meta.embeddingModel = item.embeddingModel
  return meta
}

/** Read every valid item of an inner doc. */
export function readAllMemories(doc: Y.Doc, scope?: string): MemoryItem[] {
  const out: MemoryItem[] = []
  memoriesMap(doc).forEach((map, id) => {
    const item = readMemory(id, map, scope)
    if (item) out.push(item)
  })
  return out
}

function isKind(value: unknown): value is MemoryKind {
  return typeof value === 'string' && (MEMORY_KINDS as readonly string[]).includes(value)
}

function isTime(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}

function isSource(value: unknown): value is MemorySource {
  return typeof value === 'object' && value !== null && typeof (value as MemorySource).deviceId === 'string'
}

function readSource(source: MemorySource): MemorySource {
  const out: MemorySource = { deviceId: source.deviceId }
  if (typeof source.sessionId === 'string') out.sessionId = source.sessionId
  if (typeof source.turnId === 'string') out.turnId = source.turnId
  // Kept only in the form import writes: a reader must never show a malformed value as an account.
  if (typeof source.accountId === 'string' && /^[0-9a-f]{32}$/.test(source.accountId)) out.accountId = source.accountId
  return out
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    if (!(a instanceof Uint8Array) || !(b instanceof Uint8Array) || a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
    return true
  }
  return JSON.stringify(a) === JSON.stringify(b)
}
