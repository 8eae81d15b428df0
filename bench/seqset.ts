/**
 * SeqSet benchmark (`BENCH=seqset npm run bench`): decoding the per-sender seq sets of a snapshot
 * (WIRE.md "Envelope v1", `seqset`) and inserting seqs out of order, the old quadratic algorithm
 * vs the current one, side by side in one run.
 *
 * Baseline: `OldSeqSet` below, a verbatim copy of `decode`/`addRange` from `src/sync/seq-set.ts`
 * at commit 019de9c (before bounded parsing). Every range that does not extend the last one
 * rebuilt the whole range list, so a snapshot listing its ranges in descending order cost
 * O(ranges²) to decode (the "freeze" input: 40k ranges, ~150 KB).
 * Subject: `SeqSet` from `src/sync/seq-set.ts`: decode is one pass and refuses ranges out of
 * order; `addRange` is two binary searches and at most one splice.
 *
 * Each figure is the median of BENCH_RUNS (3) timed batches after one unmeasured warm-up; a batch
 * repeats the operation until it takes ≥ 20 ms, and the figure is per operation. A full GC runs
 * before each batch, and old and new batches alternate.
 *
 * Environment: BENCH_SEQSET_SIZES (1000,10000,40000), BENCH_RUNS (3).
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as prng from 'lib0/prng'
import { MAX_SEQ_RANGES, SeqSet, SeqSetError } from '../src/sync/seq-set.js'
import { MAX_SNAPSHOT_RANGES, decodeSnapshotChecked } from '../src/sync/snapshot.js'
import { collectGarbage } from './bench-kit.js'
import { fmt, median, printTable } from './table.js'

const SIZES = (process.env.BENCH_SEQSET_SIZES ?? '1000,10000,40000').split(',').map((s) => Number(s.trim()))
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))
const MIN_BATCH_MS = 20

// ── baseline: the algorithm before bounded parsing (commit 019de9c), copied verbatim ──────────

/** BASELINE ONLY — `SeqSet` as of commit 019de9c, reduced to `addRange`/`decode`. Not used by the library. */
class OldSeqSet {
  private ranges: Array<[number, number]> = []

  get rangeCount(): number {
    return this.ranges.length
  }

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

  static decode(dec: decoding.Decoder): OldSeqSet {
    const set = new OldSeqSet()
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

// ── inputs ────────────────────────────────────────────────────────────────────────────────────

/** Singleton ranges 1, 3, 5, …: one range per seq, as many ranges as bytes allow. */
function singletons(n: number): number[] {
  return Array.from({ length: n }, (_, i) => 2 * i + 1)
}

/** A raw `seqset` of singleton ranges, in the order given (bypassing every check). */
function rawSeqSet(starts: number[]): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, starts.length)
  for (const start of starts) {
    encoding.writeVarUint(enc, start)
    encoding.writeVarUint(enc, 0)
  }
  return encoding.toUint8Array(enc)
}

function shuffled(values: number[], seed: number): number[] {
  const gen = prng.create(seed)
  const out = values.slice()
  for (let i = out.length - 1; i > 0; i--) {
    const j = prng.uint32(gen, 0, i)
    ;[out[i], out[j]] = [out[j]!, out[i]!]
  }
  return out
}

// ── timing ────────────────────────────────────────────────────────────────────────────────────


/** Keeps results alive so the JIT cannot drop the work. */
let sink = 0

/** Repetitions of `fn` that take at least {@link MIN_BATCH_MS} (after one warm-up call). */
function calibrate(fn: () => number): number {
  sink += fn()
  let reps = 1
  for (;;) {
    const start = performance.now()
    for (let i = 0; i < reps; i++) sink += fn()
    const ms = performance.now() - start
    if (ms >= MIN_BATCH_MS || reps >= 1 << 20) return reps
    reps *= Math.min(64, Math.max(2, Math.ceil(MIN_BATCH_MS / Math.max(ms, 0.01))))
  }
}

/** Milliseconds per call of `fn` over one batch of `reps`, after a full GC. */
function batch(fn: () => number, reps: number): number {
  collectGarbage()
  const start = performance.now()
  for (let i = 0; i < reps; i++) sink += fn()
  return (performance.now() - start) / reps
}

/**
 * Median milliseconds per call of each of `fns`, their batches interleaved run by run so that
 * load on the machine drifting during the run weighs on every subject alike.
 */
function msPerOp(...fns: Array<() => number>): number[] {
  const reps = fns.map(calibrate)
  const samples = fns.map((): number[] => [])
  for (let run = 0; run < RUNS; run++) fns.forEach((fn, i) => samples[i]!.push(batch(fn, reps[i]!)))
  return samples.map(median)
}

function ms(value: number): string {
  return value >= 1 ? fmt(value, 'ms') : fmt(value * 1000, 'µs')
}

// ── suites ────────────────────────────────────────────────────────────────────────────────────

function oldDecode(bytes: Uint8Array): number {
  return OldSeqSet.decode(decoding.createDecoder(bytes)).rangeCount
}

function newDecode(bytes: Uint8Array): number {
  return SeqSet.decode(decoding.createDecoder(bytes)).rangeCount()
}

/** The new decoder on an input it refuses: time until it throws. */
function newRefuse(bytes: Uint8Array): number {
  try {
    SeqSet.decode(decoding.createDecoder(bytes))
  } catch (error) {
    if (error instanceof SeqSetError) return 1
    throw error
  }
  throw new Error('bench: the new decoder accepted an out-of-order seq set')
}

function benchDecode(): void {
  const rows: string[][] = []
  for (const n of SIZES) {
    const ascending = rawSeqSet(singletons(n))
    const descending = rawSeqSet(singletons(n).reverse())
    const [oldAsc, newAsc] = msPerOp(() => oldDecode(ascending), () => newDecode(ascending)) as [number, number]
    rows.push([String(n), 'ascending (honest)', fmt(ascending.length / 1024, 'KiB'), ms(oldAsc), ms(newAsc), 'decoded', fmt(oldAsc / newAsc, '×')])
    const [oldDesc, newDesc] = msPerOp(() => oldDecode(descending), () => newRefuse(descending)) as [number, number]
    rows.push([String(n), 'descending (freeze input)', fmt(descending.length / 1024, 'KiB'), ms(oldDesc), ms(newDesc), 'refused', fmt(oldDesc / newDesc, '×')])
  }
  printTable(
    `SeqSet.decode: singleton ranges, median of ${RUNS} (old = quadratic decode of 019de9c, copied into bench/seqset.ts)`,
    ['ranges', 'order', 'bytes', 'old', 'new', 'new result', 'old / new'],
    rows,
  )
}

function oldInsert(seqs: number[]): number {
  const set = new OldSeqSet()
  for (const seq of seqs) set.addRange(seq, seq)
  return set.rangeCount
}

function newInsert(seqs: number[]): number {
  const set = new SeqSet()
  for (const seq of seqs) set.addRange(seq, seq)
  return set.rangeCount()
}

function benchAddRange(): void {
  const rows: string[][] = []
  for (const n of SIZES) {
    const orders: Array<[string, number[]]> = [
      ['ascending', singletons(n)],
      ['descending', singletons(n).reverse()],
      ['random (seed 1)', shuffled(singletons(n), 1)],
    ]
    for (const [order, seqs] of orders) {
      const [oldMs, newMs] = msPerOp(() => oldInsert(seqs), () => newInsert(seqs)) as [number, number]
      rows.push([String(n), order, ms(oldMs), ms(newMs), ms(newMs / n), fmt(oldMs / newMs, '×')])
    }
  }
  printTable(
    `addRange: n singleton seqs into an empty set (no two adjacent, so n ranges), whole build, median of ${RUNS}`,
    ['seqs', 'order', 'old', 'new', 'new per add', 'old / new'],
    rows,
  )
}

/** Snapshot bytes (no state) with `senders` senders of `perSender` singleton ranges each. */
function rawSnapshot(senders: number, perSender: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, 1)
  encoding.writeVarUint(enc, senders)
  const ranges = rawSeqSet(singletons(perSender))
  for (let s = 0; s < senders; s++) {
    const id = new Uint8Array(16)
    id[15] = s
    encoding.writeUint8Array(enc, id)
    encoding.writeUint8Array(enc, ranges)
  }
  encoding.writeVarUint8Array(enc, new Uint8Array(0))
  return encoding.toUint8Array(enc)
}

function benchBounds(): void {
  const perSender = MAX_SEQ_RANGES
  const senders = MAX_SNAPSHOT_RANGES / MAX_SEQ_RANGES
  const one = rawSnapshot(1, perSender)
  const full = rawSnapshot(senders, perSender)
  const decode = (bytes: Uint8Array) => () => {
    const checked = decodeSnapshotChecked(bytes)
    if (!checked.ok) throw new Error(`bench: snapshot refused: ${checked.reason}`)
    return checked.value.coverage.size
  }
  printTable(
    `decodeSnapshotChecked at the bounds (new only), median of ${RUNS}`,
    ['input', 'bytes', 'decode'],
    [
      [`1 sender × MAX_SEQ_RANGES (${perSender})`, fmt(one.length / 1024, 'KiB'), ms(msPerOp(decode(one))[0]!)],
      [`${senders} senders × ${perSender} = MAX_SNAPSHOT_RANGES`, fmt(full.length / 1024, 'KiB'), ms(msPerOp(decode(full))[0]!)],
    ],
  )
}

/** Run the seq set benchmark and print its tables. */
export async function benchSeqSet(): Promise<void> {
  benchDecode()
  benchAddRange()
  benchBounds()
  if (sink === 0) console.log('(no work measured)')
}
