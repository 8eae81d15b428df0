/**
 * Sets of sequence numbers kept as sorted, disjoint, inclusive ranges. Envelopes may arrive out
 * of order over different paths (relay, phone link), so a receiver tracks the *set* of seqs it has
 * applied per sender, not a maximum (WIRE.md "Envelope v1": seq is per sender, per room, ≥ 1,
 * never reused).
 *
 * Every operation is linear or better: a snapshot's coverage comes from another device, and a
 * member device or relay must not be able to make a receiver spend more than a pass over the
 * bytes it sent (THREAT_MODEL.md "A member device").
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { ContextSyncError } from '../errors.js'

/**
 * Most ranges one encoded set may hold. Why this number: seqs are reserved in blocks and a restart
 * skips the rest of its block (WIRE.md "Device store layout", `replica/<roomId>/meta`), so an
 * honest sender's set gains about one range per restart, plus one per envelope a receiver
 * refused. 65 536 is a device restarted ten times a day for seventeen years; a set at the bound
 * decodes in milliseconds and takes about 1 MiB in memory.
 */
export const MAX_SEQ_RANGES = 65_536

/**
 * A seq set that cannot be decoded (malformed, out of order, over {@link MAX_SEQ_RANGES}), or
 * misuse of the API (a seq that is not a safe integer ≥ 1, a backwards range, encoding a set over
 * the bound); code `invalid-argument`. Decoding callers catch it and refuse the input with a
 * `RejectCode`.
 */
export class SeqSetError extends ContextSyncError {
  override name = 'SeqSetError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-argument', message, options)
  }
}

/** True when `seq` can be a seq at all: WIRE.md "Envelope v1" (`varuint seq`, ≥ 1). */
function isSeq(seq: number): boolean {
  return Number.isSafeInteger(seq) && seq >= 1
}

/**
 * Appends ascending ranges to a flat bound list, merging adjacent ones; refuses anything not
 * strictly after the previous range, so building a set from a list is one pass. Shared by
 * {@link SeqSet.decode} and {@link SeqSet.fromRanges}: both refuse the same inputs.
 */
class AscendingBuilder {
  private readonly bounds: number[]
  private used = 0
  private ranges = 0

  /** `capacity`: ranges expected, when known (decode reads the count first). */
  constructor(
    private readonly maxRanges: number,
    capacity = 0,
  ) {
    // Filled in place: growing a large array by push copies it each time it doubles.
    this.bounds = capacity > 0 ? new Array<number>(2 * capacity) : []
  }

  push(start: number, end: number): void {
    if (!isSeq(start) || !isSeq(end)) throw new SeqSetError(`seq range [${start}, ${end}] is not made of safe integers ≥ 1`)
    if (end < start) throw new SeqSetError(`seq range [${start}, ${end}] ends before it starts`)
    if (++this.ranges > this.maxRanges) throw new SeqSetError(`seq set has more than ${this.maxRanges} ranges`)
    const bounds = this.bounds
    const used = this.used
    if (used > 0) {
      const prevEnd = bounds[used - 1]!
      if (start <= prevEnd) throw new SeqSetError(`seq range [${start}, ${end}] is out of order or overlaps the previous one`)
      if (start === prevEnd + 1) {
        bounds[used - 1] = end
        return
      }
    }
    bounds[used] = start
    bounds[used + 1] = end
    this.used = used + 2
  }

  /** The bounds pushed so far (merged ranges leave preallocated slots unused: trimmed here). */
  finish(): number[] {
    this.bounds.length = this.used
    return this.bounds
  }
}

/** A set of positive integers stored as sorted `[start, end]` ranges. */
export class SeqSet {
  /**
   * `[start₀, end₀, start₁, end₁, …]`: ascending, disjoint, never adjacent (`endᵢ + 1 < startᵢ₊₁`),
   * every value a safe integer ≥ 1. Flat: one array of numbers, not one small array per range.
   */
  private bounds: number[] = []

  /**
   * Build a set from inclusive ranges listed ascending and disjoint, the order {@link encode}
   * writes (adjacent ranges merge). Refuses, like {@link decode}, anything else and more than
   * {@link MAX_SEQ_RANGES} ranges, so every set it returns can be encoded. For ranges in any order,
   * use {@link addRange}.
   *
   * @throws {@link SeqSetError} when a range is invalid or not after the previous one.
   */
  static fromRanges(ranges: Iterable<readonly [number, number]>): SeqSet {
    const builder = new AscendingBuilder(MAX_SEQ_RANGES)
    for (const [start, end] of ranges) builder.push(start, end)
    return SeqSet.ofBounds(builder.finish())
  }

  private static ofBounds(bounds: number[]): SeqSet {
    const set = new SeqSet()
    set.bounds = bounds
    return set
  }

  /** True when `seq` is in the set (binary search). */
  has(seq: number): boolean {
    const i = this.firstEndingAtOrAfter(seq)
    return i < this.bounds.length >> 1 && this.bounds[2 * i]! <= seq
  }

  /** True when the set holds no seq. */
  isEmpty(): boolean {
    return this.bounds.length === 0
  }

  /** Number of disjoint ranges: what the encoding and {@link MAX_SEQ_RANGES} count. */
  rangeCount(): number {
    return this.bounds.length >> 1
  }

  /**
   * Add one seq.
   *
   * @throws {@link SeqSetError} when `seq` is not a safe integer ≥ 1.
   */
  add(seq: number): void {
    this.addRange(seq, seq)
  }

  /**
   * Add the inclusive range `[start, end]`: two binary searches and at most one splice. The set
   * may grow past {@link MAX_SEQ_RANGES} in memory; {@link encode} refuses to write it then.
   *
   * @throws {@link SeqSetError} when `start`/`end` are not safe integers ≥ 1 or `end < start`.
   */
  addRange(start: number, end: number): void {
    if (!isSeq(start) || !isSeq(end) || end < start) throw new SeqSetError(`invalid seq range [${start}, ${end}]`)
    const bounds = this.bounds
    const n = bounds.length >> 1
    // Appending in order is by far the common case: one comparison, no search.
    if (n === 0 || start > bounds[2 * n - 1]! + 1) {
      bounds.push(start, end)
      return
    }
    // Ranges i..j-1 touch or overlap [start, end]: i is the first ending at or after start - 1,
    // j the first starting after end + 1.
    const i = this.firstEndingAtOrAfter(start - 1)
    const j = this.firstStartingAfter(end + 1)
    if (i === j) {
      bounds.splice(2 * i, 0, start, end)
      return
    }
    const merged0 = Math.min(start, bounds[2 * i]!)
    const merged1 = Math.max(end, bounds[2 * j - 1]!)
    if (j === i + 1) {
      bounds[2 * i] = merged0
      bounds[2 * i + 1] = merged1
    } else {
      bounds.splice(2 * i, 2 * (j - i), merged0, merged1)
    }
  }

  /** Add every seq of `other`: one linear merge of both range lists. */
  addAll(other: SeqSet): void {
    const theirs = other.bounds
    if (theirs.length === 0) return
    const ours = this.bounds
    if (ours.length === 0) {
      this.bounds = theirs.slice()
      return
    }
    if (theirs.length === 2) return this.addRange(theirs[0]!, theirs[1]!)
    const out: number[] = []
    let a = 0
    let b = 0
    while (a < ours.length || b < theirs.length) {
      let start: number
      let end: number
      if (b >= theirs.length || (a < ours.length && ours[a]! <= theirs[b]!)) {
        start = ours[a]!
        end = ours[a + 1]!
        a += 2
      } else {
        start = theirs[b]!
        end = theirs[b + 1]!
        b += 2
      }
      const last = out.length - 1
      if (last > 0 && start <= out[last]! + 1) out[last] = Math.max(out[last]!, end)
      else out.push(start, end)
    }
    this.bounds = out
  }

  /** True when every seq of `other` is in this set (one linear pass over both). */
  covers(other: SeqSet): boolean {
    const ours = this.bounds
    const theirs = other.bounds
    let a = 0
    for (let b = 0; b < theirs.length; b += 2) {
      const start = theirs[b]!
      while (a < ours.length && ours[a + 1]! < start) a += 2
      // Ranges are never adjacent, so one of ours must hold the whole of theirs.
      if (a >= ours.length || ours[a]! > start || ours[a + 1]! < theirs[b + 1]!) return false
    }
    return true
  }

  /** True when this set and `other` share at least one seq (one linear pass over both). */
  intersects(other: SeqSet): boolean {
    const ours = this.bounds
    const theirs = other.bounds
    let a = 0
    let b = 0
    while (a < ours.length && b < theirs.length) {
      if (ours[a + 1]! < theirs[b]!) a += 2
      else if (theirs[b + 1]! < ours[a]!) b += 2
      else return true
    }
    return false
  }

  /** A new set of the seqs of this set that are not in `other` (one linear pass over both). */
  subtract(other: SeqSet): SeqSet {
    const ours = this.bounds
    const theirs = other.bounds
    const out: number[] = []
    let b = 0
    for (let a = 0; a < ours.length; a += 2) {
      let start = ours[a]!
      const end = ours[a + 1]!
      while (b < theirs.length && theirs[b + 1]! < start) b += 2
      // Cut every range of theirs that overlaps [start, end] out of it, left to right.
      let k = b
      while (k < theirs.length && theirs[k]! <= end) {
        if (theirs[k]! > start) out.push(start, theirs[k]! - 1)
        start = theirs[k + 1]! + 1
        if (start > end) break
        k += 2
      }
      if (start <= end) out.push(start, end)
      // theirs[k] may reach past `end` into our next range: resume from it, not after it.
      b = k
    }
    return SeqSet.ofBounds(out)
  }

  /** True when both sets hold exactly the same seqs. */
  equals(other: SeqSet): boolean {
    const ours = this.bounds
    const theirs = other.bounds
    if (ours.length !== theirs.length) return false
    // The representation is canonical (sorted, disjoint, never adjacent), so equal sets have
    // equal bound lists.
    for (let i = 0; i < ours.length; i++) if (ours[i] !== theirs[i]) return false
    return true
  }

  /** Highest seq, or 0 when empty. */
  max(): number {
    return this.bounds[this.bounds.length - 1] ?? 0
  }

  /** Number of seqs in the set. */
  size(): number {
    let n = 0
    for (let i = 0; i < this.bounds.length; i += 2) n += this.bounds[i + 1]! - this.bounds[i]! + 1
    return n
  }

  /** A copy of the ranges, ascending. */
  toRanges(): Array<[number, number]> {
    const out: Array<[number, number]> = []
    for (let i = 0; i < this.bounds.length; i += 2) out.push([this.bounds[i]!, this.bounds[i + 1]!])
    return out
  }

  /**
   * Write as `varuint count · (varuint start · varuint length-1)*`, ranges ascending (WIRE.md
   * "Envelope v1", `seqset`).
   *
   * @throws {@link SeqSetError} when the set has more than {@link MAX_SEQ_RANGES} ranges: every
   * receiver would refuse the bytes, so the caller must keep its sets within the bound.
   */
  encode(enc: encoding.Encoder): void {
    const count = this.rangeCount()
    if (count > MAX_SEQ_RANGES) throw new SeqSetError(`seq set has ${count} ranges, more than ${MAX_SEQ_RANGES}`)
    encoding.writeVarUint(enc, count)
    for (let i = 0; i < this.bounds.length; i += 2) {
      encoding.writeVarUint(enc, this.bounds[i]!)
      encoding.writeVarUint(enc, this.bounds[i + 1]! - this.bounds[i]!)
    }
  }

  /**
   * Read what {@link encode} wrote, in one pass: each range must start after the previous one
   * ends (adjacent ranges merge), every seq must be a safe integer ≥ 1, and there may be at most
   * `maxRanges` ranges.
   *
   * @param maxRanges - at most {@link MAX_SEQ_RANGES}; a container holding several sets passes
   *   what is left of its own budget.
   * @throws {@link SeqSetError} on any malformed input (callers catch it and refuse the input).
   */
  static decode(dec: decoding.Decoder, maxRanges = MAX_SEQ_RANGES): SeqSet {
    const limit = Math.min(maxRanges, MAX_SEQ_RANGES)
    try {
      const count = decoding.readVarUint(dec)
      if (count > limit) throw new SeqSetError(`seq set claims ${count} ranges, more than ${limit}`)
      // Each range takes at least two bytes: refuse a count the input cannot hold before reading.
      if (count * 2 > dec.arr.length - dec.pos) throw new SeqSetError(`seq set claims ${count} ranges, more than its bytes hold`)
      const builder = new AscendingBuilder(limit, count)
      for (let i = 0; i < count; i++) {
        const start = decoding.readVarUint(dec)
        const length = decoding.readVarUint(dec)
        if (!isSeq(start) || !Number.isSafeInteger(length) || length > Number.MAX_SAFE_INTEGER - start) {
          throw new SeqSetError('seq range is not made of safe integers ≥ 1')
        }
        builder.push(start, start + length)
      }
      return SeqSet.ofBounds(builder.finish())
    } catch (error) {
      if (error instanceof SeqSetError) throw error
      // lib0 throws its own errors on a truncated input or an overlong varuint.
      throw new SeqSetError('seq set is truncated or has a malformed varuint', { cause: error })
    }
  }

  /** Index of the first range whose end is ≥ `seq` (`rangeCount()` when none). */
  private firstEndingAtOrAfter(seq: number): number {
    const bounds = this.bounds
    let lo = 0
    let hi = bounds.length >> 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (bounds[2 * mid + 1]! < seq) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Index of the first range whose start is > `seq` (`rangeCount()` when none). */
  private firstStartingAfter(seq: number): number {
    const bounds = this.bounds
    let lo = 0
    let hi = bounds.length >> 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (bounds[2 * mid]! <= seq) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
