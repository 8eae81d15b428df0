/**
 * `SeqReservation` (src/sync/seq-reservation.ts): seqs are reserved durably in blocks before use,
 * so a restart — even after a crash or with a damaged record — never seals a seq twice.
 */
import { describe, expect, it } from 'vitest'
import { decodeReservation, encodeReservation, SEQ_BLOCK, SeqReservation } from '../../src/sync/seq-reservation.js'

function reservation(): { seqs: SeqReservation; saved: Uint8Array[] } {
  const saved: Uint8Array[] = []
  return { seqs: new SeqReservation(async (record) => void saved.push(record)), saved }
}

describe('SeqReservation', () => {
  it('stores a block before handing out its first seq, and one write serves concurrent callers', async () => {
    const { seqs, saved } = reservation()
    expect(seqs.restore(undefined)).toBe(true)
    seqs.start(0, false)
    expect(seqs.ready).toBe(false)
    await Promise.all([seqs.reserve(), seqs.reserve()])
    expect(saved.map(decodeReservation)).toEqual([1 + SEQ_BLOCK])
    expect(seqs.ready).toBe(true)
    expect([seqs.take(), seqs.take()]).toEqual([1, 2])
  })

  it('continues after both the stored reservation and the highest own seq applied', () => {
    const a = reservation().seqs
    a.restore(encodeReservation(500))
    a.start(20, false)
    expect(a.take()).toBe(501)
    const b = reservation().seqs
    b.restore(encodeReservation(10))
    b.start(700, false)
    expect(b.take()).toBe(701)
  })

  it('skips a whole block when the record is damaged', () => {
    const { seqs } = reservation()
    expect(seqs.restore(new Uint8Array([9, 9, 9]))).toBe(false)
    seqs.start(40, true)
    expect(seqs.take()).toBe(41 + SEQ_BLOCK)
  })

  it('reads back what it writes and refuses records that are truncated, trailing, of another version or past the safe range', () => {
    expect(decodeReservation(encodeReservation(123_456))).toBe(123_456)
    const good = encodeReservation(77)
    expect(decodeReservation(good.subarray(0, 1))).toBeUndefined()
    expect(decodeReservation(new Uint8Array([...good, 0]))).toBeUndefined()
    expect(decodeReservation(new Uint8Array([2, ...good.subarray(1)]))).toBeUndefined()
    expect(decodeReservation(encodeReservation(Number.MAX_SAFE_INTEGER - 2 ** 32 + 1))).toBeUndefined()
  })
})
