/**
 * `dev.memory`: long-term memory items across the scopes this device holds. Reads are synchronous
 * against the local replicas; writes resolve once sealed and durably stored locally.
 *
 * The model (WIRE.md "Inner doc of a scope", `memories`): text, kind, tags, provenance, confidence,
 * when the fact is true in the world (`validFrom`/`validTo`), when it disappears (`expiresAt`),
 * version history (`supersede`, `history`) and an optional embedding. Recall is local: MiniSearch
 * full-text ranking, cosine similarity over embeddings, reciprocal-rank fusion of both — no model
 * is ever called by the library; the host app may plug its own in through `remember(input, {
 * reconcile })`.
 *
 * This file is the API. Its types are in `memory-types.ts`, input checking in `memory-input.ts`,
 * the signed export file and its import in `memory-file/`, the recall index in `recall-index.ts`.
 *
 * @module
 */
import * as Y from 'yjs'
import {
  deleteMemory,
  insertMemory,
  MEMORY_KINDS,
  memoriesMap,
  patchMemory,
  readMemory,
  readMemoryWithMeta,
  readMemoryMeta,
  type MemoryFieldsPatch,
  type MemoryItem,
  type MemoryMeta,
} from '../crdt/memory.js'
import { NotFoundError, ValidationError } from '../errors.js'
import type { Replica } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import type { DeviceContext } from './device-context.js'
import { requireEmbedding, requireLabel } from './check-json-args.js'
import { exportScope, exportSigner } from './memory-file/export.js'
import { importMemories } from './memory-file/import.js'
import type { ImportSource } from './memory-file/format.js'
import { ExpirySweeper } from './memory-expiry.js'
import { buildItem, buildPatch, copyItem, isExpired, requireDecision } from './memory-input.js'
import type {
  ExportOptions,
  ImportOptions,
  ImportReport,
  ListQuery,
  MemoryChange,
  MemoryEvents,
  MemoryExport,
  MemoryPatch,
  RecallHit,
  RecallQuery,
  ReconcileDecision,
  ReconcileFn,
  RememberInput,
  RememberOptions,
  RememberResult,
  SupersedeInput,
} from './memory-types.js'
import { indexKey, reciprocalRankFusion, RecallIndex, type IndexHit } from './recall-index.js'
import { checkValidity, optionalLimit, optionalNumber, requireId, requireObject, requireOneOf, requireTags, requireText } from './check-args.js'

/** The replicas the memory API works on (declared with the device context). */
export type { ScopeReplicas } from './device-context.js'

const DEFAULT_CANDIDATES = 5
/** Candidates taken from each list before fusing text and vector rankings. */
const FUSION_POOL_MIN = 50

/** Long-term memory. */
export class MemoryApi {
  private readonly emitter = new Emitter<MemoryEvents>()
  private readonly index = new RecallIndex((scope, id) => this.read(scope, id))
  private readonly expiry: ExpirySweeper

  /** @internal built by `ContextSync`. */
  constructor(private readonly context: DeviceContext) {
    this.expiry = new ExpirySweeper(this.index, context)
    // Scopes granted while the device runs get their replica later; watch those too.
    context.eachReplica((replica) => this.watch(replica))
  }

  /**
   * Remember something. Resolves with the stored item once it is sealed and durable locally.
   *
   * With `options.reconcile`, the host decides first how the new memory relates to the most
   * similar existing ones (ADD it, UPDATE one, SUPERSEDE one, or NOOP) and the call resolves with
   * a {@link RememberResult}.
   *
   * @example
   * ```ts
   * const item = await dev.memory.remember({ text: 'Prefers aisle seats', kind: 'preference', tags: ['travel'] })
   *
   * const { action, item: kept } = await dev.memory.remember(
   *   { text: 'Now prefers window seats', kind: 'preference', tags: ['travel'] },
   *   { reconcile: async (input, similar) => askMyLlm(input, similar) }, // → { action: 'SUPERSEDE', id }
   * )
   * ```
   */
  async remember(input: RememberInput): Promise<MemoryItem>
  async remember(input: RememberInput, options: RememberOptions): Promise<RememberResult>
  async remember(input: RememberInput, options?: RememberOptions): Promise<MemoryItem | RememberResult> {
    this.context.assertOpen()
    const fields = requireObject(input, 'remember(input)')
    const replica = this.context.replica(fields.scope ?? 'personal')
    const item = buildItem(fields, replica.scope, this.context.deviceId, {})
    if (options === undefined) {
      replica.inner.transact(() => insertMemory(replica.inner, item))
      await replica.whenFlushed()
      return copyItem(item)
    }
    const opts = requireObject(options, 'remember(input, options)')
    if (opts.reconcile !== undefined && typeof opts.reconcile !== 'function') {
      throw new ValidationError('options.reconcile must be a function (input, similar) => decision')
    }
    const candidates = optionalLimit(opts.candidates, 'options.candidates', DEFAULT_CANDIDATES)
    const reconcile = opts.reconcile as ReconcileFn | undefined
    if (!reconcile) return this.apply({ action: 'ADD' }, item, replica)
    const similar = this.recallWithScores({
      text: item.text,
      scope: replica.scope,
      limit: candidates,
      ...(item.embedding && { embedding: item.embedding }),
      ...(item.embeddingModel !== undefined && { embeddingModel: item.embeddingModel }),
    })
    const { id: _id, createdAt: _c, updatedAt: _u, ...proposal } = copyItem(item)
    const decision = await reconcile(proposal, similar)
    this.context.assertOpen()
    return this.apply(requireDecision(decision), item, replica)
  }

  /** The item with this id (superseded versions included), or `undefined`. Synchronous, local. */
  get(id: string): MemoryItem | undefined {
    this.context.assertOpen()
    requireId(id, 'id')
    const found = this.locate(id)
    return found && !isExpired(found.item, Date.now()) ? found.item : undefined
  }

  /** Items matching every given filter, newest first. Superseded and expired items are left out. */
  list(query: ListQuery = {}): MemoryItem[] {
    this.context.assertOpen()
    const fields = requireObject(query, 'list(query)')
    const limit = optionalLimit(fields.limit, 'limit', Infinity)
    const filter = this.filter(fields, Date.now())
    const metas = this.index.all(filter.accept).sort(newestFirst)
    const out: MemoryItem[] = []
    for (const meta of metas) {
      if (out.length >= limit) break
      const item = this.read(meta.scope, meta.id)
      if (item) out.push(item)
    }
    return out
  }

  /**
   * The memories most relevant to a query, best first, within the filters — local and
   * synchronous, over every scope this device holds (or `scope`).
   *
   * - `text`: MiniSearch BM25+ ranking over text and tags (tags boosted); exact terms first,
   *   widened to prefixes and small typos when that finds fewer than `limit` (or, with an
   *   embedding too, the fusion pool) memories.
   * - `embedding`: cosine similarity against stored embeddings of the same dimension (and model).
   * - both: reciprocal-rank fusion of the two lists (`Σ 1/(60 + rank)`, top `max(4·limit, 50)` of
   *   each), so a memory that ranks well in both comes first and neither scale dominates.
   * - neither: the newest items.
   *
   * Superseded versions (unless `includeSuperseded`) and expired items never match.
   *
   * @example
   * ```ts
   * dev.memory.recall({ text: 'seat preference', embedding: await embed('seat preference'), tags: ['travel'], limit: 5 })
   * ```
   */
  recall(query: RecallQuery): MemoryItem[] {
    return this.recallWithScores(query).map((hit) => hit.item)
  }

  /** {@link recall}, with each result's score and ranks. */
  recallWithScores(query: RecallQuery): RecallHit[] {
    this.context.assertOpen()
    const fields = requireObject(query, 'recall(query)')
    const limit = optionalLimit(fields.limit, 'limit', 10)
    const text = fields.text === undefined ? undefined : requireText(fields.text, 'text')
    const embedding = fields.embedding === undefined ? undefined : requireEmbedding(fields.embedding)
    const model = fields.embeddingModel === undefined ? undefined : requireLabel(fields.embeddingModel, 'embeddingModel')
    const filter = this.filter(fields, Date.now())
    if (text === undefined && embedding === undefined) {
      return this.list({ ...(fields as ListQuery), limit }).map((item) => ({ item, score: 0 }))
    }
    const both = text !== undefined && embedding !== undefined
    const pool = both ? Math.max(limit * 4, FUSION_POOL_MIN) : limit
    const textHits = text === undefined ? [] : this.index.searchText(text, filter.accept, pool, filter.selective)
    const vectorHits = embedding === undefined ? [] : this.index.searchVector(embedding, filter.accept, pool, model)
    const textRank = rankMap(textHits)
    const vectorRank = rankMap(vectorHits)
    let ranked: Array<{ meta: MemoryMeta; score: number }>
    if (!both) {
      ranked = text !== undefined ? textHits : vectorHits
    } else {
      const fused = reciprocalRankFusion([textHits, vectorHits])
      const metas = new Map<string, MemoryMeta>()
      for (const hit of [...textHits, ...vectorHits]) metas.set(indexKey(hit.meta.scope, hit.meta.id), hit.meta)
      ranked = [...fused].map(([key, score]) => ({ meta: metas.get(key)!, score }))
      ranked.sort(
        (a, b) =>
          b.score - a.score ||
          (vectorRank.get(indexKey(b.meta.scope, b.meta.id))?.score ?? -Infinity) -
            (vectorRank.get(indexKey(a.meta.scope, a.meta.id))?.score ?? -Infinity) ||
          newestFirst(a.meta, b.meta),
      )
    }
    const out: RecallHit[] = []
    for (const { meta, score } of ranked) {
      if (out.length >= limit) break
      const item = this.read(meta.scope, meta.id)
      if (!item) continue
      const hit: RecallHit = { item, score }
      const key = indexKey(meta.scope, meta.id)
      const t = textRank.get(key)
      if (t) hit.text = { rank: t.rank, score: t.score }
      const v = vectorRank.get(key)
      if (v) hit.vector = { rank: v.rank, similarity: v.score }
      out.push(hit)
    }
    return out
  }

  /**
   * Change fields of an item. Throws `NotFoundError` when there is no such item here.
   *
   * @example
   * ```ts
   * await dev.memory.update(id, { tags: ['travel', 'flights'], expiresAt: null })
   * ```
   */
  async update(id: string, patch: MemoryPatch): Promise<MemoryItem> {
    this.context.assertOpen()
    requireId(id, 'id')
    const fields = requireObject(patch, 'update(patch)')
    const changes = buildPatch(fields)
    const found = this.locate(id)
    if (!found || isExpired(found.item, Date.now())) throw new NotFoundError(`no memory item with id '${id}' on this device`)
    checkValidity(
      'validFrom' in changes ? changes.validFrom : found.item.validFrom,
      'validTo' in changes ? changes.validTo : found.item.validTo,
    )
    const { replica } = found
    replica.inner.transact(() => patchMemory(replica.inner, id, { ...changes, updatedAt: Date.now() }))
    await replica.whenFlushed()
    return this.locate(id)!.item
  }

  /**
   * Replace a memory by a new version, keeping the old one as history: the new item names the old
   * in `supersedes`, the old one gets `supersededBy` and drops out of `list` and `recall` (see
   * {@link history}). The new version lives in the old one's scope; omitted kind and tags are
   * inherited.
   *
   * @example
   * ```ts
   * const next = await dev.memory.supersede(old.id, { text: 'Lives in Lisbon', validFrom: Date.now() })
   * dev.memory.history(next.id).map((m) => m.text) // ['Lives in Berlin', 'Lives in Lisbon']
   * ```
   */
  async supersede(id: string, next: SupersedeInput): Promise<MemoryItem> {
    this.context.assertOpen()
    requireId(id, 'id')
    const fields = requireObject(next, 'supersede(id, next)')
    if (fields.scope !== undefined) throw new ValidationError('supersede(id, next): the new version stays in the scope of the old one; omit scope')
    const found = this.locate(id)
    if (!found || isExpired(found.item, Date.now())) throw new NotFoundError(`no memory item with id '${id}' on this device`)
    const { item, replica } = this.prepareSupersede(found, fields)
    await replica.whenFlushed()
    return copyItem(item)
  }

  /**
   * Every version of the memory `id` belongs to (`supersedes` chains, both directions), oldest
   * first. Expired versions are gone; an unknown id gives `[]`.
   */
  history(id: string): MemoryItem[] {
    this.context.assertOpen()
    requireId(id, 'id')
    const found = this.locate(id)
    if (!found) return []
    const scope = found.replica.scope
    // Walk back to the oldest version still here, then collect everything that descends from it.
    let root = found.item
    const seen = new Set<string>([root.id])
    while (root.supersedes !== undefined && !seen.has(root.supersedes)) {
      const older = this.read(scope, root.supersedes)
      if (!older) break
      seen.add(older.id)
      root = older
    }
    // Oldest first by the supersede chain itself (timestamps can tie, or disagree across devices'
    // clocks); versions at the same depth (concurrent supersedes) by creation time, then id.
    const out: Array<{ item: MemoryItem; depth: number }> = []
    const visited = new Set<string>()
    const queue: Array<[string, number]> = [[root.id, 0]]
    while (queue.length > 0) {
      const [current, depth] = queue.shift()!
      if (visited.has(current)) continue
      visited.add(current)
      const item = this.read(scope, current)
      if (!item) continue
      out.push({ item, depth })
      for (const next of this.index.successorsOf(scope, current)) queue.push([next, depth + 1])
    }
    const now = Date.now()
    return out
      .filter(({ item }) => !isExpired(item, now))
      .sort((a, b) => a.depth - b.depth || a.item.createdAt - b.item.createdAt || (a.item.id < b.item.id ? -1 : 1))
      .map(({ item }) => item)
  }

  /**
   * Forget an item everywhere: delete it, then compact this scope's sealed log so no envelope
   * holding its text survives here; other devices drop the covered envelopes as the compaction
   * syncs to them. With `{ history: true }` every version of it goes. Resolves `false` when there
   * was no such item.
   */
  async forget(id: string, options: { history?: boolean } = {}): Promise<boolean> {
    this.context.assertOpen()
    requireId(id, 'id')
    const opts = requireObject(options, 'forget(id, options)')
    const found = this.locate(id)
    // An entry that does not read as a valid item (written by a buggy or hostile peer) can still
    // be forgotten by its id.
    const replica = found?.replica ?? this.context.replicas().find((r) => memoriesMap(r.inner).has(id))
    if (!replica) return false
    const ids = found && opts.history === true ? [id, ...this.history(id).map((m) => m.id)] : [id]
    replica.inner.transact(() => {
      for (const each of new Set(ids)) deleteMemory(replica.inner, each)
    })
    await replica.compactNow({ erasing: true })
    return true
  }

  /**
   * Export a scope's memories as signed JSONL: a header line naming the account and the signing
   * device (with its public key and root-signed certificate, so the file verifies on its own),
   * then one line per memory with this device's signature. Lines end with `\n`.
   *
   * @example
   * ```ts
   * const file = await dev.memory.export({ scope: 'personal' }).text()
   * const report = await otherDevice.memory.import(file) // { imported, skipped, rejected }
   * ```
   */
  export(options: ExportOptions): MemoryExport {
    this.context.assertOpen()
    const fields = requireObject(options, 'export(options)')
    const replica = this.context.replica(fields.scope)
    return exportScope(replica, exportSigner(this.context), fields.includeHistory !== false)
  }

  /**
   * Import a signed JSONL export (a string, lines, or a stream of chunks). Every line is verified
   * against the signer named in the header — a certified device of this account (registry), or,
   * for a file from another account, the certificate in the header checked against that account's
   * root key in the header. Only this account's files are trusted unless `options.trust` (or
   * `options.accountId`) names another; a trusted other account's memories are marked with
   * `source.accountId` and cannot pose as this account's (WIRE.md "Memory export").
   * Idempotent: memories whose id is already here are skipped. A line that fails is refused with
   * a `RejectCode` and reported; the rest still import.
   *
   * @example
   * ```ts
   * const report = await phone.memory.import(file)
   * // { accountId, signer, imported: 12, skipped: 0, rejected: [{ line: 5, code: RejectCode.BadSignature, … }] }
   * await phone.memory.import(fileFromAnotherAccount, { trust: [thatAccountId] })
   * ```
   */
  import(source: ImportSource, options: ImportOptions = {}): Promise<ImportReport> {
    return importMemories({ context: this.context, locate: (id) => this.locate(id) }, source, options)
  }

  /** Subscribe to changes (local and remote). Returns an unsubscribe function. */
  on<E extends keyof MemoryEvents>(event: E, listener: MemoryEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /**
   * @internal Defer background recall indexing (a device's power profile) or resume it; returns
   * the number of items still waiting to be indexed.
   */
  deferIndexing(deferred: boolean): number {
    this.index.defer(deferred)
    return this.index.backlog
  }

  /** @internal Items changed but not indexed yet. */
  get indexBacklog(): number {
    return this.index.backlog
  }

  /** @internal */
  close(): void {
    this.expiry.close()
    this.index.close()
    this.emitter.clear()
  }

  // ── internals ─────────────────────────────────────────────────────────────

  private async apply(decision: ReconcileDecision, item: MemoryItem, replica: Replica): Promise<RememberResult> {
    switch (decision.action) {
      case 'ADD':
        replica.inner.transact(() => insertMemory(replica.inner, item))
        await replica.whenFlushed()
        return { action: 'ADD', item: copyItem(item) }
      case 'UPDATE': {
        const target = this.requireTarget(decision.id, replica, 'UPDATE')
        const text = decision.text === undefined ? item.text : requireText(decision.text, 'reconcile UPDATE text')
        const patch: MemoryFieldsPatch = {
          text,
          tags: [...new Set([...target.tags, ...item.tags])],
          updatedAt: Date.now(),
        }
        for (const key of ['confidence', 'validFrom', 'validTo', 'expiresAt', 'embedding', 'embeddingModel'] as const) {
          if (item[key] !== undefined) (patch as Record<string, unknown>)[key] = item[key]
        }
        replica.inner.transact(() => patchMemory(replica.inner, target.id, patch))
        await replica.whenFlushed()
        return { action: 'UPDATE', item: this.read(replica.scope, target.id), previous: target }
      }
      case 'SUPERSEDE': {
        const target = this.requireTarget(decision.id, replica, 'SUPERSEDE')
        if (target.supersededBy !== undefined) {
          throw new ValidationError(`reconcile answered SUPERSEDE of '${target.id}', which was already superseded by '${target.supersededBy}'`)
        }
        const { item: next } = this.prepareSupersede({ replica, item: target }, {}, item)
        await replica.whenFlushed()
        return { action: 'SUPERSEDE', item: copyItem(next), previous: target }
      }
      case 'NOOP': {
        const existing = decision.id === undefined ? undefined : this.requireTarget(decision.id, replica, 'NOOP')
        return { action: 'NOOP', item: existing }
      }
    }
  }

  private requireTarget(id: string, replica: Replica, action: string): MemoryItem {
    const found = this.locate(id)
    if (!found || isExpired(found.item, Date.now())) {
      throw new ValidationError(`reconcile answered ${action} with id '${id}', but there is no such memory on this device`)
    }
    if (found.replica !== replica) {
      throw new ValidationError(
        `reconcile answered ${action} with id '${id}' of scope '${found.replica.scope}', but the new memory is in scope '${replica.scope}'`,
      )
    }
    return found.item
  }

  /** Write a superseding version (from `fields`, or a prepared `prepared` item); returns it. */
  private prepareSupersede(
    found: { replica: Replica; item: MemoryItem },
    fields: Record<string, unknown>,
    prepared?: MemoryItem,
  ): { item: MemoryItem; replica: Replica } {
    const { replica, item: old } = found
    if (old.supersededBy !== undefined) {
      throw new ValidationError(`memory '${old.id}' was already superseded by '${old.supersededBy}'; supersede the current version`)
    }
    const item = prepared ?? buildItem(fields, replica.scope, this.context.deviceId, { kind: old.kind, tags: old.tags })
    item.supersedes = old.id
    const now = Date.now()
    replica.inner.transact(() => {
      insertMemory(replica.inner, item)
      patchMemory(replica.inner, old.id, { supersededBy: item.id, updatedAt: now })
    })
    return { item, replica }
  }

  private read(scope: string, id: string): MemoryItem | undefined {
    const replica = this.context.replicas().find((r) => r.scope === scope)
    return replica && readMemory(id, memoriesMap(replica.inner).get(id), scope)
  }

  private locate(id: string): { replica: Replica; item: MemoryItem } | undefined {
    for (const replica of this.context.replicas()) {
      const item = readMemory(id, memoriesMap(replica.inner).get(id), replica.scope)
      if (item) return { replica, item }
    }
    return undefined
  }

  private filter(fields: Record<string, unknown>, now: number): { accept(meta: MemoryMeta): boolean; selective: boolean } {
    const replicas = fields.scope === undefined ? this.context.replicas() : [this.context.replica(fields.scope)]
    const tags = requireTags(fields.tags)
    const kind = fields.kind === undefined ? undefined : requireOneOf(fields.kind, MEMORY_KINDS, 'kind')
    const validAt = optionalNumber(fields.validAt, 'validAt')
    if (fields.includeSuperseded !== undefined && typeof fields.includeSuperseded !== 'boolean') {
      throw new ValidationError('includeSuperseded must be a boolean')
    }
    const includeSuperseded = fields.includeSuperseded === true
    const scopes = new Set(replicas.map((r) => r.scope))
    return {
      // Tags, kind and validity usually keep a small share of the memories.
      selective: tags.length > 0 || kind !== undefined || validAt !== undefined,
      accept: (meta) =>
        scopes.has(meta.scope) &&
        (meta.expiresAt === undefined || meta.expiresAt > now) &&
        (includeSuperseded || meta.supersededBy === undefined) &&
        (kind === undefined || meta.kind === kind) &&
        (validAt === undefined || ((meta.validFrom === undefined || meta.validFrom <= validAt) && (meta.validTo === undefined || meta.validTo > validAt))) &&
        tags.every((t) => meta.tags.includes(t)),
    }
  }

  private watch(replica: Replica): void {
    const memories = memoriesMap(replica.inner)
    const scope = replica.scope
    // Only the filterable fields now; text and vectors are indexed in the background.
    memories.forEach((map, id) => {
      const meta = readMemoryMeta(id, map, scope)
      if (meta) this.index.set(meta)
    })
    // Items that expired while the device was closed are swept at once.
    this.expiry.schedule(this.index.nextExpiry(-Infinity))
    memories.observeDeep((events, transaction) => {
      const origin = transaction.local ? 'local' : 'remote'
      const touched = new Map<string, 'added' | 'updated' | 'removed'>()
      for (const event of events) {
        if (event.target === memories) {
          for (const [id, change] of (event as Y.YMapEvent<unknown>).keys) {
            touched.set(id, change.action === 'add' ? 'added' : change.action === 'delete' ? 'removed' : 'updated')
          }
        } else {
          const id = event.path[0]
          if (typeof id === 'string' && !touched.has(id)) touched.set(id, 'updated')
        }
      }
      let expiredArrived = false
      const now = Date.now()
      for (const [id, type] of touched) {
        const read = readMemoryWithMeta(id, memories.get(id), scope)
        const item = read?.item
        if (read) this.index.set(read.meta)
        else this.index.remove(scope, id)
        if (item && isExpired(item, now)) expiredArrived = true
        const change: MemoryChange = { type: item ? type : 'removed', id, scope, origin }
        if (item) change.item = item
        this.emitter.emit('change', change)
      }
      this.expiry.schedule(expiredArrived && replica.writable ? now : undefined)
    })
  }
}

function rankMap(hits: IndexHit[]): Map<string, { rank: number; score: number }> {
  const out = new Map<string, { rank: number; score: number }>()
  hits.forEach((hit, i) => out.set(indexKey(hit.meta.scope, hit.meta.id), { rank: i + 1, score: hit.score }))
  return out
}

function newestFirst(a: MemoryMeta, b: MemoryMeta): number {
  return b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1)
}
