/**
 * Sets of sequence numbers kept as sorted, disjoint, inclusive ranges. Envelopes may arrive out
 * of order over different paths (relay, phone link), so a receiver tracks the *set* of seqs it has
 * applied per sender, not a maximum (DESIGN §3).
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'

/** A set of positive integers stored as sorted `[start, end]` ranges. */
export class SeqSet {
  /** Sorted, disjoint, non-adjacent inclusive ranges. */
  private ranges: Array<[number, number]> = []

  /** True when `seq` is in the set. */
  has(seq: number): boolean {
    let lo = 0
    let hi = this.ranges.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      const [start, end] = this.ranges[mid]!
      if (seq < start) hi = mid - 1
      else if (seq > end) lo = mid + 1
      else return true
    }
    return false
  }

  /** Add one seq. */
  add(seq: number): void {
    this.addRange(seq, seq)
  }

  /** Add the inclusive range `[start, end]`. */
  addRange(start: number, end: number): void {
    const ranges = this.ranges
    // Fast path: appending in order is by far the common case.
    const last = ranges[ranges.length - 1]
    if (!last || start > last[1] + 1) {
      ranges.push([start, end])
      return
    }
    if (start >= last[0] && start <= last[1] + 1) {
      last[1] = Math.max(last[1], end)
      return
    }
    const merged: Array<[number, number]> = []
    let placed = false
    for (const range of ranges) {
      if (range[1] + 1 < start) merged.push(range)
      else if (end + 1 < range[0]) {
        if (!placed) merged.push([start, end])
        placed = true
        merged.push(range)
      } else {
        start = Math.min(start, range[0])
        end = Math.max(end, range[1])
      }
    }
    if (!placed) merged.push([start, end])
    this.ranges = merged
  }

  /** Add every seq of `other`. */
  addAll(other: SeqSet): void {
    for (const [start, end] of other.ranges) this.addRange(start, end)
  }

  /** True when every seq of `other` is in this set. */
  covers(other: SeqSet): boolean {
    return other.ranges.every(([start, end]) => {
      for (const [s, e] of this.ranges) if (s <= start && end <= e) return true
      return false
    })
  }

  /** Highest seq, or 0 when empty. */
  max(): number {
    return this.ranges[this.ranges.length - 1]?.[1] ?? 0
  }

  /** Number of seqs in the set. */
  size(): number {
    let n = 0
    for (const [s, e] of this.ranges) n += e - s + 1
    return n
  }

  /** A copy of the ranges. */
  toRanges(): Array<[number, number]> {
    return this.ranges.map(([s, e]) => [s, e])
  }

  /** Write as `varuint count · (varuint start · varuint length-1)*`. */
  encode(enc: encoding.Encoder): void {
    encoding.writeVarUint(enc, this.ranges.length)
    for (const [s, e] of this.ranges) {
      encoding.writeVarUint(enc, s)
      encoding.writeVarUint(enc, e - s)
    }
  }

  /** Read what {@link encode} wrote. Throws on malformed input (callers catch). */
  static decode(dec: decoding.Decoder): SeqSet {
    const set = new SeqSet()
    const count = decoding.readVarUint(dec)
    if (count > dec.arr.length) throw new Error('seq set count exceeds input')
    for (let i = 0; i < count; i++) {
      const start = decoding.readVarUint(dec)
      const length = decoding.readVarUint(dec)
      if (start < 1 || !Number.isSafeInteger(start + length)) throw new Error('seq range out of bounds')
      set.addRange(start, start + length)
    }
    return set
  }
}
