/**
 * The CI slice of the fuzz campaign (test/fuzz/, `npm run fuzz -- --inputs 1000000` for the full
 * one): ≥ 50 000 inputs over every untrusted input format — envelopes (parsed, and through a real
 * replica), snapshots, seq sets, signed statements, tokens, relay frames (parsed, and through a
 * real relay on 127.0.0.1), presence, export lines and files, checkpoints, replica records and
 * damaged SQLite files — in two worker threads. Every input must end in a coded refusal or an
 * acceptance: no exception, no input over 250 ms, no unbounded allocation, no hang.
 *
 * Seeded: the seed is printed; replay the slice with CONTEXTSYNC_SEED=<seed>, one input with the
 * `replay:` command the report prints for it.
 */
import { describe, expect, it } from 'vitest'
import { runCampaign } from './campaign.js'
import { formatReport } from './report.js'
import { TARGETS } from './targets/index.js'
import { envInt } from '../helpers/seeded.js'

const SEED = envInt('CONTEXTSYNC_SEED') ?? Math.floor(Math.random() * 2 ** 31) + 1
const INPUTS = envInt('CONTEXTSYNC_FUZZ_INPUTS') ?? 52_000

describe('fuzz campaign (CI slice)', () => {
  it(`${INPUTS} inputs over every target: coded refusals only, nothing slow, nothing unbounded`, async () => {
    console.log(`fuzz campaign seed: ${SEED} (replay with CONTEXTSYNC_SEED=${SEED})`)
    const result = await runCampaign({ inputs: INPUTS, seed: SEED, workers: 2, chunk: 500 })
    const report = formatReport(result)
    console.log(report)
    expect(result.failures, report).toEqual([])
    expect(result.failureCount).toBe(0)
    expect(result.inputs).toBe(INPUTS)
    for (const target of TARGETS) {
      const stats = result.perTarget.find((s) => s.target === target.name)
      expect(stats?.inputs ?? 0, `inputs of ${target.name}`).toBeGreaterThan(0)
    }
  }, 180_000)
})
