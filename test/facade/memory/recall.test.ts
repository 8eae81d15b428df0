import { describe, expect, it } from 'vitest'
import { ScopeAccessError, type ContextSync, type LoopbackNetwork } from '../../../src/index.js'
import { converge } from '../../helpers/devices.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

async function start(kinds: Array<'phone' | 'glasses' | 'car' | 'pc'>) {
  const fleet = await loopbackDevices(kinds, { seed: 91 })
  net = fleet.net
  return fleet.all
}

/** A unit vector along axis `i` of 8, tilted towards axis `j` by `t`. */
function vec(i: number, j = i, t = 0): number[] {
  const v = new Array<number>(8).fill(0)
  v[i] = 1 - t
  v[j] = (v[j] ?? 0) + t
  return v
}

describe('recall', () => {
  it('ranks by text (BM25+), by embedding (cosine) and by both (reciprocal-rank fusion)', async () => {
    const [phone, pc] = (await start(['phone', 'pc'])) as [ContextSync, ContextSync]
    const m = phone.memory
    // Text "coffee": A best, C second. Vector q = axis 0: B, C, D before A.
    const A = await m.remember({ text: 'coffee coffee, always strong coffee beans', embedding: vec(5) })
    const B = await m.remember({ text: 'drinks green tea in the afternoon', embedding: vec(0) })
    const C = await m.remember({ text: 'favourite coffee shop is on Rua Augusta', embedding: vec(0, 1, 0.3) })
    const D = await m.remember({ text: 'runs every morning', embedding: vec(0, 2, 0.6) })
    const E = await m.remember({ text: 'has a cat named Miso' })
    await converge([phone, pc], net)

    for (const dev of [phone, pc]) {
      const byText = dev.memory.recallWithScores({ text: 'coffee', limit: 5 })
      expect(byText.map((h) => h.item.id)).toEqual([A.id, C.id])
      expect(byText[0]!.score).toBeGreaterThan(byText[1]!.score)
      expect(byText[0]!.text).toMatchObject({ rank: 1 })

      const q = vec(0)
      const byVector = dev.memory.recallWithScores({ embedding: q, limit: 3 })
      expect(byVector.map((h) => h.item.id)).toEqual([B.id, C.id, D.id])
      expect(byVector[0]!.score).toBeCloseTo(1, 5)
      expect(byVector.map((h) => h.vector!.rank)).toEqual([1, 2, 3])
      expect(byVector[1]!.vector!.similarity).toBeGreaterThan(byVector[2]!.vector!.similarity)
      // Float32Array queries work the same; items without an embedding are never vector hits.
      expect(dev.memory.recall({ embedding: Float32Array.from(q), limit: 10 }).map((x) => x.id)).not.toContain(E.id)

      // Both: C is second in both lists and wins the fusion over A (1st text, 4th vector) and B (vector only).
      const both = dev.memory.recallWithScores({ text: 'coffee', embedding: q, limit: 4 })
      expect(both.map((h) => h.item.id)).toEqual([C.id, A.id, B.id, D.id])
      expect(both[0]).toMatchObject({ text: { rank: 2 }, vector: { rank: 2 } })
      expect(both[0]!.score).toBeCloseTo(2 / 62, 10)
      expect(both[1]!.score).toBeCloseTo(1 / 61 + 1 / 64, 10)
      expect(both[2]!.text).toBeUndefined()
    }
  })

  it('filters by scope, tags, kind, validity, expiry and embedding model — and only over scopes the device holds', async () => {
    const [phone, car] = (await start(['phone', 'car'])) as [ContextSync, ContextSync]
    const now = Date.now()
    const m = phone.memory
    const meds = await m.remember({ text: 'takes vitamin D every morning', scope: 'health', kind: 'instruction', tags: ['meds'], embedding: vec(1) })
    const pref = await m.remember({ text: 'prefers morning flights', kind: 'preference', tags: ['travel'], embedding: vec(1, 2, 0.1) })
    const old = await m.remember({ text: 'morning commute by bus', tags: ['travel'], validFrom: now - 10_000_000, validTo: now - 1_000_000, embedding: vec(1, 3, 0.2) })
    const future = await m.remember({ text: 'morning gym class starts next month', validFrom: now + 1_000_000 })
    const expired = await m.remember({ text: 'morning meeting moved', expiresAt: now + 1 })
    const otherModel = await m.remember({ text: 'morning person', embedding: vec(1), embeddingModel: 'model-b' })
    await new Promise((r) => setTimeout(r, 5))
    await converge([phone, car], net)

    const ids = (xs: Array<{ id: string }>) => xs.map((x) => x.id).sort()
    const all = phone.memory.recall({ text: 'morning', limit: 20 })
    expect(ids(all)).toEqual(ids([meds, pref, old, future, otherModel]))
    expect(ids(all)).not.toContain(expired.id)
    expect(ids(phone.memory.recall({ text: 'morning', scope: 'health', limit: 20 }))).toEqual([meds.id])
    expect(ids(phone.memory.recall({ text: 'morning', tags: ['travel'], limit: 20 }))).toEqual(ids([pref, old]))
    expect(ids(phone.memory.recall({ text: 'morning', kind: 'preference', limit: 20 }))).toEqual([pref.id])
    expect(ids(phone.memory.recall({ text: 'morning', validAt: now, limit: 20 }))).toEqual(ids([meds, pref, otherModel]))
    expect(ids(phone.memory.recall({ text: 'morning', validAt: now - 5_000_000, limit: 20 }))).toEqual(ids([meds, pref, old, otherModel]))
    expect(ids(phone.memory.recall({ embedding: vec(1), embeddingModel: 'model-b', limit: 20 }))).toEqual([otherModel.id])
    expect(ids(phone.memory.recall({ embedding: vec(1), tags: ['travel'], validAt: now, limit: 20 }))).toEqual([pref.id])
    expect(ids(phone.memory.recall({ text: 'morning', embedding: vec(1), scope: 'personal', kind: 'fact', limit: 20 }))).toEqual(ids([old, future, otherModel]))
    // The car does not hold health: never sees it, and asking for it is refused.
    expect(ids(car.memory.recall({ text: 'morning', limit: 20 }))).toEqual(ids([pref, old, future, otherModel]))
    expect(ids(car.memory.recall({ embedding: vec(1), limit: 20 }))).not.toContain(meds.id)
    expect(() => car.memory.recall({ text: 'vitamin', scope: 'health' })).toThrow(ScopeAccessError)
    // A query vector of another dimension matches nothing (no error).
    expect(phone.memory.recall({ embedding: [1, 0, 0], limit: 5 })).toEqual([])
  })

  it('updates the index incrementally as memories sync in, change and go', async () => {
    const [phone, pc] = (await start(['phone', 'pc'])) as [ContextSync, ContextSync]
    expect(pc.memory.recall({ text: 'sailing', limit: 5 })).toEqual([])
    const m = await phone.memory.remember({ text: 'goes sailing on weekends', tags: ['hobby'], embedding: vec(4) })
    await converge([phone, pc], net)
    expect(pc.memory.recall({ text: 'sailing', limit: 5 }).map((x) => x.id)).toEqual([m.id])
    expect(pc.memory.recall({ embedding: vec(4), limit: 1 }).map((x) => x.id)).toEqual([m.id])

    await phone.memory.update(m.id, { text: 'goes climbing on weekends', embedding: vec(6) })
    await converge([phone, pc], net)
    expect(pc.memory.recall({ text: 'sailing', limit: 5 })).toEqual([])
    expect(pc.memory.recall({ text: 'climbing', limit: 5 }).map((x) => x.id)).toEqual([m.id])
    expect(pc.memory.recall({ embedding: vec(4), limit: 1 })[0]?.id).toBe(m.id) // the only vector, now far
    expect(pc.memory.recallWithScores({ embedding: vec(6), limit: 1 })[0]!.score).toBeCloseTo(1, 5)
    expect(pc.memory.recall({ text: 'hobby', limit: 5 }).map((x) => x.id)).toEqual([m.id]) // tags are indexed

    const n = await phone.memory.remember({ text: 'climbing gym membership', embedding: vec(6, 7, 0.1) })
    await converge([phone, pc], net)
    expect(pc.memory.recall({ embedding: vec(6), limit: 2 }).map((x) => x.id)).toEqual([m.id, n.id])

    await phone.memory.forget(m.id)
    await converge([phone, pc], net)
    expect(pc.memory.recall({ text: 'climbing', limit: 5 }).map((x) => x.id)).toEqual([n.id])
    expect(pc.memory.recall({ embedding: vec(6), limit: 2 }).map((x) => x.id)).toEqual([n.id])
  })

  it('widens text to prefixes and typos only when exact terms find too little', async () => {
    const [pc] = (await start(['pc'])) as [ContextSync]
    const seats = await pc.memory.remember({ text: 'Prefers aisle seats' })
    const sailing = await pc.memory.remember({ text: 'Goes sailing on weekends' })
    const seat = await pc.memory.remember({ text: 'Car seat for the kid is in the garage' })
    expect(pc.memory.recall({ text: 'sailng', limit: 5 }).map((x) => x.id)).toEqual([sailing.id]) // typo
    expect(pc.memory.recall({ text: 'seat', limit: 1 }).map((x) => x.id)).toEqual([seat.id]) // exact is enough
    expect(pc.memory.recall({ text: 'seat', limit: 5 }).map((x) => x.id)).toEqual([seat.id, seats.id]) // widened, exact first
  })

  it('without text or embedding returns the newest items first', async () => {
    const [pc] = (await start(['pc'])) as [ContextSync]
    const a = await pc.memory.remember({ text: 'a' })
    await new Promise((r) => setTimeout(r, 3))
    const b = await pc.memory.remember({ text: 'b' })
    expect(pc.memory.recall({ limit: 1 }).map((x) => x.id)).toEqual([b.id])
    expect(pc.memory.recall({ limit: 5 }).map((x) => x.id)).toEqual([b.id, a.id])
  })
})
