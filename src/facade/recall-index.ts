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
 * (so opening a large store does not block on it), and any remaining dirty items are indexed
 * before a search runs — a search always sees every change.
 */
export class RecallIndex {
  private readonly text = new MiniSearch<IndexedDoc>({
    fields: ['text', 'tags'],
    searchOptions: { boost: { tags: 1.5 }, combineWith: 'OR' },
  })
  private readonly metas = new Map<string, MemoryMeta>()
  /** Keys whose text and vector must be (re)indexed or dropped. */
  private readonly dirty = new Set<string>()
  /** What is in the text index per key, to skip re-indexing unchanged text. */
  private readonly indexedText = new Map<string, string>()
  private readonly vectors = new Map<number, VectorMatrix>()
  private readonly vectorDim = new Map<string, number>()
  /** Keys of items with an expiry (usually few). */
  private readonly expiring = new Set<string>()
  /** `scope\u0001oldId` → ids of items that name it in `supersedes`. */
  private readonly successors = new Map<string, Set<string>>()
  private warmTimer: ReturnType<typeof setTimeout> | undefined
  private closed = false

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

  /** Stop background work. */
  close(): void {
    this.closed = true
    if (this.warmTimer) clearTimeout(this.warmTimer)
    this.warmTimer = undefined
  }

  private markDirty(key: string): void {
    this.dirty.add(key)
    if (!this.warmTimer && !this.closed) {
      this.warmTimer = setTimeout(() => this.warm(), 0)
      ;(this.warmTimer as { unref?: () => void }).unref?.()
    }
  }

  /** Index a chunk of dirty items, then yield to the app and continue. */
  private warm(): void {
    this.warmTimer = undefined
    if (this.closed) return
    let budget = WARM_CHUNK
    for (const key of this.dirty) {
      this.reindex(key)
      this.dirty.delete(key)
      if (--budget === 0) break
    }
    if (this.dirty.size > 0) {
      this.warmTimer = setTimeout(() => this.warm(), 0)
      ;(this.warmTimer as { unref?: () => void }).unref?.()
    }
  }

  private reindex(key: string): void {
    const meta = this.metas.get(key)
    const item = meta && this.load(meta.scope, meta.id)
    if (!meta || !item) {
      if (this.text.has(key)) this.text.discard(key)
      this.indexedText.delete(key)
      const dim = this.vectorDim.get(key)
      if (dim !== undefined) {
        this.vectors.get(dim)?.delete(key)
        this.vectorDim.delete(key)
      }
      return
    }
    const textSignature = `${item.text}\u0000${item.tags.join(' ')}`
    if (this.indexedText.get(key) !== textSignature) {
      if (this.text.has(key)) this.text.discard(key)
      this.text.add({ id: key, text: item.text, tags: item.tags.join(' ') })
      this.indexedText.set(key, textSignature)
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
  searchText(query: string, accept: (meta: MemoryMeta) => boolean, n: number): IndexHit[] {
    const filter = (result: { id: unknown }): boolean => {
      const meta = this.metas.get(String(result.id))
      return meta !== undefined && accept(meta)
    }
    this.flush()
    let results = this.text.search(query, { filter, prefix: false, fuzzy: false })
    if (results.length < n) {
      results = this.text.search(query, {
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
