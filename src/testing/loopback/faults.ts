/**
 * The loopback network's fault model: checking and completing a {@link LoopbackFaults} setting.
 * The draws themselves come from the network's one seeded PRNG (`network.ts`), so faults and
 * delivery order stay reproducible from the seed.
 *
 * @module
 */
import { LoopbackError, type LoopbackFaults } from './types.js'

const NO_FAULTS: Required<LoopbackFaults> = { minDelay: 0, maxDelay: 0, reorder: 0, duplicate: 0, drop: 0 }

/** `faults` with every omitted field 0; throws {@link LoopbackError} on a bad probability or delay. */
export function normalizeFaults(faults: LoopbackFaults): Required<LoopbackFaults> {
  const result = { ...NO_FAULTS, ...faults }
  for (const name of ['reorder', 'duplicate', 'drop'] as const) {
    const p = result[name]
    if (!(p >= 0 && p <= 1)) throw new LoopbackError(`faults.${name} must be a probability in [0, 1], got ${p}`, 'config')
  }
  const { minDelay, maxDelay } = result
  if (!Number.isInteger(minDelay) || !Number.isInteger(maxDelay) || minDelay < 0 || maxDelay < minDelay) {
    throw new LoopbackError(`faults need integer delays 0 <= minDelay <= maxDelay, got ${minDelay}..${maxDelay}`, 'config')
  }
  return result
}
