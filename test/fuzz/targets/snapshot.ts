/**
 * Snapshot payloads through `decodeSnapshotChecked` (src/sync/snapshot.ts, WIRE.md "Envelope v1"):
 * never throws; refuses with 2 (version) or 11; what it accepts is within the bounds (1024
 * senders, 65 536 ranges per set, 262 144 in all) and encodes back to bytes that decode to the
 * same coverage.
 *
 * @module
 */
import type { Checked } from '../../../src/crypto/codes.js'
import { MAX_SEQ_RANGES } from '../../../src/sync/seq-set.js'
import { decodeSnapshotChecked, encodeSnapshot, MAX_SNAPSHOT_RANGES, MAX_SNAPSHOT_SENDERS, type SnapshotPayload } from '../../../src/sync/snapshot.js'
import { fixture } from '../fixture.js'
import { mutate, randomInput } from '../mutators.js'
import { pick, setupRng, weighted } from '../rng.js'
import { checkedOutcome, expectThat, type Target } from '../target.js'
import { craftedSnapshot } from './crafted.js'
import { plaintexts } from './envelopes.js'

/** Check a decode result's shape and, when accepted, its bounds and round trip; label it. */
export function checkSnapshot(result: Checked<SnapshotPayload>): string {
  const label = checkedOutcome(result, 'decodeSnapshotChecked')
  if (!result.ok) {
    expectThat(result.code === 2 || result.code === 11, `snapshot refused with code ${result.code}, not 2 or 11`)
    return label
  }
  const { coverage, state } = result.value
  expectThat(coverage.size <= MAX_SNAPSHOT_SENDERS, `accepted ${coverage.size} senders`)
  let total = 0
  for (const [sender, seqs] of coverage) {
    expectThat(/^[0-9a-f]{32}$/.test(sender), `accepted sender id ${sender}`)
    expectThat(seqs.rangeCount() <= MAX_SEQ_RANGES, `accepted a set of ${seqs.rangeCount()} ranges`)
    total += seqs.rangeCount()
  }
  expectThat(total <= MAX_SNAPSHOT_RANGES, `accepted ${total} ranges in all`)
  // The round trip triples the work; near the bounds the decode alone is what the budget is for.
  if (total > 10_000) return label
  const again = decodeSnapshotChecked(encodeSnapshot({ coverage, state }))
  expectThat(again.ok && again.value.coverage.size === coverage.size, 'accepted snapshot does not round-trip')
  for (const [sender, seqs] of coverage) expectThat(again.value.coverage.get(sender)?.equals(seqs) === true, `coverage of ${sender} does not round-trip`)
  return label
}

export const snapshotTarget: Target = {
  name: 'snapshot',
  description: 'decodeSnapshotChecked on snapshot plaintexts (src/sync/snapshot.ts)',
  weight: 10,
  async setup(seed) {
    const fx = fixture(seed)
    const samples = plaintexts(setupRng(seed, 'snapshot'), fx)
      .filter((p) => p.type === 2)
      .map((p) => p.plaintext)
    return {
      generate: (gen) =>
        weighted<() => Uint8Array>(gen, [
          [6, () => mutate(gen, pick(gen, samples), samples)],
          [3, () => craftedSnapshot(gen)],
          [1, () => mutate(gen, craftedSnapshot(gen), samples)],
          [1, () => randomInput(gen, [1])],
        ])(),
      run: (input) => checkSnapshot(decodeSnapshotChecked(input)),
    }
  },
}
