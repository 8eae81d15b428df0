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
  type MemoryKind,
  type MemoryMeta,
} from '../crdt/memory.js'
import { RejectCode, type RejectCode as RejectCodeType } from '../crypto/codes.js'
import { ConfigError, ContextSyncError, NotFoundError, ValidationError } from '../errors.js'
import type { Replica } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'
import { ownCertificateBytes, type DeviceIdentity } from './identity.js'
import { randomId } from './ids.js'
import { requireEmbedding, requireLabel } from './json.js'
import {
  admitMemory,
  headerLine,
  memoryLine,
  readLines,
  requireAccountId,
  requireAccountIds,
  verifyHeader,
  verifyMemoryLine,
  type ExportSigner,
  type ImportingAccount,
  type ImportSource,
  type TrustedSigner,
} from './memory-export.js'
import { indexKey, reciprocalRankFusion, RecallIndex, type IndexHit } from './recall-index.js'
import {
  checkValidity,
  optionalLimit,
  optionalNumber,
  requireId,
  requireObject,
  requireOneOf,
  requireTags,
  requireText,
} from './validate.js'

export type { MemoryItem, MemoryKind, MemorySource } from '../crdt/memory.js'
export type { ImportSource } from './memory-export.js'

/** The replicas a facade API works on. */
export interface ScopeReplicas {
  readonly deviceId: string
  /** The replica of a scope this device holds; throws `ValidationError` / `ScopeAccessError`. */
  replica(scope: unknown): Replica
  /** Every replica this device holds. */
  replicas(): Replica[]
  /** Throws `ClosedError` after close. */
  assertOpen(): void
  /** Call `fn` for every replica held now and for each one opened later. */
  eachReplica(fn: (replica: Replica) => void): void
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
  /** Epoch ms from which the fact holds in the world. */
  validFrom?: number
  /** Epoch ms from which it no longer holds. */
  validTo?: number
  /** Epoch ms after which the item disappears on every device (and is erased from sealed logs). */
  expiresAt?: number
  /** A vector of the text, from the host app's embedding model. Stored as float32. */
  embedding?: Float32Array | number[]
  /** The model that produced `embedding`; recall then compares only vectors of the same model. */
  embeddingModel?: string
  /** Link the memory to the conversation it came from (the device is always this one). */
  source?: { sessionId?: string; turnId?: string }
  /** Shorthand for `source.sessionId`. */
  sessionId?: string
  /** Shorthand for `source.turnId`. */
  turnId?: string
}

/** Input of {@link MemoryApi.supersede}: the new version. Omitted kind and tags are inherited. */
export type SupersedeInput = Omit<RememberInput, 'scope'>

/**
 * Fields {@link MemoryApi.update} may change. `null` removes an optional field; `undefined` (or
 * absent) leaves it as it is.
 */
export interface MemoryPatch {
  text?: string
  tags?: string[]
  kind?: MemoryKind
  confidence?: number | null
  validFrom?: number | null
  validTo?: number | null
  expiresAt?: number | null
  embedding?: Float32Array | number[] | null
  embeddingModel?: string | null
}

/** Filters of {@link MemoryApi.list}. */
export interface ListQuery {
  /** One scope; default every scope this device holds. */
  scope?: string
  /** Items carrying every one of these tags. */
  tags?: string[]
  kind?: MemoryKind
  /** Only items true in the world at this time (`validFrom ≤ validAt < validTo`). */
  validAt?: number
  /** Include versions replaced by `supersede` (hidden by default). */
  includeSuperseded?: boolean
  /** Most results; default all (list) or 10 (recall). */
  limit?: number
}

/** Query of {@link MemoryApi.recall}. */
export interface RecallQuery extends ListQuery {
  /** Free text; ranked by full-text relevance (BM25+; prefixes and typos when exact terms find too little). */
  text?: string
  /** A query vector; ranked by cosine similarity against stored embeddings of the same dimension. */
  embedding?: Float32Array | number[]
  /** Compare only with embeddings of this model. */
  embeddingModel?: string
}

/** One recall result with how it ranked. */
export interface RecallHit {
  item: MemoryItem
  /**
   * Text only: the BM25+ score. Embedding only: the cosine similarity. Both: the reciprocal-rank-
   * fusion score `Σ 1/(60 + rank)`. Neither: 0 (newest first).
   */
  score: number
  /** Rank (1-based) and BM25+ score in the full-text list, when it was there. */
  text?: { rank: number; score: number }
  /** Rank (1-based) and cosine similarity in the vector list, when it was there. */
  vector?: { rank: number; similarity: number }
}

/** What the host's reconcile function sees of the new memory (the item it would add). */
export type ReconcileInput = Omit<MemoryItem, 'id' | 'createdAt' | 'updatedAt'>

/** A reconcile answer (mem0's ADD / UPDATE / DELETE→SUPERSEDE / NONE). */
export type ReconcileDecision =
  | { action: 'ADD' }
  | { action: 'UPDATE'; id: string; text?: string }
  | { action: 'SUPERSEDE'; id: string }
  | { action: 'NOOP'; id?: string }

/**
 * Decides how a new memory relates to similar existing ones — typically by asking the host's LLM.
 * The library never calls a model itself.
 */
export type ReconcileFn = (input: ReconcileInput, similar: RecallHit[]) => ReconcileDecision | Promise<ReconcileDecision>

/** Options of {@link MemoryApi.remember}. */
export interface RememberOptions {
  reconcile?: ReconcileFn
  /** How many similar memories (top-k by recall over text and embedding) to show it. Default 5. */
  candidates?: number
}

/** What {@link MemoryApi.remember} did when called with options. */
export interface RememberResult {
  action: ReconcileDecision['action']
  /** The added, updated or new superseding item; for NOOP the existing item named, if any. */
  item: MemoryItem | undefined
  /** UPDATE: the item before; SUPERSEDE: the replaced version. */
  previous?: MemoryItem
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

/** Options of {@link MemoryApi.export}. */
export interface ExportOptions {
  scope: string
  /** Include versions replaced by `supersede`. Default true. */
  includeHistory?: boolean
}

/** A signed JSONL export: iterate its lines (each ends with `\n`), or collect them with `text()`. */
export interface MemoryExport extends AsyncIterable<string> {
  /** The whole file. */
  text(): Promise<string>
}

/**
 * Options of {@link MemoryApi.import}. Files of this device's own account are always trusted;
 * a file of any other account is refused whole (`WrongAccount`) unless named in `trust` or
 * `accountId`.
 */
export interface ImportOptions {
  /** Import into this scope instead of the one each memory names. */
  scope?: string
  /**
   * Accept only files of this account (`WrongAccount` for every line of any other). Naming an
   * account here trusts it, as `trust: [accountId]` does.
   */
  accountId?: string
  /**
   * Other accounts whose files to accept (account ids, 32 lowercase hex characters). Their
   * memories are marked with `source.accountId`, and may not claim this account or its devices,
   * nor link to memories already here (WIRE.md "Memory export").
   */
  trust?: string[]
  /**
   * Also accept `kind: 'instruction'` memories from trusted other accounts (refused with
   * `NotGranted` otherwise). Default false: an instruction steers the assistant.
   */
  allowInstructions?: boolean
}

/** What {@link MemoryApi.import} did. */
export interface ImportReport {
  /** The account the file was exported from (when its header verified). */
  accountId?: string
  /** The device that signed it. */
  signer?: string
  imported: number
  /** Already present (same id) or already expired. */
  skipped: number
  /** Lines refused, with their 1-based line number and `RejectCode`. */
  rejected: Array<{ line: number; code: RejectCodeType; reason: string }>
}

const DEFAULT_CANDIDATES = 5
/** Candidates taken from each list before fusing text and vector rankings. */
const FUSION_POOL_MIN = 50
const IMPORT_BATCH = 256
const MAX_TIMER_MS = 2 ** 31 - 1

/** Long-term memory. */
export class MemoryApi {
  private readonly emitter = new Emitter<MemoryEvents>()
  private readonly index = new RecallIndex((scope, id) => this.read(scope, id))
  private sweepTimer: ReturnType<typeof setTimeout> | undefined
  private sweepAt = Infinity
  private lastSweep = -Infinity
  private closed = false

  /** @internal built by `ContextSync`. */
  constructor(
    private readonly scopes: ScopeReplicas,
    private readonly identity?: DeviceIdentity,
  ) {
    // Scopes granted while the device runs get their replica later; watch those too.
    scopes.eachReplica((replica) => this.watch(replica))
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
    this.scopes.assertOpen()
    const fields = requireObject(input, 'remember(input)')
    const replica = this.scopes.replica(fields.scope ?? 'personal')
    const item = this.buildItem(fields, replica.scope, {})
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
    this.scopes.assertOpen()
    return this.apply(requireDecision(decision), item, replica)
  }

  /** The item with this id (superseded versions included), or `undefined`. Synchronous, local. */
  get(id: string): MemoryItem | undefined {
    this.scopes.assertOpen()
    requireId(id, 'id')
    const found = this.locate(id)
    return found && !isExpired(found.item, Date.now()) ? found.item : undefined
  }

  /** Items matching every given filter, newest first. Superseded and expired items are left out. */
  list(query: ListQuery = {}): MemoryItem[] {
    this.scopes.assertOpen()
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
    this.scopes.assertOpen()
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
    this.scopes.assertOpen()
    requireId(id, 'id')
    const fields = requireObject(patch, 'update(patch)')
    const changes = this.buildPatch(fields)
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
    this.scopes.assertOpen()
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
    this.scopes.assertOpen()
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
    this.scopes.assertOpen()
    requireId(id, 'id')
    const opts = requireObject(options, 'forget(id, options)')
    const found = this.locate(id)
    // An entry that does not read as a valid item (written by a buggy or hostile peer) can still
    // be forgotten by its id.
    const replica = found?.replica ?? this.scopes.replicas().find((r) => memoriesMap(r.inner).has(id))
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
    this.scopes.assertOpen()
    const fields = requireObject(options, 'export(options)')
    const replica = this.scopes.replica(fields.scope)
    const includeHistory = fields.includeHistory !== false
    const signer = this.exportSigner()
    const now = Date.now()
    const items: MemoryItem[] = []
    memoriesMap(replica.inner).forEach((map, id) => {
      const item = readMemory(id, map, replica.scope)
      if (item && !isExpired(item, now) && (includeHistory || item.supersededBy === undefined)) items.push(item)
    })
    items.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
    async function* lines(): AsyncGenerator<string> {
      const exportId = randomId()
      yield headerLine(signer, replica.scope, items.length, now, exportId)
      let index = 0
      for (const item of items) yield memoryLine(signer, item, { exportId, index: ++index })
    }
    return {
      [Symbol.asyncIterator]: lines,
      text: async () => {
        let out = ''
        for await (const line of lines()) out += line
        return out
      },
    }
  }

  /**
   * Import a signed JSONL export (a string, lines, or a stream of chunks). Every line is verified
   * against the signer named in the header — a certified device of this account (registry), or,
   * for a file from another account, the certificate in the header checked against that account's
   * root key in the header. Only this account's files are trusted unless `options.trust` (or
   * `options.accountId`) names another; a trusted other account's memories are marked with
   * `source.accountId` and cannot pose as this account's (WIRE.md "Memory export").
   * Idempotent: memories whose id is already here are skipped. A line that fails is refused with
   * a {@link RejectCode} and reported; the rest still import.
   *
   * @example
   * ```ts
   * const report = await phone.memory.import(file)
   * // { accountId, signer, imported: 12, skipped: 0, rejected: [{ line: 5, code: RejectCode.BadSignature, … }] }
   * await phone.memory.import(fileFromAnotherAccount, { trust: [thatAccountId] })
   * ```
   */
  async import(source: ImportSource, options: ImportOptions = {}): Promise<ImportReport> {
    this.scopes.assertOpen()
    if (source === null || source === undefined || (typeof source !== 'string' && typeof source !== 'object')) {
      throw new ValidationError('import(source) takes a string, bytes, an iterable of lines or an async iterable of chunks')
    }
    const opts = requireObject(options, 'import(source, options)')
    const identity = this.identity
    if (!identity) throw new ConfigError('import needs the device identity; this MemoryApi was built without one')
    const targetScope = opts.scope === undefined ? undefined : this.scopes.replica(opts.scope).scope
    const expectAccount = opts.accountId === undefined ? undefined : requireAccountId(opts.accountId, 'accountId')
    const trusted = new Set(requireAccountIds(opts.trust, 'trust'))
    if (opts.allowInstructions !== undefined && typeof opts.allowInstructions !== 'boolean') {
      throw new ValidationError('options.allowInstructions must be a boolean')
    }
    const allowInstructions = opts.allowInstructions === true
    const report: ImportReport = { imported: 0, skipped: 0, rejected: [] }
    const registry = identity.registry
    const ownAccount = identity.account.accountId
    trusted.add(ownAccount)
    const seenIds = new Set<string>()
    const importing: ImportingAccount = {
      accountId: ownAccount,
      isOwnDevice: (deviceId) => deviceId === this.scopes.deviceId || registry.certificate(deviceId) !== undefined || registry.revocation(deviceId) !== undefined,
      holds: (deviceId, scope) => registry.holds(deviceId, scope),
      // Items of this file are locatable once a batch is written; those, and items an earlier
      // import brought from another account, are not the account's own.
      isOwnMemory: (id) => {
        if (seenIds.has(id)) return false
        const held = this.locate(id)?.item
        return held !== undefined && (held.source.accountId === undefined || held.source.accountId === ownAccount)
      },
    }
    let signer: TrustedSigner | undefined
    let headerFailure: { code: RejectCodeType; reason: string } | undefined
    const pending = new Map<Replica, MemoryItem[]>()
    const touched = new Set<Replica>()
    const flush = (): void => {
      for (const [replica, items] of pending) {
        replica.inner.transact(() => {
          for (const item of items) insertMemory(replica.inner, item)
        })
        touched.add(replica)
      }
      pending.clear()
    }
    let pendingCount = 0
    let lineNo = 0
    /** Numbers (`n`) of the authentic memory lines read, to report the missing ones. */
    const numbers = new Set<number>()
    const refuse = (code: RejectCodeType, reason: string, scope = targetScope ?? ''): void => {
      report.rejected.push({ line: lineNo, code, reason })
      // Counted and reported like any refused input (`dev.rejectionCounts()`, `dev.on('rejected')`).
      identity.reportRejection({
        code,
        reason: `import: ${reason}`,
        scope,
        roomId: '',
        source: 'import',
        line: lineNo,
        ...(signer !== undefined && { senderId: signer.deviceId }),
      })
    }
    const now = Date.now()
    for await (const line of readLines(source)) {
      lineNo++
      if (line.trim().length === 0) continue
      if (!signer && !headerFailure) {
        const header = verifyHeader(line, (accountId, deviceId) =>
          accountId === ownAccount ? registry.certificate(deviceId) : undefined,
        )
        if (!header.ok) headerFailure = { code: header.code, reason: `header: ${header.reason}` }
        else {
          const { accountId, deviceId } = header.value
          // The header verified: who sent it is known, even when it is refused.
          report.accountId = accountId
          report.signer = deviceId
          if (accountId === ownAccount && registry.revocation(deviceId)) {
            // Its key may be in other hands now, and `exportedAt` is its own claim: refuse it whole.
            headerFailure = { code: RejectCode.RevokedSender, reason: `header: signed by revoked device ${deviceId}` }
          } else if (expectAccount !== undefined && accountId !== expectAccount) {
            headerFailure = { code: RejectCode.WrongAccount, reason: `file is from account ${accountId}, not ${expectAccount}` }
          } else if (expectAccount === undefined && !trusted.has(accountId)) {
            // Anyone can make an account and sign a file with it: verifying proves the file
            // intact, not that its account is one to listen to (THREAT_MODEL.md "Someone who
            // hands you a file").
            headerFailure = {
              code: RejectCode.WrongAccount,
              reason: `file is from account ${accountId}, which is not trusted: an import trusts this device's own account and the accounts named in options.trust; to import it, pass import(lines, { trust: ['${accountId}'] })`,
            }
          } else {
            signer = header.value
            continue
          }
        }
        refuse(headerFailure.code, headerFailure.reason)
        continue
      }
      if (!signer) {
        refuse(headerFailure!.code, 'no trusted header')
        continue
      }
      const verified = verifyMemoryLine(line, signer)
      if (!verified.ok) {
        refuse(verified.code, verified.reason)
        continue
      }
      numbers.add(verified.value.index)
      if ('invalid' in verified.value) {
        refuse(RejectCode.BadPayload, verified.value.invalid)
        continue
      }
      const item = verified.value.item
      let replica: Replica
      try {
        replica = this.scopes.replica(targetScope ?? item.scope)
      } catch (error) {
        if (!(error instanceof ContextSyncError)) throw error
        refuse(RejectCode.NotGranted, `this device does not hold scope '${targetScope ?? item.scope}'`, targetScope ?? item.scope)
        continue
      }
      if (seenIds.has(item.id) || this.locate(item.id) || isExpired(item, now)) {
        // Before the rules below: nothing is written, and a file that went to another account
        // and came back skips the memories that were this account's instead of refusing them.
        report.skipped++
        continue
      }
      const admitted = admitMemory(item, signer, importing, allowInstructions)
      if (!admitted.ok) {
        refuse(admitted.code, admitted.reason, replica.scope)
        continue
      }
      const accepted = admitted.value
      seenIds.add(accepted.id)
      accepted.scope = replica.scope
      let list = pending.get(replica)
      if (!list) pending.set(replica, (list = []))
      list.push(accepted)
      report.imported++
      if (++pendingCount >= IMPORT_BATCH) {
        flush()
        pendingCount = 0
        this.scopes.assertOpen()
      }
    }
    flush()
    if (signer && numbers.size < signer.count) {
      // One refusal after the last line for the memories the signed header promises but no
      // authentic line delivered (cut off, lost, or garbled lines).
      const missing: number[] = []
      for (let n = 1; n <= signer.count && missing.length < 20; n++) if (!numbers.has(n)) missing.push(n)
      const more = signer.count - numbers.size - missing.length
      lineNo++
      refuse(
        RejectCode.Malformed,
        `export incomplete: ${signer.count - numbers.size} of its ${signer.count} memories missing (n = ${missing.join(', ')}${more > 0 ? `, and ${more} more` : ''})`,
      )
    }
    await Promise.all([...touched].map((r) => r.whenFlushed()))
    return report
  }

  /** Subscribe to changes (local and remote). Returns an unsubscribe function. */
  on<E extends keyof MemoryEvents>(event: E, listener: MemoryEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /** @internal */
  close(): void {
    this.closed = true
    if (this.sweepTimer) clearTimeout(this.sweepTimer)
    this.sweepTimer = undefined
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
    const item = prepared ?? this.buildItem(fields, replica.scope, { kind: old.kind, tags: old.tags })
    item.supersedes = old.id
    const now = Date.now()
    replica.inner.transact(() => {
      insertMemory(replica.inner, item)
      patchMemory(replica.inner, old.id, { supersededBy: item.id, updatedAt: now })
    })
    return { item, replica }
  }

  private buildItem(fields: Record<string, unknown>, scope: string, inherit: { kind?: MemoryKind; tags?: string[] }): MemoryItem {
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
      source: { deviceId: this.scopes.deviceId },
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

  private buildPatch(fields: Record<string, unknown>): MemoryFieldsPatch {
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

  private exportSigner(): ExportSigner {
    const identity = this.identity
    if (!identity) throw new ConfigError('export needs the device identity; this MemoryApi was built without one')
    const certificate = ownCertificateBytes(identity)
    if (!certificate) throw new ConfigError("this device's certificate has not reached its registry yet; try again once it has synced")
    return {
      accountId: identity.account.accountId,
      rootPublicKey: identity.account.rootPublicKey,
      deviceId: identity.device.deviceId,
      signPublicKey: identity.device.signPublicKey,
      signSecretKey: identity.device.signSecretKey,
      certificate,
    }
  }

  private read(scope: string, id: string): MemoryItem | undefined {
    const replica = this.scopes.replicas().find((r) => r.scope === scope)
    return replica && readMemory(id, memoriesMap(replica.inner).get(id), scope)
  }

  private locate(id: string): { replica: Replica; item: MemoryItem } | undefined {
    for (const replica of this.scopes.replicas()) {
      const item = readMemory(id, memoriesMap(replica.inner).get(id), replica.scope)
      if (item) return { replica, item }
    }
    return undefined
  }

  private filter(fields: Record<string, unknown>, now: number): { accept(meta: MemoryMeta): boolean; selective: boolean } {
    const replicas = fields.scope === undefined ? this.scopes.replicas() : [this.scopes.replica(fields.scope)]
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
    this.scheduleSweep(this.index.nextExpiry(-Infinity))
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
      this.scheduleSweep(expiredArrived && replica.writable ? now : undefined)
    })
  }

  // ── expiry: hidden at read time everywhere; swept (deleted + compacted) on every device ──

  /** Arm the sweep timer for the next expiry after the last sweep (earlier ones were handled). */
  private scheduleSweep(at?: number): void {
    if (this.closed) return
    const next = at ?? this.index.nextExpiry(this.lastSweep)
    if (next === undefined || next >= this.sweepAt) return
    if (this.sweepTimer) clearTimeout(this.sweepTimer)
    this.sweepAt = next
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = undefined
      this.sweepAt = Infinity
      void this.sweep()
    }, Math.min(Math.max(0, next - Date.now()), MAX_TIMER_MS))
    ;(this.sweepTimer as { unref?: () => void }).unref?.()
  }

  /**
   * Delete expired items in every writable scope and compact, so their text leaves the sealed
   * logs. Every device does this on its own clock; concurrent deletes and compactions are harmless.
   */
  private async sweep(): Promise<void> {
    if (this.closed) return
    const now = Date.now()
    this.lastSweep = now
    const byScope = new Map<string, string[]>()
    for (const meta of this.index.expired(now)) {
      let ids = byScope.get(meta.scope)
      if (!ids) byScope.set(meta.scope, (ids = []))
      ids.push(meta.id)
    }
    for (const [scope, ids] of byScope) {
      const replica = this.scopes.replicas().find((r) => r.scope === scope)
      // A scope this device cannot write keeps its expired items hidden at read time.
      if (!replica || !replica.writable) continue
      replica.inner.transact(() => {
        for (const id of ids) deleteMemory(replica.inner, id)
      })
      try {
        await replica.compactNow({ erasing: true })
      } catch {
        // A storage failure is reported through `storage-error`; a later sweep compacts again.
      }
      if (this.closed) return
    }
    this.scheduleSweep()
  }
}

function requireDecision(value: unknown): ReconcileDecision {
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

function isExpired(item: { expiresAt?: number }, now: number): boolean {
  return item.expiresAt !== undefined && item.expiresAt <= now
}

function copyItem(item: MemoryItem): MemoryItem {
  const out: MemoryItem = { ...item, tags: [...item.tags], source: { ...item.source } }
  if (item.embedding) out.embedding = new Float32Array(item.embedding)
  return out
}

function rankMap(hits: IndexHit[]): Map<string, { rank: number; score: number }> {
  const out = new Map<string, { rank: number; score: number }>()
  hits.forEach((hit, i) => out.set(indexKey(hit.meta.scope, hit.meta.id), { rank: i + 1, score: hit.score }))
  return out
}

function newestFirst(a: MemoryMeta, b: MemoryMeta): number {
  return b.updatedAt - a.updatedAt || (a.id < b.id ? -1 : 1)
}
