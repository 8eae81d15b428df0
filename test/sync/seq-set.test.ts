/**
 * `SeqSet`: the per-sender sets of applied seqs that snapshots carry (WIRE.md "Envelope v1",
 * `seqset`). Checked against a naive `Set<number>` model with fast-check, and against malformed
 * encodings a relay or a member device could send.
 *
 * fast-check picks a seed per run and prints it (with the shrunk counterexample) on failure.
 * Replay one: CONTEXTSYNC_SEED=<seed> npx vitest run test/sync/seq-set.test.ts
 * More runs:  CONTEXTSYNC_RUNS=10000 npx vitest run test/sync/seq-set.test.ts
 */
import fc from 'fast-check'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { describe, expect, it } from 'vitest'
import { MAX_SEQ_RANGES, SeqSet, SeqSetError } from '../../src/sync/seq-set.js'
import { propertyParams } from '../helpers/seeded.js'

const params = propertyParams(300)

const MAX = Number.MAX_SAFE_INTEGER

// ── model ──────────────────────────────────────────────────────────────────────────────────────

/** Values stay small so that random ranges touch, overlap and nest often. */
const DOMAIN = 80

type Op = { kind: 'add'; seq: number } | { kind: 'range'; start: number; end: number } | { kind: 'all'; ranges: Array<[number, number]> }

const seqArb = fc.integer({ min: 1, max: DOMAIN })
const rangeArb: fc.Arbitrary<[number, number]> = fc
  .tuple(seqArb, fc.integer({ min: 0, max: 10 }))
  .map(([start, length]) => [start, Math.min(DOMAIN, start + length)])
const opArb: fc.Arbitrary<Op> = fc.oneof(
  seqArb.map((seq) => ({ kind: 'add' as const, seq })),
  rangeArb.map(([start, end]) => ({ kind: 'range' as const, start, end })),
  fc.array(rangeArb, { maxLength: 6 }).map((ranges) => ({ kind: 'all' as const, ranges })),
)
const opsArb = fc.array(opArb, { maxLength: 30 })

interface Built {
  set: SeqSet
  model: Set<number>
}

/** Apply `ops` to a fresh SeqSet (through the method under test) and to the model. */
function build(ops: Op[]): Built {
  const set = new SeqSet()
  const model = new Set<number>()
  for (const op of ops) {
    if (op.kind === 'add') {
      set.add(op.seq)
      model.add(op.seq)
    } else if (op.kind === 'range') {
      set.addRange(op.start, op.end)
      for (let s = op.start; s <= op.end; s++) model.add(s)
    } else {
      const other = new SeqSet()
      for (const [start, end] of op.ranges) {
        other.addRange(start, end)
        for (let s = start; s <= end; s++) model.add(s)
      }
      set.addAll(other)
    }
  }
  return { set, model }
}

/** The canonical ranges of a model: ascending, disjoint, never adjacent. */
function modelRanges(model: Set<number>): Array<[number, number]> {
  const sorted = [...model].sort((a, b) => a - b)
  const out: Array<[number, number]> = []
  for (const seq of sorted) {
    const last = out[out.length - 1]
    if (last && seq === last[1] + 1) last[1] = seq
    else out.push([seq, seq])
  }
  return out
}

function encodeSet(set: SeqSet): Uint8Array {
  const enc = encoding.createEncoder()
  set.encode(enc)
  return encoding.toUint8Array(enc)
}

/** Raw `seqset` bytes for arbitrary `(start, length-1)` pairs, bypassing every check. */
function rawSeqSet(pairs: Array<[number, number]>, count = pairs.length): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, count)
  for (const [start, length] of pairs) {
    encoding.writeVarUint(enc, start)
    encoding.writeVarUint(enc, length)
  }
  return encoding.toUint8Array(enc)
}

function decodeAll(bytes: Uint8Array): SeqSet {
  const dec = decoding.createDecoder(bytes)
  const set = SeqSet.decode(dec)
  expect(decoding.hasContent(dec), 'decode left bytes unread').toBe(false)
  return set
}

// ── properties ─────────────────────────────────────────────────────────────────────────────────

describe('SeqSet against a Set<number> model', () => {
  it('add / addRange / addAll keep exactly the model, as canonical ranges', () => {
    fc.assert(
      fc.property(opsArb, (ops) => {
        const { set, model } = build(ops)
        expect(set.toRanges()).toEqual(modelRanges(model))
        for (let seq = 1; seq <= DOMAIN + 1; seq++) expect(set.has(seq), `has(${seq})`).toBe(model.has(seq))
        expect(set.size()).toBe(model.size)
        expect(set.max()).toBe(model.size === 0 ? 0 : Math.max(...model))
        expect(set.rangeCount()).toBe(modelRanges(model).length)
        expect(set.isEmpty()).toBe(model.size === 0)
      }),
      params,
    )
  })

  it('covers, subtract, intersects and equals agree with the model', () => {
    fc.assert(
      fc.property(opsArb, opsArb, (opsA, opsB) => {
        const a = build(opsA)
        const b = build(opsB)
        const bInA = [...b.model].every((s) => a.model.has(s))
        expect(a.set.covers(b.set)).toBe(bInA)
        const difference = new Set([...a.model].filter((s) => !b.model.has(s)))
        const before = a.set.toRanges()
        expect(a.set.subtract(b.set).toRanges()).toEqual(modelRanges(difference))
        expect(a.set.toRanges(), 'subtract changed its receiver').toEqual(before)
        expect(a.set.intersects(b.set)).toBe([...b.model].some((s) => a.model.has(s)))
        const same = a.model.size === b.model.size && bInA
        expect(a.set.equals(b.set)).toBe(same)
        expect(b.set.equals(a.set)).toBe(same)
      }),
      params,
    )
  })

  it('a set covers, equals and does not intersect its own differences as expected', () => {
    fc.assert(
      fc.property(opsArb, opsArb, (opsA, opsB) => {
        const a = build(opsA).set
        const b = build(opsB).set
        const rest = a.subtract(b)
        expect(a.covers(rest)).toBe(true)
        expect(rest.intersects(b)).toBe(false)
        const union = new SeqSet()
        union.addAll(rest)
        union.addAll(b)
        expect(union.covers(a)).toBe(true)
        expect(a.equals(a.subtract(new SeqSet()))).toBe(true)
      }),
      params,
    )
  })

  it('encode → decode round-trips every set, and fromRanges(toRanges()) rebuilds it', () => {
    fc.assert(
      fc.property(opsArb, (ops) => {
        const { set } = build(ops)
        const decoded = decodeAll(encodeSet(set))
        expect(decoded.equals(set)).toBe(true)
        expect(decoded.toRanges()).toEqual(set.toRanges())
        expect(SeqSet.fromRanges(set.toRanges()).equals(set)).toBe(true)
      }),
      params,
    )
  })

  it('decode accepts exactly the ascending, disjoint encodings (adjacent ranges merge)', () => {
    const pairArb = fc.tuple(fc.integer({ min: 0, max: DOMAIN }), fc.integer({ min: 0, max: 6 }))
    fc.assert(
      fc.property(fc.array(pairArb, { maxLength: 12 }), (pairs) => {
        let valid = true
        let prevEnd = 0
        const model = new Set<number>()
        for (const [start, length] of pairs) {
          if (start < 1 || start <= prevEnd) valid = false
          prevEnd = start + length
          for (let s = start; s <= start + length; s++) model.add(s)
        }
        const bytes = rawSeqSet(pairs)
        if (valid) {
          expect(decodeAll(bytes).toRanges()).toEqual(modelRanges(model))
          const ranges = pairs.map(([s, l]): [number, number] => [s, s + l])
          expect(SeqSet.fromRanges(ranges).toRanges()).toEqual(modelRanges(model))
        } else {
          expect(() => decodeAll(bytes)).toThrow(SeqSetError)
          expect(() => SeqSet.fromRanges(pairs.map(([s, l]): [number, number] => [s, s + l]))).toThrow(SeqSetError)
        }
      }),
      params,
    )
  })
})

// ── malformed encodings ────────────────────────────────────────────────────────────────────────

describe('SeqSet.decode refuses malformed encodings', () => {
  const refused: Array<[string, Uint8Array]> = [
    ['ranges out of order', rawSeqSet([[10, 2], [1, 1]])],
    ['overlapping ranges', rawSeqSet([[1, 4], [3, 1]])],
    ['a range nested in the previous one', rawSeqSet([[1, 9], [4, 0]])],
    ['the same range twice', rawSeqSet([[5, 0], [5, 0]])],
    ['a range starting where the previous ends', rawSeqSet([[1, 4], [5, 0]])],
    ['seq 0', rawSeqSet([[0, 3]])],
    ['a start past the safe integers', rawSeqSet([[2 ** 53, 0]])],
    ['an end past the safe integers', rawSeqSet([[MAX, 1]])],
    ['a length past the safe integers', rawSeqSet([[1, 2 ** 53]])],
    ['more ranges than the count allows', rawSeqSet(Array.from({ length: MAX_SEQ_RANGES + 1 }, (_, i) => [2 * i + 1, 0]))],
    ['a count larger than the input', rawSeqSet([[1, 0]], 1000)],
    ['a count past the bound with no ranges', rawSeqSet([], 2 ** 40)],
    ['no bytes at all', new Uint8Array(0)],
    // A varuint of ten 0xff bytes is ~2^70: lib0 either throws or returns an unsafe number.
    ['an overlong varuint', Uint8Array.from([1, 255, 255, 255, 255, 255, 255, 255, 255, 255, 1, 0])],
  ]
  for (const [what, bytes] of refused) {
    it(`refuses ${what}`, () => {
      expect(() => SeqSet.decode(decoding.createDecoder(bytes))).toThrow(SeqSetError)
    })
  }

  it('refuses every truncation of a valid encoding', () => {
    const bytes = encodeSet(SeqSet.fromRanges([[1, 1024], [2049, 2049], [300_000, 300_100], [MAX - 5, MAX]]))
    for (let cut = 0; cut < bytes.length; cut++) {
      expect(() => SeqSet.decode(decoding.createDecoder(bytes.subarray(0, cut))), `cut at ${cut}`).toThrow(SeqSetError)
    }
    expect(decodeAll(bytes).rangeCount()).toBe(4)
  })

  it('accepts the extremes: seq 1, the largest safe seq, and MAX_SEQ_RANGES ranges', () => {
    expect(decodeAll(rawSeqSet([[1, MAX - 1]])).toRanges()).toEqual([[1, MAX]])
    expect(decodeAll(rawSeqSet([[MAX, 0]])).has(MAX)).toBe(true)
    const full = decodeAll(rawSeqSet(Array.from({ length: MAX_SEQ_RANGES }, (_, i) => [2 * i + 1, 0])))
    expect(full.rangeCount()).toBe(MAX_SEQ_RANGES)
    expect(full.has(2 * MAX_SEQ_RANGES - 1)).toBe(true)
    expect(full.has(2 * MAX_SEQ_RANGES)).toBe(false)
  })

  it('refuses the freeze input: 40k ranges listed out of order', () => {
    // The input: each range below the previous one, so a decoder that inserts each
    // range into place rebuilds its whole list per range.
    const n = 40_000
    const bytes = rawSeqSet(Array.from({ length: n }, (_, i) => [2 * (n - i) + 1, 0]))
    expect(() => SeqSet.decode(decoding.createDecoder(bytes))).toThrow(SeqSetError)
  })

  it('decodes 40k ascending ranges exactly', () => {
    const n = 40_000
    const set = decodeAll(rawSeqSet(Array.from({ length: n }, (_, i) => [3 * i + 1, 1])))
    expect(set.rangeCount()).toBe(n)
    expect(set.size()).toBe(2 * n)
    expect(set.has(3 * (n - 1) + 2)).toBe(true)
    expect(set.has(3 * (n - 1) + 3)).toBe(false)
    expect(decodeAll(encodeSet(set)).equals(set)).toBe(true)
  })
})

// ── misuse and bounds on the writing side ──────────────────────────────────────────────────────

describe('SeqSet refuses misuse', () => {
  it('addRange refuses seqs that are not safe integers ≥ 1 and backwards ranges', () => {
    const set = new SeqSet()
    for (const [start, end] of [[0, 1], [-1, 2], [1.5, 2], [3, 2], [1, MAX + 1], [Number.NaN, 1], [1, Infinity]] as const) {
      expect(() => set.addRange(start, end), `[${start}, ${end}]`).toThrow(SeqSetError)
    }
    expect(() => set.add(0)).toThrow(SeqSetError)
    expect(set.isEmpty()).toBe(true)
  })

  it('fromRanges refuses what decode refuses', () => {
    expect(() => SeqSet.fromRanges([[3, 4], [1, 2]])).toThrow(SeqSetError)
    expect(() => SeqSet.fromRanges([[1, 4], [4, 6]])).toThrow(SeqSetError)
    expect(() => SeqSet.fromRanges([[2, 1]])).toThrow(SeqSetError)
    expect(() => SeqSet.fromRanges([[0, 1]])).toThrow(SeqSetError)
    expect(() => SeqSet.fromRanges(Array.from({ length: MAX_SEQ_RANGES + 1 }, (_, i): [number, number] => [2 * i + 1, 2 * i + 1]))).toThrow(
      SeqSetError,
    )
    expect(SeqSet.fromRanges([[1, 2], [3, 4], [9, 9]]).toRanges()).toEqual([[1, 4], [9, 9]])
  })

  it('encode refuses a set with more ranges than any receiver accepts', () => {
    // A set built locally can grow past the wire bound (e.g. a member device seals every other
    // seq); writing it would produce bytes every receiver refuses.
    const set = new SeqSet()
    for (let i = 0; i <= MAX_SEQ_RANGES; i++) set.add(2 * i + 1)
    expect(set.rangeCount()).toBe(MAX_SEQ_RANGES + 1)
    expect(() => set.encode(encoding.createEncoder())).toThrow(SeqSetError)
    set.add(2)
    expect(set.rangeCount()).toBe(MAX_SEQ_RANGES)
    expect(decodeAll(encodeSet(set)).equals(set)).toBe(true)
  })

  it('addRange inserts out of order into a large set without losing anything', () => {
    const set = new SeqSet()
    const n = 20_000
    for (let i = n; i >= 1; i--) set.add(2 * i)
    expect(set.rangeCount()).toBe(n)
    for (let i = n; i >= 1; i--) set.add(2 * i - 1)
    expect(set.toRanges()).toEqual([[1, 2 * n]])
  })
})
