/**
 * Seeds and run counts for property tests (fast-check): a fixed seed from `CONTEXTSYNC_SEED` when
 * set (fast-check prints the seed and counterexample of a failure, so it can be replayed), else
 * fast-check's own; the run count from `CONTEXTSYNC_RUNS`.
 */

/** An integer environment variable, or `undefined` when unset. Throws on anything else. */
export function envInt(name: string): number | undefined {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return undefined
  const value = Number(raw)
  if (!Number.isSafeInteger(value)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`)
  return value
}

/** fast-check parameters with `defaultRuns` runs unless `CONTEXTSYNC_RUNS` says otherwise. */
export function propertyParams(defaultRuns: number): { numRuns: number; seed?: number } {
  const seed = envInt('CONTEXTSYNC_SEED')
  const numRuns = envInt('CONTEXTSYNC_RUNS') ?? defaultRuns
  return seed === undefined ? { numRuns } : { numRuns, seed }
}
