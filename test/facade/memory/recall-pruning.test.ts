import { describe, expect, it } from 'vitest'
import * as prng from 'lib0/prng'
import type MiniSearch from 'minisearch'
import { RecallIndex } from '../../../src/facade/recall-index.js'
import type { MemoryItem } from '../../../src/crdt/memory.js'

const SEED = Number(process.env.CONTEXTSYNC_SEED ?? 0x7e57)

/** A Zipf-like corpus: a few words occur in most memories (common terms), most are rare. */
function corpus(count: number, gen: prng.PRNG): MemoryItem[] {
  const vocab = Array.from({ length: 3000 }, (_, i) => `w${i.toString(36)}`)
  const pick = () => vocab[Math.floor(Math.pow(prng.real53(gen), 4) * vocab.length)]!
  return Array.from({ length: count }, (_, i) => ({
    id: `m${i}`,
    text: Array.from({ length: 6 + (i % 7) }, pick).join(' '),
    scope: 'personal',
    kind: i % 5 === 0 ? 'preference' : 'fact',
    tags: [`t${i % 11}`, ...(i % 3 === 0 ? [pick()] : [])],
    createdAt: i,
    updatedAt: i,
    source: { deviceId: 'd' },
  }))
}

describe('recall text pruning of common terms', () => {
  it('returns exactly the full search’s top results, while skipping common-only documents', () => {
    console.log(`recall pruning seed ${SEED} (replay with CONTEXTSYNC_SEED=${SEED})`)
    const gen = prng.create(SEED)
    const items = corpus(8000, gen)
    const byId = new Map(items.map((m) => [m.id, m]))
    const index = new RecallIndex((_scope, id) => byId.get(id))
    for (const m of items) index.upsert(m)
    // Changes and removals keep the document frequencies exact.
    for (let i = 0; i < 400; i++) {
      const m = items[prng.int32(gen, 0, items.length - 1)]!
      if (i % 2 === 0) {
        // Twice: the second edit must count the first one's terms out (a NUL in the text must not
        // confuse that bookkeeping).
        m.text = `${m.text}\u0000w0 w1 rewritten`
        index.upsert(m)
        index.flush()
        m.text = `${m.text} again`
        index.upsert(m)
      } else {
        byId.delete(m.id)
        index.remove(m.scope, m.id)
      }
    }
    index.flush()
    const full = (index as unknown as { text: MiniSearch }).text
    let pruned = 0
    let queries = 0
    const accept = () => true
    const filter = () => true
    for (let q = 0; q < 150; q++) {
      // Mostly the common words (w0…w3) mixed with one or two rarer ones.
      const words = [`w${prng.int32(gen, 0, 3).toString(36)}`, `w${prng.int32(gen, 0, 3).toString(36)}`, `w${prng.int32(gen, 20, 2999).toString(36)}`]
      if (q % 3 === 0) words.push(`w${prng.int32(gen, 100, 2999).toString(36)}`)
      const query = words.join(' ')
      for (const n of [1, 5, 10]) {
        queries++
        const expected = full.search(query, { prefix: false, fuzzy: false }).slice(0, n)
        const viaPruning = index.searchPruned(query, filter, n)
        if (viaPruning) {
          pruned++
          expect(viaPruning.slice(0, n).map((r) => [r.id, r.score])).toEqual(expected.map((r) => [r.id, r.score]))
        }
        const hits = index.searchText(query, accept, n)
        expect(hits.map((h) => h.score)).toEqual(expected.map((r) => r.score))
        // A selective filter (one tag of 11) refuses documents while scoring: same results.
        const tagged = (id: unknown) => byId.get(String(id).split('\u0001')[1]!)?.tags.includes('t3') === true
        const expectedTagged = full.search(query, { prefix: false, fuzzy: false, filter: (r) => tagged(r.id) }).slice(0, n)
        if (expectedTagged.length === n) {
          const taggedHits = index.searchText(query, (meta) => meta.tags.includes('t3'), n, true)
          expect(taggedHits.map((h) => [h.meta.id, h.score])).toEqual(expectedTagged.map((r) => [String(r.id).split('\u0001')[1], r.score]))
        }
      }
    }
    // The pruning must actually apply to a good share of these queries, or this test shows nothing.
    expect(pruned).toBeGreaterThan(queries / 4)
  })
})
