/**
 * `dev.memory`: long-term memory items across the scopes this device holds. Reads are synchronous
 * against the local replicas; writes resolve once sealed and durably stored locally.
 *
 * @module
 */
import MiniSearch from 'minisearch'
import * as Y from 'yjs'
import {
  deleteMemory,
  insertMemory,
  MEMORY_KINDS,
  memoriesMap,
  patchMemory,
  readAllMemories,
  readMemory,
  type MemoryItem,
  type MemoryKind,
} from '../crdt/memory.js'
import { NotFoundError } from '../errors.js'
import type { Replica } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import { randomId } from './ids.js'
import {
  optionalLimit,
  optionalNumber,
  requireId,
  requireObject,
  requireOneOf,
  requireTags,
  requireText,
} from './validate.js'

export type { MemoryItem, MemoryKind } from '../crdt/memory.js'

/** The replicas a facade API works on. */
export interface ScopeReplicas {
  readonly deviceId: string
  /** The replica of a scope this device holds; throws `ValidationError` / `ScopeAccessError`. */
  replica(scope: unknown): Replica
  /** Every replica this device holds. */
  replicas(): Replica[]
  /** Throws `ClosedError` after close. */
  assertOpen(): void
}

/** Input of {@link MemoryApi.remember}. */
export interface RememberInput {
  text: string
  /** Default `'personal'`. */
  scope?: string
  /** Default `'fact'`. */
  kind?: MemoryKind
  tags?: string[]
  /** 0..1. */
  confidence?: number
  /** Epoch ms after which the item is hidden. */
  expiresAt?: number
  /** Link the memory to the conversation it came from. */
  sessionId?: string
  turnId?: string
}

/** Fields {@link MemoryApi.update} may change. */
export interface MemoryPatch {
  text?: string
  tags?: string[]
  kind?: MemoryKind
  confidence?: number
  expiresAt?: number
}

/** Filters of {@link MemoryApi.list}. */
export interface ListQuery {
  scope?: string
  /** Items carrying every one of these tags. */
  tags?: string[]
  kind?: MemoryKind
}

/** Query of {@link MemoryApi.recall}. */
export interface RecallQuery extends ListQuery {
  /** Free text; ranked by full-text relevance. Without it, the newest items come first. */
  text?: string
  /** Most results; default 10. */
  limit?: number
}

/** A change to one memory item. */
export interface MemoryChange {
  type: 'added' | 'updated' | 'removed'
  id: string
  scope: string
  /** The item after the change (absent for `removed`). */
  item?: MemoryItem
  /** `local` for writes on this device, `remote` for changes that arrived by sync. */
  origin: 'local' | 'remote'
}

/** Events of {@link MemoryApi}. */
export interface MemoryEvents {
  change: (event: MemoryChange) => void
}

interface IndexedDoc {
  id: string
  text: string
  tags: string
}

/** Long-term memory. */
export class MemoryApi {
  private readonly emitter = new Emitter<MemoryEvents>()
  private readonly index = new MiniSearch<IndexedDoc>({
    fields: ['text', 'tags'],
    searchOptions: { boost: { tags: 1.5 }, prefix: true, fuzzy: 0.2, combineWith: 'OR' },
  })

  /** @internal built by `ContextSync`. */
  constructor(private readonly scopes: ScopeReplicas) {
    for (const replica of scopes.replicas()) this.watch(replica)
  }

  /**
   * Remember something. Resolves with the stored item once it is sealed and durable locally.
   *
   * @example
   * ```ts
   * const item = await dev.memory.remember({ text: 'Prefers aisle seats', kind: 'preference', tags: ['travel'] })
   * ```
   */
  async remember(input: RememberInput): Promise<MemoryItem> {
    this.scopes.assertOpen()
    const fields = requireObject(input, 'remember(input)')
    const text = requireText(fields.text, 'text')
    const replica = this.scopes.replica(fields.scope ?? 'personal')
    const kind = requireOneOf(fields.kind, MEMORY_KINDS, 'kind', 'fact')
    const tags = requireTags(fields.tags)
    const confidence = optionalNumber(fields.confidence, 'confidence', 0, 1)
    const expiresAt = optionalNumber(fields.expiresAt, 'expiresAt', 0)
    const now = Date.now()
    const item: MemoryItem = {
      id: randomId(),
      text,
      scope: replica.scope,
      kind,
      tags,
      createdAt: now,
      updatedAt: now,
      source: { deviceId: this.scopes.deviceId },
    }
    if (fields.sessionId !== undefined) item.source.sessionId = requireId(fields.sessionId, 'sessionId')
    if (fields.turnId !== undefined) item.source.turnId = requireId(fields.turnId, 'turnId')
    if (confidence !== undefined) item.confidence = confidence
    if (expiresAt !== undefined) item.expiresAt = expiresAt
    replica.inner.transact(() => insertMemory(replica.inner, item))
    await replica.whenFlushed()
    return { ...item, tags: [...item.tags], source: { ...item.source } }
  }

  /** The item with this id, or `undefined`. Synchronous, local. */
  get(id: string): MemoryItem | undefined {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const found = this.locate(id)
    return found && visible(found.item) ? found.item : undefined
  }

  /** Items matching every given filter, newest first. */
  list(query: ListQuery = {}): MemoryItem[] {
    this.scopes.assertOpen()
    const filter = this.filter(query)
    const out: MemoryItem[] = []
    for (const replica of filter.replicas) {
      for (const item of readAllMemories(replica.inner)) if (filter.accepts(item)) out.push(item)
    }
    return out.sort(newestFirst)
  }

  /** Items ranked by relevance to `text` (best first), within the filters; newest first without text. */
  recall(query: RecallQuery): MemoryItem[] {
    this.scopes.assertOpen()
    const fields = requireObject(query, 'recall(query)')
    const limit = optionalLimit(fields.limit, 'limit', 10)
    if (fields.text === undefined) return this.list(query).slice(0, limit)
    const text = requireText(fields.text, 'text')
    const filter = this.filter(query)
    const out: MemoryItem[] = []
    for (const result of this.index.search(text)) {
      const found = this.locate(String(result.id))
      if (found && filter.accepts(found.item)) out.push(found.item)
      if (out.length >= limit) break
    }
    return out
  }

  /** Change fields of an item. Throws `NotFoundError` when there is no such item here. */
  async update(id: string, patch: MemoryPatch): Promise<MemoryItem> {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const fields = requireObject(patch, 'update(patch)')
    const changes: Partial<MemoryItem> = {}
    if (fields.text !== undefined) changes.text = requireText(fields.text, 'text')
    if (fields.tags !== undefined) changes.tags = requireTags(fields.tags)
    if (fields.kind !== undefined) changes.kind = requireOneOf(fields.kind, MEMORY_KINDS, 'kind')
    if (fields.confidence !== undefined) changes.confidence = optionalNumber(fields.confidence, 'confidence', 0, 1)
    if (fields.expiresAt !== undefined) changes.expiresAt = optionalNumber(fields.expiresAt, 'expiresAt', 0)
    const found = this.locate(id)
    if (!found) throw new NotFoundError(`no memory item with id '${id}' on this device`)
    const { replica } = found
    replica.inner.transact(() => patchMemory(replica.inner, id, { ...changes, updatedAt: Date.now() }))
    await replica.whenFlushed()
    return this.locate(id)!.item
  }

  /**
   * Forget an item everywhere: delete it, then compact this scope's sealed log so no envelope
   * holding its text survives here; other devices drop the covered envelopes as the compaction
   * syncs to them. Resolves `false` when there was no such item.
   */
  async forget(id: string): Promise<boolean> {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const found = this.locate(id)
    if (!found) return false
    found.replica.inner.transact(() => deleteMemory(found.replica.inner, id))
    await found.replica.compactNow()
    return true
  }

  /** Subscribe to changes (local and remote). Returns an unsubscribe function. */
  on<E extends keyof MemoryEvents>(event: E, listener: MemoryEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /** @internal */
  close(): void {
    this.emitter.clear()
  }

  private locate(id: string): { replica: Replica; item: MemoryItem } | undefined {
    for (const replica of this.scopes.replicas()) {
      const item = readMemory(id, memoriesMap(replica.inner).get(id))
      if (item) return { replica, item }
    }
    return undefined
  }

  private filter(query: ListQuery): { replicas: Replica[]; accepts(item: MemoryItem): boolean } {
    const fields = requireObject(query, 'query')
    const replicas = fields.scope === undefined ? this.scopes.replicas() : [this.scopes.replica(fields.scope)]
    const tags = requireTags(fields.tags)
    const kind = fields.kind === undefined ? undefined : requireOneOf(fields.kind, MEMORY_KINDS, 'kind')
    const scopes = new Set(replicas.map((r) => r.scope))
    return {
      replicas,
      accepts: (item) =>
        scopes.has(item.scope) &&
        visible(item) &&
        (kind === undefined || item.kind === kind) &&
        tags.every((t) => item.tags.includes(t)),
    }
  }

  private watch(replica: Replica): void {
    const memories = memoriesMap(replica.inner)
    for (const item of readAllMemories(replica.inner)) this.reindex(item.id, item)
    memories.observeDeep((events, transaction) => {
      const origin = transaction.local ? 'local' : 'remote'
      const touched = new Map<string, 'added' | 'updated' | 'removed'>()
      for (const event of events) {
        if (event.target === memories) {
          for (const [id, change] of (event as Y.YMapEvent<unknown>).changes.keys) {
            touched.set(id, change.action === 'add' ? 'added' : change.action === 'delete' ? 'removed' : 'updated')
          }
        } else {
          const id = event.path[0]
          if (typeof id === 'string' && !touched.has(id)) touched.set(id, 'updated')
        }
      }
      for (const [id, type] of touched) {
        const item = readMemory(id, memories.get(id))
        this.reindex(id, item)
        const change: MemoryChange = { type: item ? type : 'removed', id, scope: replica.scope, origin }
        if (item) change.item = item
        this.emitter.emit('change', change)
      }
    })
  }

  private reindex(id: string, item: MemoryItem | undefined): void {
    if (this.index.has(id)) this.index.discard(id)
    if (item) this.index.add({ id, text: item.text, tags: item.tags.join(' ') })
  }
}

function visible(item: MemoryItem): boolean {
  return item.expiresAt === undefined || item.expiresAt > Date.now()
}

function newestFirst(a: MemoryItem, b: MemoryItem): number {
  return b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1)
}
