/**
 * The local recall index behind `dev.memory.recall`: a MiniSearch full-text index (BM25+ with
 * prefix and fuzzy matching), flat per-dimension matrices of unit vectors for cosine similarity,
 * and each item's filterable fields, so filters never read the inner doc. Maintained
 * incrementally from inner-doc changes (local and synced); nothing here is persisted.
 *
 * @module
 */
import MiniSearch from 'minisearch'
import { memoryMeta, type MemoryItem, type MemoryMeta } from '../crdt/memory.js'
import { unref } from '../util/timers.js'

/** One scored candidate. */
export interface IndexHit {
  meta: MemoryMeta
  score: number
}

interface IndexedDoc {
  id: string
  text: string
  tags: string
}

/** Index key of an item: ids are unique per scope doc, not across docs. */
export function indexKey(scope: string, id: string): string {
  return `${scope}\u0001${id}`
}

/** Dirty items indexed per background step. */
const WARM_CHUNK = 500
/**
 * Background indexing starts once changes have paused for this long (ms)… A live stream of
 * arriving memories is then indexed in batches between its bursts, not one item per write.
 */
const WARM_QUIET_MS = 50
/** …or at the latest this long after the first unindexed change. */
const WARM_MAX_DELAY_MS = 1000

/** MiniSearch's BM25+ parameters, given explicitly because the pruning bound below depends on them. */
const BM25 = { k: 1.2, b: 0.7, d: 0.5 }
const FIELD_BOOSTS = { text: 1, tags: 1.5 }
type TextField = keyof typeof FIELD_BOOSTS
const TEXT_FIELDS = Object.keys(FIELD_BOOSTS) as TextField[]
/**
 * A query term whose postings (documents containing it, over both fields) exceed this is
 * "common": scoring every one of its documents would dominate the query's cost.
 */
const COMMON_TERM_DOCS = 2000
const tokenize = MiniSearch.getDefault('tokenize') as (text: string, field?: string) => string[]
const processTerm = MiniSearch.getDefault('processTerm') as (term: string, field?: string) => string | string[] | null | undefined | false

/** The distinct index terms of a field value, exactly as MiniSearch derives them. */
function fieldTerms(value: string, field?: string): Set<string> {
  const out = new Set<string>()
  for (const token of tokenize(value, field)) {
    const processed = processTerm(token, field)
    if (Array.isArray(processed)) for (const t of processed) out.add(t)
    else if (processed) out.add(processed)
  }
  return out
}

/** `fn` with its results cached per argument (for one query). */
function memoize(fn: (id: string) => boolean): (id: string) => boolean {
  const cache = new Map<string, boolean>()
  return (id) => {
    let hit = cache.get(id)
    if (hit === undefined) cache.set(id, (hit = fn(id)))
    return hit
  }
}

/** A query's terms in order, repeats kept, as MiniSearch's search derives them. */
function queryTokens(query: string): string[] {
  const out: string[] = []
  for (const token of tokenize(query)) {
    const processed = processTerm(token)
    if (Array.isArray(processed)) out.push(...processed)
    else if (processed) out.push(processed)
  }
  return out
}

/** Unit vectors of one dimension, stored row by row in one growable matrix. */
class VectorMatrix {
  data: Float32Array
  metas: MemoryMeta[] = []
  keys: string[] = []
  readonly slots = new Map<string, number>()
  size = 0

  constructor(readonly dim: number) {
    this.data = new Float32Array(dim * 64)
  }

  set(key: string, meta: MemoryMeta, unit: Float32Array): void {
    let slot = this.slots.get(key)
    if (slot === undefined) {
      slot = this.size++
      if (this.size * this.dim > this.data.length) {
        const grown = new Float32Array(this.data.length * 2)
        grown.set(this.data)
        this.data = grown
      }
      this.slots.set(key, slot)
    }
    this.data.set(unit, slot * this.dim)
    this.metas[slot] = meta
    this.keys[slot] = key
  }

  setMeta(key: string, meta: MemoryMeta): void {
    const slot = this.slots.get(key)
    if (slot !== undefined) this.metas[slot] = meta
  }

  delete(key: string): void {
    const slot = this.slots.get(key)
    if (slot === undefined) return
    const last = --this.size
    this.slots.delete(key)
    if (slot !== last) {
      // Move the last row into the hole so rows stay contiguous.
      this.data.copyWithin(slot * this.dim, last * this.dim, (last + 1) * this.dim)
      const lastKey = this.keys[last]!
      this.keys[slot] = lastKey
      this.metas[slot] = this.metas[last]!
      this.slots.set(lastKey, slot)
    }
    this.keys.length = last
    this.metas.length = last
  }
}

/** Normalize to unit length (copy). */
export function unitVector(vector: Float32Array): Float32Array {
  let norm = 0
  for (let i = 0; i < vector.length; i++) norm += vector[i]! * vector[i]!
  const out = new Float32Array(vector.length)
  if (norm === 0) return out
  const inv = 1 / Math.sqrt(norm)
  for (let i = 0; i < vector.length; i++) out[i] = vector[i]! * inv
  return out
}

/** Keeps the `n` best (highest score) hits seen, sorted best first. */
class TopN {
  readonly hits: IndexHit[] = []
  constructor(private readonly n: number) {}

  /** Lowest score that would still enter (−∞ until full). */
  get floor(): number {
    return this.hits.length < this.n ? -Infinity : this.hits[this.hits.length - 1]!.score
  }

  offer(meta: MemoryMeta, score: number): void {
    if (this.n <= 0 || score <= this.floor) return
    let i = this.hits.length
    while (i > 0 && this.hits[i - 1]!.score < score) i--
    this.hits.splice(i, 0, { meta, score })
    if (this.hits.length > this.n) this.hits.pop()
  }
}

/**
 * Full-text + vector + metadata index over the memories of every held scope.
 *
 * The filterable fields of every item are kept up to date at once (they are cheap). Text and
 * vectors are indexed lazily: changed items are marked dirty, indexed in small background chunks
 * once changes pause (so opening a large store or receiving a burst does not block on it), and
 * any remaining dirty items are indexed before a search runs — a search always sees every change.
 */
export class RecallIndex {
  private readonly text = new MiniSearch<IndexedDoc>({
    fields: TEXT_FIELDS,
    searchOptions: { boost: FIELD_BOOSTS, combineWith: 'OR', bm25: BM25 },
  })
  /** Per field: how many indexed documents contain each term (MiniSearch's own document frequency). */
  private readonly docFrequency: Record<TextField, Map<string, number>> = { text: new Map(), tags: new Map() }
  private readonly metas = new Map<string, MemoryMeta>()
  /** Keys whose text and vector must be (re)indexed or dropped. */
  private readonly dirty = new Set<string>()
  /** What is in the text index per key: to skip re-indexing unchanged text, and to count its terms out. */
  private readonly indexedText = new Map<string, { text: string; tags: string }>()
  private readonly vectors = new Map<number, VectorMatrix>()
  private readonly vectorDim = new Map<string, number>()
  /** Keys of items with an expiry (usually few). */
  private readonly expiring = new Set<string>()
  /** `scope\u0001oldId` → ids of items that name it in `supersedes`. */
  private readonly successors = new Map<string, Set<string>>()
  private warmTimer: ReturnType<typeof setTimeout> | undefined
  /** When the oldest and the newest unindexed change happened (background indexing waits for a pause). */
  private firstDirtyAt = 0
  private lastDirtyAt = 0
  private closed = false
  /** While true, changes wait for the next search (or {@link defer}(false)) to be indexed. */
  private deferred = false

  /** @param load reads an item's full state (text, vector) from its inner doc. */
  constructor(private readonly load: (scope: string, id: string) => MemoryItem | undefined) {}

  /** Number of indexed items. */
  get size(): number {
    return this.metas.size
  }

  /** Add or refresh one item's fields; its text and vector are indexed before the next search. */
  set(meta: MemoryMeta): void {
    const key = indexKey(meta.scope, meta.id)
    const previous = this.metas.get(key)
    this.metas.set(key, meta)
    if (previous?.supersedes !== meta.supersedes) {
      if (previous?.supersedes !== undefined) this.successors.get(indexKey(meta.scope, previous.supersedes))?.delete(meta.id)
      if (meta.supersedes !== undefined) {
        const k = indexKey(meta.scope, meta.supersedes)
        let set = this.successors.get(k)
        if (!set) this.successors.set(k, (set = new Set()))
        set.add(meta.id)
      }
    }
    if (meta.expiresAt !== undefined) this.expiring.add(key)
    else this.expiring.delete(key)
    this.markDirty(key)
  }

  /** {@link set} from a full item. */
  upsert(item: MemoryItem): void {
    this.set(memoryMeta(item))
  }

  /** Drop one item. */
  remove(scope: string, id: string): void {
    const key = indexKey(scope, id)
    const meta = this.metas.get(key)
    if (!meta) return
    this.metas.delete(key)
    this.expiring.delete(key)
    if (meta.supersedes !== undefined) this.successors.get(indexKey(scope, meta.supersedes))?.delete(id)
    this.markDirty(key)
  }

  /** Drop every item of a scope (its replica went away). */
  removeScope(scope: string): void {
    for (const meta of [...this.metas.values()]) if (meta.scope === scope) this.remove(scope, meta.id)
  }

  /** Index everything dirty now. */
  flush(): void {
    for (const key of this.dirty) this.reindex(key)
    this.dirty.clear()
  }

  /**
   * Defer background indexing (a device on battery) or resume it, indexing the backlog now. A
   * search still indexes what it needs first, so deferral never changes what recall finds.
   */
  defer(deferred: boolean): void {
    this.deferred = deferred
    if (deferred && this.warmTimer) {
      clearTimeout(this.warmTimer)
      this.warmTimer = undefined
    }
    if (!deferred && !this.closed && this.dirty.size > 0 && !this.warmTimer) {
      this.firstDirtyAt = 0
      this.scheduleWarm(0)
    }
  }

  /** Items changed but not indexed yet. */
  get backlog(): number {
    return this.dirty.size
  }

  /** Stop background work. */
  close(): void {
    this.closed = true
    if (this.warmTimer) clearTimeout(this.warmTimer)
    this.warmTimer = undefined
  }

  private markDirty(key: string): void {
    const now = Date.now()
    if (this.dirty.size === 0) this.firstDirtyAt = now
    this.lastDirtyAt = now
    this.dirty.add(key)
    if (!this.warmTimer && !this.closed && !this.deferred) this.scheduleWarm(WARM_QUIET_MS)
  }

  private scheduleWarm(delayMs: number): void {
    this.warmTimer = setTimeout(() => this.warm(), delayMs)
    unref(this.warmTimer)
  }

  /** Once changes pause, index a chunk of dirty items, then yield to the app and continue. */
  private warm(): void {
    this.warmTimer = undefined
    if (this.closed || this.deferred || this.dirty.size === 0) return
    const now = Date.now()
    const quietFor = now - this.lastDirtyAt
    if (quietFor < WARM_QUIET_MS && now - this.firstDirtyAt < WARM_MAX_DELAY_MS) {
      this.scheduleWarm(WARM_QUIET_MS - quietFor)
      return
    }
    let budget = WARM_CHUNK
    for (const key of this.dirty) {
      this.reindex(key)
      this.dirty.delete(key)
      if (--budget === 0) break
    }
    if (this.dirty.size > 0) {
      // Continue without waiting for another pause: this backlog is already due.
      this.firstDirtyAt = 0
      this.scheduleWarm(0)
    }
  }

  private reindex(key: string): void {
    const meta = this.metas.get(key)
    const item = meta && this.load(meta.scope, meta.id)
    if (!meta || !item) {
      this.discardText(key)
      const dim = this.vectorDim.get(key)
      if (dim !== undefined) {
        this.vectors.get(dim)?.delete(key)
        this.vectorDim.delete(key)
      }
      return
    }
    const tags = item.tags.join(' ')
    const indexed = this.indexedText.get(key)
    if (indexed?.text !== item.text || indexed.tags !== tags) {
      this.discardText(key)
      const doc = { id: key, text: item.text, tags }
      this.text.add(doc)
      this.countTerms(doc, 1)
      this.indexedText.set(key, { text: item.text, tags })
    }
    const dim = this.vectorDim.get(key)
    if (item.embedding) {
      if (dim !== undefined && dim !== item.embedding.length) this.vectors.get(dim)?.delete(key)
      let matrix = this.vectors.get(item.embedding.length)
      if (!matrix) this.vectors.set(item.embedding.length, (matrix = new VectorMatrix(item.embedding.length)))
      matrix.set(key, meta, unitVector(item.embedding))
      this.vectorDim.set(key, item.embedding.length)
    } else if (dim !== undefined) {
      this.vectors.get(dim)?.delete(key)
      this.vectorDim.delete(key)
    }
  }

  private discardText(key: string): void {
    const indexed = this.indexedText.get(key)
    if (indexed !== undefined) {
      // `remove` (not the lazy `discard`) takes the terms out at once: no stale postings, so
      // document frequencies — and with them every score and the pruning bound — stay exact.
      this.text.remove({ id: key, ...indexed })
      this.countTerms(indexed, -1)
      this.indexedText.delete(key)
    } else if (this.text.has(key)) {
      this.text.discard(key)
    }
  }

  private countTerms(doc: Record<TextField, string>, delta: 1 | -1): void {
    for (const field of TEXT_FIELDS) {
      const counts = this.docFrequency[field]
      for (const term of fieldTerms(doc[field], field)) {
        const next = (counts.get(term) ?? 0) + delta
        if (next > 0) counts.set(term, next)
        else counts.delete(term)
      }
    }
  }

  /** The indexed fields of an item. */
  meta(scope: string, id: string): MemoryMeta | undefined {
    return this.metas.get(indexKey(scope, id))
  }

  /** Ids of the items that name `id` (in `scope`) as the version they superseded. */
  successorsOf(scope: string, id: string): string[] {
    return [...(this.successors.get(indexKey(scope, id)) ?? [])]
  }

  /** The earliest `expiresAt` later than `after` among indexed items. */
  nextExpiry(after: number): number | undefined {
    let next: number | undefined
    for (const key of this.expiring) {
      const at = this.metas.get(key)?.expiresAt
      if (at !== undefined && at > after && (next === undefined || at < next)) next = at
    }
    return next
  }

  /** Items whose `expiresAt` is at or before `now`. */
  expired(now: number): MemoryMeta[] {
    const out: MemoryMeta[] = []
    for (const key of this.expiring) {
      const meta = this.metas.get(key)
      if (meta?.expiresAt !== undefined && meta.expiresAt <= now) out.push(meta)
    }
    return out
  }

  /**
   * The `n` best full-text matches among accepted items, best first (MiniSearch BM25+ scores).
   * Exact terms first; only when they give fewer than `n` hits is the query widened to prefixes
   * (terms of 3+ characters: "seat" finds "seats") and typos (terms of 5+ characters, edit
   * distance ≤ 20 % of the term, at most 2). Widening on every query would make a common prefix or
   * a fuzzy match over a large vocabulary enumerate most of the index.
   */
  searchText(query: string, accept: (meta: MemoryMeta) => boolean, n: number, selective = false): IndexHit[] {
    const filter = (result: { id: unknown }): boolean => {
      const meta = this.metas.get(String(result.id))
      return meta !== undefined && accept(meta)
    }
    // With a selective filter, refuse documents while scoring (MiniSearch skips a document whose
    // boost is 0) instead of building a result for each and filtering at the end.
    const admitted = selective ? memoize((id: string) => filter({ id })) : undefined
    this.flush()
    let results = this.searchPruned(query, filter, n, admitted) ?? this.text.search(query, { filter, prefix: false, fuzzy: false, ...(admitted && { boostDocument: (id: string) => (admitted(id) ? 1 : 0) }) })
    if (results.length < n) {
      results = this.text.search(query, {
        ...(admitted && { boostDocument: (id: string) => (admitted(id) ? 1 : 0) }),
        filter,
        prefix: (term) => term.length >= 3,
        fuzzy: (term) => (term.length >= 5 ? 0.2 : false),
        maxFuzzy: 2,
      })
    }
    const out: IndexHit[] = []
    for (const result of results) {
      if (out.length >= n) break
      const meta = this.metas.get(String(result.id))
      if (meta) out.push({ meta, score: result.score })
    }
    return out
  }

  /**
   * The exact-term search with common terms pruned, or `undefined` when pruning cannot be shown
   * to leave the top `n` unchanged (the caller then runs the full search).
   *
   * Scoring every document of a term that half the corpus contains is what makes such a query
   * slow (MiniSearch builds, filters and sorts a result per document). So, as with Lucene's
   * MaxScore: documents matching a rarer query term are found first and scored in full, common
   * terms included; documents matching only common terms are skipped unless their best possible
   * score could still enter the top `n`. That bound is MiniSearch's own formula at its maximum:
   * BM25+ per term and field is at most idf × (d + k + 1), and a result's score is multiplied by
   * the number of query terms it matched. The results are the full search's, not an approximation.
   *
   * @internal exposed for tests; {@link searchText} is the API.
   */
  searchPruned(
    query: string,
    filter: (result: { id: unknown }) => boolean,
    n: number,
    admitted?: (id: string) => boolean,
  ): Array<{ id: unknown; score: number }> | undefined {
    if (n <= 0) return undefined
    // Every query token counts (MiniSearch scores a repeated term once per occurrence).
    const tokens = queryTokens(query)
    const postings = (term: string) => TEXT_FIELDS.reduce((sum, f) => sum + (this.docFrequency[f].get(term) ?? 0), 0)
    // Most frequent first. If the bound fails, the least frequent "common" term is scored in full
    // instead and the search tried again: a term just over the cutoff has a high idf (a loose
    // bound), the very frequent ones are where skipping pays.
    const common = [...new Set(tokens.filter((t) => postings(t) > COMMON_TERM_DOCS))].sort((a, b) => postings(b) - postings(a))
    while (common.length > 0) {
      const results = this.searchSkipping(query, tokens, new Set(common), filter, n, admitted)
      if (results !== 'bound') return results
      common.pop()
    }
    return undefined
  }

  /**
   * One attempt of {@link searchPruned} with a given set of skipped (common) terms: the results,
   * `undefined` when pruning cannot apply at all, or `'bound'` when the bound is not below the
   * n-th score.
   */
  private searchSkipping(
    query: string,
    tokens: string[],
    common: Set<string>,
    filter: (result: { id: unknown }) => boolean,
    n: number,
    admitted: ((id: string) => boolean) | undefined,
  ): Array<{ id: unknown; score: number }> | undefined | 'bound' {
    const rare = tokens.filter((t) => !common.has(t))
    if (rare.length === 0) return undefined
    const exact = { filter, prefix: false, fuzzy: false } as const
    const admit = admitted && { boostDocument: (id: string) => (admitted(id) ? 1 : 0) }
    const candidates = new Set(this.text.search(rare.join(' '), { ...exact, ...admit }).map((r) => r.id))
    if (candidates.size < n) return undefined
    const results = this.text.search(query, {
      ...exact,
      boostDocument: (id, term) => ((!common.has(term) || candidates.has(id)) && (!admitted || admitted(id)) ? 1 : 0),
    })
    const threshold = results[n - 1]?.score
    if (threshold === undefined) return undefined
    const documents = this.text.documentCount
    let bound = 0
    for (const token of tokens) {
      if (!common.has(token)) continue
      for (const field of TEXT_FIELDS) {
        const df = this.docFrequency[field].get(token) ?? 0
        if (df === 0) continue
        const idf = Math.log(1 + (documents - df + 0.5) / (df + 0.5))
        bound += FIELD_BOOSTS[field] * idf * (BM25.d + BM25.k + 1)
      }
    }
    // A result's score is multiplied by the number of distinct query terms it matched.
    bound *= common.size
    return bound < threshold ? results : 'bound'
  }

  /**
   * The `n` accepted items most similar to `query` (cosine similarity; only vectors of the same
   * dimension — and of `model`, when given — are compared), best first.
   */
  searchVector(query: Float32Array, accept: (meta: MemoryMeta) => boolean, n: number, model?: string): IndexHit[] {
    this.flush()
    const matrix = this.vectors.get(query.length)
    if (!matrix || matrix.size === 0) return []
    const q = Float64Array.from(unitVector(query))
    const dim = matrix.dim
    const data = matrix.data
    const metas = matrix.metas
    const top = new TopN(n)
    for (let row = 0; row < matrix.size; row++) {
      const meta = metas[row]!
      if (model !== undefined && meta.embeddingModel !== model) continue
      if (!accept(meta)) continue
      // Four independent sums: the additions pipeline instead of waiting on one another.
      let d0 = 0
      let d1 = 0
      let d2 = 0
      let d3 = 0
      const base = row * dim
      let i = 0
      for (; i + 3 < dim; i += 4) {
        d0 += q[i]! * data[base + i]!
        d1 += q[i + 1]! * data[base + i + 1]!
        d2 += q[i + 2]! * data[base + i + 2]!
        d3 += q[i + 3]! * data[base + i + 3]!
      }
      let dot = d0 + d1 + d2 + d3
      for (; i < dim; i++) dot += q[i]! * data[base + i]!
      top.offer(meta, dot)
    }
    return top.hits
  }

  /** Every accepted item's meta (for list-style queries). */
  all(accept: (meta: MemoryMeta) => boolean): MemoryMeta[] {
    const out: MemoryMeta[] = []
    for (const meta of this.metas.values()) if (accept(meta)) out.push(meta)
    return out
  }
}

/** Reciprocal-rank-fusion constant (Cormack et al. 2009): damps the weight of the very top ranks. */
export const RRF_K = 60

/**
 * Fuse ranked lists by reciprocal rank: `score(d) = Σ 1 / (RRF_K + rank_i(d))`, ranks from 1.
 * Scale-free, so BM25 scores and cosine similarities need no calibration against each other.
 */
export function reciprocalRankFusion(lists: IndexHit[][]): Map<string, number> {
  const fused = new Map<string, number>()
  for (const list of lists) {
    list.forEach((hit, i) => {
      const key = indexKey(hit.meta.scope, hit.meta.id)
      fused.set(key, (fused.get(key) ?? 0) + 1 / (RRF_K + i + 1))
    })
  }
  return fused
}
