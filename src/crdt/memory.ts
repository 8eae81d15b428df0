/**
 * Inner schema for memory items (DESIGN §6). Plain Yjs; no crypto, no I/O.
 *
 * Layout in a scope's inner doc: `memories: Y.Map<Y.Map<unknown>>`, one nested map per item keyed
 * by id, one key per field — so concurrent edits of different fields on two devices both survive
 * (per-field last-writer-wins), and deleting the item deletes (and, with GC, erases) every field.
 *
 * @module
 */
import * as Y from 'yjs'

/** Kinds of memory, after mem0/Letta: what the assistant should treat the text as. */
export const MEMORY_KINDS = ['fact', 'preference', 'instruction', 'event', 'summary'] as const
/** One of {@link MEMORY_KINDS}. */
export type MemoryKind = (typeof MEMORY_KINDS)[number]

/** Where a memory came from. */
export interface MemorySource {
  deviceId: string
  sessionId?: string
  turnId?: string
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
  source: MemorySource
  /** 0..1; how sure the writer was. */
  confidence?: number
  /** Epoch ms after which the item is no longer shown (retention / TTL). */
  expiresAt?: number
}

/** Name of the memory map inside an inner doc. */
export const MEMORIES_KEY = 'memories'

/** The memory map of an inner doc. */
export function memoriesMap(doc: Y.Doc): Y.Map<Y.Map<unknown>> {
  return doc.getMap<Y.Map<unknown>>(MEMORIES_KEY)
}

const FIELDS = ['text', 'scope', 'kind', 'tags', 'createdAt', 'updatedAt', 'source', 'confidence', 'expiresAt'] as const

/** Write a whole item (insert). Call inside a transaction. */
export function insertMemory(doc: Y.Doc, item: MemoryItem): void {
  const map = new Y.Map<unknown>()
  for (const field of FIELDS) {
    const value = item[field]
    if (value !== undefined) map.set(field, value)
  }
  memoriesMap(doc).set(item.id, map)
}

/** Overwrite some fields of an existing item. Returns false when the item does not exist. */
export function patchMemory(doc: Y.Doc, id: string, patch: Partial<Omit<MemoryItem, 'id'>>): boolean {
  const map = memoriesMap(doc).get(id)
  if (!(map instanceof Y.Map)) return false
  for (const field of FIELDS) {
    if (!(field in patch)) continue
    const value = patch[field]
    if (value === undefined) map.delete(field)
    else if (!sameValue(map.get(field), value)) map.set(field, value)
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
 * wrong type yields `undefined` rather than a malformed object.
 */
export function readMemory(id: string, map: unknown): MemoryItem | undefined {
  if (!(map instanceof Y.Map)) return undefined
  const text = map.get('text')
  const scope = map.get('scope')
  const kind = map.get('kind')
  const tags = map.get('tags')
  const createdAt = map.get('createdAt')
  const updatedAt = map.get('updatedAt')
  const source = map.get('source')
  if (typeof text !== 'string' || typeof scope !== 'string' || !isKind(kind)) return undefined
  if (typeof createdAt !== 'number' || typeof updatedAt !== 'number') return undefined
  if (!isSource(source)) return undefined
  const item: MemoryItem = {
    id,
    text,
    scope,
    kind,
    tags: Array.isArray(tags) ? tags.filter((t): t is string => typeof t === 'string') : [],
    createdAt,
    updatedAt,
    source: { ...source },
  }
  const confidence = map.get('confidence')
  if (typeof confidence === 'number') item.confidence = confidence
  const expiresAt = map.get('expiresAt')
  if (typeof expiresAt === 'number') item.expiresAt = expiresAt
  return item
}

/** Read every valid item of an inner doc. */
export function readAllMemories(doc: Y.Doc): MemoryItem[] {
  const out: MemoryItem[] = []
  memoriesMap(doc).forEach((map, id) => {
    const item = readMemory(id, map)
    if (item) out.push(item)
  })
  return out
}

function isKind(value: unknown): value is MemoryKind {
  return typeof value === 'string' && (MEMORY_KINDS as readonly string[]).includes(value)
}

function isSource(value: unknown): value is MemorySource {
  return typeof value === 'object' && value !== null && typeof (value as MemorySource).deviceId === 'string'
}

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true
  return JSON.stringify(a) === JSON.stringify(b)
}
