/**
 * Snapshot payloads (WIRE.md "Envelope v1", plaintext of a snapshot): what an authenticated but
 * hostile member device can put in one. Every malformed or oversized payload is refused with a
 * code and a reason, never thrown, and never costs more than a linear pass to refuse.
 *
 * fast-check picks a seed per run and prints it (with the shrunk counterexample) on failure.
 * Replay one: CONTEXTSYNC_SEED=<seed> npx vitest run test/sync/snapshot.test.ts
 */
import fc from 'fast-check'
import * as encoding from 'lib0/encoding'
import { describe, expect, it } from 'vitest'
import { RejectCode } from '../../src/crypto/codes.js'
import { MAX_SEQ_RANGES, SeqSet } from '../../src/sync/seq-set.js'
import {
  MAX_SNAPSHOT_RANGES,
  MAX_SNAPSHOT_SENDERS,
  SnapshotLimitError,
  coverageOverLimits,
  decodeSnapshot,
  decodeSnapshotChecked,
  encodeSnapshot,
  type SnapshotPayload,
} from '../../src/sync/snapshot.js'
import { toHex } from '../../src/util/bytes.js'
import { propertyParams } from '../helpers/seeded.js'

const params = propertyParams(200)

/** A distinct 16-byte sender id per index. */
function senderId(i: number): string {
  const bytes = new Uint8Array(16)
  new DataView(bytes.buffer).setUint32(12, i)
  bytes[0] = 0xc5
  return toHex(bytes)
}

/** `count` singleton ranges 1, 3, 5, …: the most ranges for the fewest seqs. */
function sparse(count: number, from = 1): SeqSet {
  return SeqSet.fromRanges(Array.from({ length: count }, (_, i): [number, number] => [from + 2 * i, from + 2 * i]))
}

interface RawSender {
  id: string
  /** Raw `(start, length-1)` pairs, written without any check. */
  pairs: Array<[number, number]>
}

/** Raw snapshot bytes, bypassing every check of {@link encodeSnapshot}. */
function rawSnapshot(senders: RawSender[], state = Uint8Array.of(0, 0), opts: { version?: number; count?: number; trailing?: number[] } = {}): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, opts.version ?? 1)
  encoding.writeVarUint(enc, opts.count ?? senders.length)
  for (const sender of senders) {
    encoding.writeUint8Array(enc, Uint8Array.from(Buffer.from(sender.id, 'hex')))
    encoding.writeVarUint(enc, sender.pairs.length)
    for (const [start, length] of sender.pairs) {
      encoding.writeVarUint(enc, start)
      encoding.writeVarUint(enc, length)
    }
  }
  encoding.writeVarUint8Array(enc, state)
  for (const byte of opts.trailing ?? []) encoding.writeUint8(enc, byte)
  return encoding.toUint8Array(enc)
}

function expectRefused(bytes: Uint8Array, code: RejectCode, reason: RegExp): void {
  const checked = decodeSnapshotChecked(bytes)
  expect(checked.ok).toBe(false)
  if (checked.ok) return
  expect(checked.code).toBe(code)
  expect(checked.reason).toMatch(reason)
  expect(decodeSnapshot(bytes)).toBeUndefined()
}

function expectDecoded(bytes: Uint8Array): SnapshotPayload {
  const checked = decodeSnapshotChecked(bytes)
  if (!checked.ok) throw new Error(`refused: ${checked.code} ${checked.reason}`)
  expect(decodeSnapshot(bytes)).toBeDefined()
  return checked.value
}

const setArb = fc
  .array(fc.tuple(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 0, max: 40 })), { maxLength: 20 })
  .map((ranges) => {
    const set = new SeqSet()
    for (const [start, length] of ranges) set.addRange(start, start + length)
    return set
  })
const payloadArb: fc.Arbitrary<SnapshotPayload> = fc
  .record({
    senders: fc.uniqueArray(fc.uint8Array({ minLength: 16, maxLength: 16 }).map(toHex), { maxLength: 6 }),
    sets: fc.array(setArb, { minLength: 6, maxLength: 6 }),
    state: fc.uint8Array({ maxLength: 64 }),
  })
  .map(({ senders, sets, state }) => ({ coverage: new Map(senders.map((id, i) => [id, sets[i]!])), state }))

describe('snapshot payloads', () => {
  it('round-trip: decode(encode(p)) is p, and re-encodes to the same bytes', () => {
    fc.assert(
      fc.property(payloadArb, (payload) => {
        const bytes = encodeSnapshot(payload)
        const decoded = expectDecoded(bytes)
        expect([...decoded.coverage.keys()]).toEqual([...payload.coverage.keys()])
        for (const [id, set] of payload.coverage) expect(decoded.coverage.get(id)?.equals(set), id).toBe(true)
        expect(decoded.state).toEqual(payload.state)
        expect(encodeSnapshot(decoded)).toEqual(bytes)
      }),
      params,
    )
  })

  it('never throws on corrupted bytes: every result is a payload or a code with a reason', () => {
    const mutationArb = fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })
    fc.assert(
      fc.property(payloadArb, mutationArb, fc.nat(), (payload, mutations, cut) => {
        const bytes = encodeSnapshot(payload).slice()
        for (const [at, value] of mutations) bytes[at % bytes.length] = value
        const checked = decodeSnapshotChecked(bytes.subarray(0, bytes.length - (cut % 3)))
        if (!checked.ok) {
          expect([RejectCode.BadPayload, RejectCode.UnsupportedVersion]).toContain(checked.code)
          expect(checked.reason.length).toBeGreaterThan(0)
        }
      }),
      params,
    )
  })

  it('refuses a version it does not know with UnsupportedVersion', () => {
    for (const version of [0, 2, 255]) expectRefused(rawSnapshot([], undefined, { version }), RejectCode.UnsupportedVersion, /version/)
  })

  it('refuses empty, truncated and trailing bytes with BadPayload', () => {
    expectRefused(new Uint8Array(0), RejectCode.BadPayload, /truncated/)
    const bytes = encodeSnapshot({ coverage: new Map([[senderId(1), SeqSet.fromRanges([[1, 9], [1025, 1030]])]]), state: Uint8Array.of(7, 8, 9) })
    for (let cut = 1; cut < bytes.length; cut++) {
      const checked = decodeSnapshotChecked(bytes.subarray(0, cut))
      expect(checked.ok, `cut at ${cut}`).toBe(false)
      if (!checked.ok) expect(checked.code).toBe(RejectCode.BadPayload)
    }
    const trailing = rawSnapshot([{ id: senderId(1), pairs: [[1, 0]] }], undefined, { trailing: [0] })
    expectRefused(trailing, RejectCode.BadPayload, /trailing/)
  })

  it('refuses a seq set the sender could not have written, naming the sender', () => {
    const id = senderId(3)
    expectRefused(rawSnapshot([{ id, pairs: [[9, 0], [1, 0]] }]), RejectCode.BadPayload, new RegExp(id))
    expectRefused(rawSnapshot([{ id, pairs: [[0, 0]] }]), RejectCode.BadPayload, /seq/)
    expectRefused(rawSnapshot([{ id, pairs: [[Number.MAX_SAFE_INTEGER, 1]] }]), RejectCode.BadPayload, /seq/)
  })

  it('refuses the same sender twice (the second set would silently replace the first)', () => {
    const id = senderId(4)
    const bytes = rawSnapshot([
      { id, pairs: [[1, 0]] },
      { id, pairs: [[1, 2 ** 40]] },
    ])
    expectRefused(bytes, RejectCode.BadPayload, /duplicate sender/)
  })

  it(`bounds the sender count at MAX_SNAPSHOT_SENDERS (${MAX_SNAPSHOT_SENDERS})`, () => {
    const senders = (n: number) => Array.from({ length: n }, (_, i) => ({ id: senderId(i), pairs: [[1, 0]] as Array<[number, number]> }))
    expect(expectDecoded(rawSnapshot(senders(MAX_SNAPSHOT_SENDERS))).coverage.size).toBe(MAX_SNAPSHOT_SENDERS)
    expectRefused(rawSnapshot(senders(MAX_SNAPSHOT_SENDERS + 1)), RejectCode.BadPayload, /senders/)
    // A count claiming more senders than the bytes could hold is refused before anything is read.
    expectRefused(rawSnapshot([], undefined, { count: 2 ** 50 }), RejectCode.BadPayload, /senders/)
  })

  it(`bounds the ranges across senders at MAX_SNAPSHOT_RANGES (${MAX_SNAPSHOT_RANGES})`, () => {
    // Each sender's set is within MAX_SEQ_RANGES; only the total is over.
    const perSender = MAX_SEQ_RANGES
    const full = Math.floor(MAX_SNAPSHOT_RANGES / perSender)
    const rest = MAX_SNAPSHOT_RANGES - full * perSender
    const pairs = (n: number) => Array.from({ length: n }, (_, i): [number, number] => [2 * i + 1, 0])
    const senders = Array.from({ length: full }, (_, i) => ({ id: senderId(i), pairs: pairs(perSender) }))
    const atLimit = [...senders, { id: senderId(full), pairs: pairs(rest) }]
    const payload = expectDecoded(rawSnapshot(atLimit))
    expect([...payload.coverage.values()].reduce((n, s) => n + s.rangeCount(), 0)).toBe(MAX_SNAPSHOT_RANGES)
    const overLimit = [...senders, { id: senderId(full), pairs: pairs(rest + 1) }]
    expectRefused(rawSnapshot(overLimit), RejectCode.BadPayload, /ranges/)
  })

  it('refuses the freeze input: a 150 KB snapshot with 40k ranges out of order', () => {
    const n = 40_000
    const pairs = Array.from({ length: n }, (_, i): [number, number] => [2 * (n - i) + 1, 0])
    const bytes = rawSnapshot([{ id: senderId(9), pairs }])
    expect(bytes.length).toBeGreaterThan(100_000)
    expectRefused(bytes, RejectCode.BadPayload, /order/)
  })

  it('round-trips a 40k-range snapshot in order', () => {
    const n = 40_000
    const coverage = new Map([
      [senderId(1), sparse(n)],
      [senderId(2), SeqSet.fromRanges([[1, 1_000_000]])],
    ])
    const bytes = encodeSnapshot({ coverage, state: Uint8Array.of(1, 2, 3) })
    const decoded = expectDecoded(bytes)
    expect(decoded.coverage.get(senderId(1))!.equals(coverage.get(senderId(1))!)).toBe(true)
    expect(decoded.coverage.get(senderId(1))!.rangeCount()).toBe(n)
    expect(decoded.coverage.get(senderId(2))!.toRanges()).toEqual([[1, 1_000_000]])
  })
})

describe('encodeSnapshot never writes what receivers refuse', () => {
  it('refuses too many senders, too many ranges and malformed sender ids', () => {
    const tooManySenders = new Map(Array.from({ length: MAX_SNAPSHOT_SENDERS + 1 }, (_, i) => [senderId(i), sparse(1)]))
    const perSender = Math.ceil((MAX_SNAPSHOT_RANGES + 1) / 8)
    const tooManyRanges = new Map(Array.from({ length: 8 }, (_, i) => [senderId(i), sparse(perSender)]))
    const cases: Array<[string, Map<string, SeqSet>, RegExp]> = [
      ['senders', tooManySenders, /senders/],
      ['ranges', tooManyRanges, /ranges/],
      ['short id', new Map([['c5ab', sparse(1)]]), /sender id/],
      ['not hex', new Map([['z'.repeat(32), sparse(1)]]), /sender id/],
    ]
    for (const [what, coverage, reason] of cases) {
      expect(coverageOverLimits(coverage), what).toMatch(reason)
      expect(() => encodeSnapshot({ coverage, state: new Uint8Array(0) }), what).toThrow(SnapshotLimitError)
    }
    const fine = new Map([[senderId(1), sparse(MAX_SEQ_RANGES)]])
    expect(coverageOverLimits(fine)).toBeUndefined()
    expect(expectDecoded(encodeSnapshot({ coverage: fine, state: new Uint8Array(0) })).coverage.get(senderId(1))!.rangeCount()).toBe(MAX_SEQ_RANGES)
  })
})
