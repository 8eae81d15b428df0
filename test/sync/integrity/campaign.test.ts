/**
 * The seeded adversarial campaign (`test/campaign/`): two owners and two paired members on the
 * loopback hub, the hub playing a tampering relay, random writes, forgets, streams, revocations,
 * narrowings, restarts, partitions and relay attacks — then, per seed: honest devices converge,
 * every acknowledged write is present, nothing forgotten is in any store, and no removed device
 * can read what was written after its removal (definitions in `test/campaign/model.ts`).
 *
 * Seeds 1..200 by default; `CONTEXTSYNC_SEEDS=<n>` runs 1..n, `CONTEXTSYNC_SEED=<n>` runs one,
 * `CONTEXTSYNC_TRACE=1` prints the op trace of every failing seed. The full campaign:
 * `npm run soak -- --seeds 10000`.
 */
import { describe, expect, it } from 'vitest'
import { formatFailures, runSeeds, type SeedResult } from '../../campaign/run.js'

const SEEDS = Number(process.env.CONTEXTSYNC_SEEDS ?? 200)
const ONLY_SEED = process.env.CONTEXTSYNC_SEED === undefined ? undefined : Number(process.env.CONTEXTSYNC_SEED)
const TRACE = process.env.CONTEXTSYNC_TRACE === '1'
/** Runs overlapping in this process: each spends most of its time waiting on timers and the network. */
const CONCURRENCY = 3

describe('adversarial campaign', () => {
  const seeds = ONLY_SEED === undefined ? Array.from({ length: SEEDS }, (_, i) => i + 1) : [ONLY_SEED]
  it(`holds its four properties for ${seeds.length} seed(s)`, async () => {
    console.log(`integrity-campaign: seeds ${seeds[0]}..${seeds[seeds.length - 1]}`)
    const failed: SeedResult[] = []
    await runSeeds(seeds, {
      concurrency: ONLY_SEED === undefined ? CONCURRENCY : 1,
      onResult: (result) => {
        if (result.failures.length === 0 && !(TRACE && ONLY_SEED !== undefined)) return
        if (result.failures.length > 0) failed.push(result)
        const lines = [
          ...(result.failures.length > 0 ? [`integrity-campaign: seed ${result.seed} failed: ${result.failed.join(', ')}`] : []),
          ...formatFailures(result),
          ...(TRACE ? result.trace : []),
        ]
        console.log(lines.join('\n'))
      },
    })
    failed.sort((a, b) => a.seed - b.seed)
    const summary = failed.map((r) => `seed ${r.seed}: ${r.failed.join(', ')}`)
    if (failed.length > 0) {
      console.log(`integrity-campaign: ${failed.length} of ${seeds.length} seeds failed; replay one with CONTEXTSYNC_SEED=<n> CONTEXTSYNC_TRACE=1 npx vitest run test/sync/integrity/campaign.test.ts`)
    }
    expect(summary, `failing seeds (details above)`).toEqual([])
  }, 600_000)
})
