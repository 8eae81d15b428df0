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

/** Full-text + vector + metadata index over the memories of every held scope. */
export class RecallIndex {
  private readonly text = new MiniSearch<IndexedDoc>({
    fields: ['text', 'tags'],
    searchOptions: { boost: { tags: 1.5 }, prefix: true, fuzzy: 0.2, combineWith: 'OR' },
  })
  private readonly metas = new Map<string, MemoryMeta>()
  /** What is in the text index per key, to skip re-indexing unchanged text. */
  private readonly indexedText = new Map<string, string>()
  private readonly vectors = new Map<number, VectorMatrix>()
  private readonly vectorDim = new Map<string, number>()
  /** Keys of items with an expiry (usually few). */
  private readonly expiring = new Set<string>()
  /** `scope\u0001oldId` → ids of items that name it in `supersedes`. */
  private readonly successors = new Map<string, Set<string>>()

  /** Number of indexed items. */
  get size(): number {
    return this.metas.size
  }

  /** Add or refresh one item. */
  upsert(item: MemoryItem): void {
    const key = indexKey(item.scope, item.id)
    const meta = memoryMeta(item)
    const previous = this.metas.get(key)
    this.metas.set(key, meta)
    if (previous?.supersedes !== meta.supersedes) {
      if (previous?.supersedes !== undefined) this.successors.get(indexKey(item.scope, previous.supersedes))?.delete(item.id)
      if (meta.supersedes !== undefined) {
        const k = indexKey(item.scope, meta.supersedes)
        let set = this.successors.get(k)
        if (!set) this.successors.set(k, (set = new Set()))
        set.add(item.id)
      }
    }
    if (meta.expiresAt !== undefined) this.expiring.add(key)
    else this.expiring.delete(key)

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

  /** Drop one item. */
  remove(scope: string, id: string): void {
    const key = indexKey(scope, id)
    const meta = this.metas.get(key)
    if (!meta) return
    this.metas.delete(key)
    this.expiring.delete(key)
    if (meta.supersedes !== undefined) this.successors.get(indexKey(scope, meta.supersedes))?.delete(id)
    if (this.text.has(key)) this.text.discard(key)
    this.indexedText.delete(key)
    const dim = this.vectorDim.get(key)
    if (dim !== undefined) {
      this.vectors.get(dim)?.delete(key)
      this.vectorDim.delete(key)
    }
  }

  /** Drop every item of a scope (its replica went away). */
  removeScope(scope: string): void {
    for (const meta of [...this.metas.values()]) if (meta.scope === scope) this.remove(scope, meta.id)
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

  /** The `n` best full-text matches among accepted items, best first (MiniSearch BM25+ scores). */
  searchText(query: string, accept: (meta: MemoryMeta) => boolean, n: number): IndexHit[] {
    const results = this.text.search(query, {
      filter: (result) => {
        const meta = this.metas.get(String(result.id))
        return meta !== undefined && accept(meta)
      },
    })
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
    const matrix = this.vectors.get(query.length)
    if (!matrix || matrix.size === 0) return []
    const q = unitVector(query)
    const dim = matrix.dim
    const data = matrix.data
    const metas = matrix.metas
    const top = new TopN(n)
    for (let row = 0; row < matrix.size; row++) {
      const meta = metas[row]!
      if (model !== undefined && meta.embeddingModel !== model) continue
      if (!accept(meta)) continue
      let dot = 0
      const base = row * dim
      let i = 0
      for (; i + 3 < dim; i += 4) {
        dot += q[i]! * data[base + i]! + q[i + 1]! * data[base + i + 1]! + q[i + 2]! * data[base + i + 2]! + q[i + 3]! * data[base + i + 3]!
      }
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
