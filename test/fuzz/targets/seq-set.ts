/**
 * Encoded seq sets through `SeqSet.decode` (src/sync/seq-set.ts): it returns a set or throws
 * `SeqSetError` — its documented refusal, which every caller turns into a code — and nothing
 * else. An accepted set is canonical (ascending, disjoint, never adjacent, safe integers ≥ 1),
 * within `maxRanges`, encodes back to itself, and agrees with the set algebra on a second set.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { MAX_SEQ_RANGES, SeqSet, SeqSetError } from '../../../src/sync/seq-set.js'
import { mutate, randomInput } from '../mutators.js'
import { chance, int, pick, setupRng, weighted, type Rng } from '../rng.js'
import { expectThat, PropertyViolation, type Target } from '../target.js'
import { craftedSeqSet } from './crafted.js'

function encoded(set: SeqSet): Uint8Array {
  const enc = encoding.createEncoder()
  set.encode(enc)
  return encoding.toUint8Array(enc)
}

function sampleSet(gen: Rng): SeqSet {
  const set = new SeqSet()
  const n = int(gen, 0, 12)
  for (let i = 0; i < n; i++) {
    const start = int(gen, 1, 500)
    set.addRange(start, start + int(gen, 0, 20))
  }
  return set
}

/** Input layout: `u8 budget selector · seqset bytes` (the selector picks `maxRanges`, as containers pass what is left of theirs). */
const BUDGETS = [MAX_SEQ_RANGES, MAX_SEQ_RANGES, 1, 0, 3, 1000, MAX_SEQ_RANGES + 5]

function checkCanonical(set: SeqSet, maxRanges: number): void {
  const ranges = set.toRanges()
  expectThat(ranges.length === set.rangeCount() && ranges.length <= Math.min(maxRanges, MAX_SEQ_RANGES), `accepted ${ranges.length} ranges (budget ${maxRanges})`)
  let prevEnd = -1
  for (const [start, end] of ranges) {
    expectThat(Number.isSafeInteger(start) && Number.isSafeInteger(end) && start >= 1 && end >= start, `accepted range [${start}, ${end}]`)
    expectThat(prevEnd < 0 || start > prevEnd + 1, `accepted ranges out of order or adjacent at ${start}`)
    prevEnd = end
  }
}

function checkAlgebra(a: SeqSet, b: SeqSet): void {
  const minus = a.subtract(b)
  expectThat(!minus.intersects(b), 'a − b intersects b')
  expectThat(a.covers(minus), 'a does not cover a − b')
  const union = SeqSet.fromRanges(a.toRanges())
  union.addAll(b)
  expectThat(union.covers(a) && union.covers(b), 'a ∪ b does not cover both')
  expectThat(a.intersects(b) === !minus.equals(a), 'intersects disagrees with subtract')
  expectThat(a.covers(b) === b.subtract(a).isEmpty(), 'covers disagrees with subtract')
}

export const seqSetTarget: Target = {
  name: 'seq-set',
  description: 'SeqSet.decode and the set algebra on what it accepts (src/sync/seq-set.ts)',
  weight: 8,
  async setup(seed) {
    const gen0 = setupRng(seed, 'seq-set')
    const sets = Array.from({ length: 16 }, () => sampleSet(gen0))
    const samples = sets.map(encoded)
    return {
      generate(gen) {
        const body = weighted<() => Uint8Array>(gen, [
          [6, () => mutate(gen, pick(gen, samples), samples)],
          [3, () => craftedSeqSet(gen)],
          [1, () => randomInput(gen)],
        ])()
        const out = new Uint8Array(body.length + 1)
        out[0] = chance(gen, 0.8) ? 0 : int(gen, 0, 255)
        out.set(body, 1)
        return out
      },
      run(input) {
        if (input.length === 0) return 'refused empty'
        const maxRanges = BUDGETS[input[0]! % BUDGETS.length]!
        const dec = decoding.createDecoder(input.subarray(1))
        let set: SeqSet
        try {
          set = SeqSet.decode(dec, maxRanges)
        } catch (error) {
          if (error instanceof SeqSetError) return 'refused SeqSetError'
          throw error
        }
        expectThat(dec.pos <= input.length - 1, 'decoder read past the input')
        checkCanonical(set, maxRanges)
        const again = SeqSet.decode(decoding.createDecoder(encoded(set)))
        if (!again.equals(set)) throw new PropertyViolation('accepted set does not round-trip')
        if (set.rangeCount() <= 256) checkAlgebra(set, sets[input.length % sets.length]!)
        return 'accepted'
      },
    }
  },
}
