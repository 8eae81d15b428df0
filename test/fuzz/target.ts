/**
 * What a fuzz target is, and the checks every target's property shares: a parse function's
 * refusal is `{ ok: false, code, reason }` with a known {@link RejectCode} (src/crypto/codes.ts),
 * never an exception; anything else is a {@link PropertyViolation}.
 *
 * @module
 */
import { RejectCode, rejectCodeName } from '../../src/crypto/codes.js'
import type { Rng } from './rng.js'

/**
 * The label an input's outcome is counted under in the target's histogram: `accepted…` or
 * `refused <code> <Name>` (storage and relay targets use their own named codes).
 */
export type Outcome = string

/** A target set up for one campaign seed in one worker. */
export interface TargetInstance {
  /** One input: a mutated genuine sample, a crafted structure or random bytes. */
  generate(gen: Rng): Uint8Array
  /**
   * Run the property on one input and say how it ended. Throwing — a {@link PropertyViolation}
   * or anything escaping the code under test — is a failure.
   */
  run(input: Uint8Array): Outcome | Promise<Outcome>
  /** Release sockets, files and timers. */
  close?(): Promise<void>
}

/** A fuzz target: one untrusted input format and the API that reads it. */
export interface Target {
  /** Name used by `--target` and in reports. */
  name: string
  /** What is fuzzed, through which function. */
  description: string
  /** Share of a campaign's inputs (relative to the other targets' weights). */
  weight: number
  /**
   * Per-input time budget when one input is a whole cycle (open a store or a socket, load, write,
   * close) rather than one parse; default the campaign's (250 ms).
   */
  budgetMs?: number
  /** Set up keys, genuine samples and whatever the property reads through. */
  setup(seed: number): Promise<TargetInstance>
}

/** The input broke the target's contract without an exception of its own. */
export class PropertyViolation extends Error {
  override name = 'PropertyViolation'
}

const KNOWN_CODES = new Set<number>(Object.values(RejectCode))

/** True when `code` is one of the {@link RejectCode} numbers. */
export function isRejectCode(code: unknown): code is RejectCode {
  return typeof code === 'number' && KNOWN_CODES.has(code)
}

/** Histogram label of a refusal with `code`. */
export function refusedLabel(code: number): Outcome {
  return `refused ${code} ${rejectCodeName(code)}`
}

/**
 * Check a `Checked` result's shape and label it: `accepted`, or the refusal's code. Throws a
 * {@link PropertyViolation} for any other shape, an unknown code or a missing reason.
 */
export function checkedOutcome(result: unknown, what: string): Outcome {
  if (typeof result !== 'object' || result === null) throw new PropertyViolation(`${what} returned ${String(result)}, not a Checked result`)
  const r = result as { ok?: unknown; code?: unknown; reason?: unknown; value?: unknown }
  if (r.ok === true) return 'accepted'
  if (r.ok !== false) throw new PropertyViolation(`${what} returned a result without ok: true/false`)
  if (!isRejectCode(r.code)) throw new PropertyViolation(`${what} refused with unknown code ${String(r.code)}`)
  if (typeof r.reason !== 'string' || r.reason.length === 0) throw new PropertyViolation(`${what} refused (code ${r.code}) without a reason`)
  return refusedLabel(r.code)
}

/** Throw a {@link PropertyViolation} unless `condition` holds. */
export function expectThat(condition: boolean, message: string): asserts condition {
  if (!condition) throw new PropertyViolation(message)
}
