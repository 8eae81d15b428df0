/**
 * Runs one target's inputs in the current thread and checks the campaign-wide properties on each:
 * no exception escapes (the target's own property aside), no input takes longer than the time
 * budget (checked twice before it counts, so a GC pause or a busy machine is not a finding), and
 * no input grows the heap — V8 heap plus array buffers — by more than {@link ALLOC_LIMIT_BYTES}
 * while it runs: an input claiming a huge count must not get it allocated.
 *
 * @module
 */
import { getHeapStatistics } from 'node:v8'
import { toHex } from '../../src/util/bytes.js'
import { inputRng } from './rng.js'
import { PropertyViolation, type Outcome, type Target, type TargetInstance } from './target.js'

/** Growth of heap + array buffers during one input that counts as unbounded allocation. */
export const ALLOC_LIMIT_BYTES = 64 * 1024 * 1024
/** Default per-input time budget. */
export const DEFAULT_BUDGET_MS = 250
/** Failures kept per target and range (the rest are only counted). */
const KEPT_FAILURES = 5

/** Why an input failed. */
export type FailureKind = 'throw' | 'violation' | 'slow' | 'alloc' | 'hang' | 'crash' | 'generator'

/** One failing input, with what is needed to replay it. */
export interface Failure {
  target: string
  seed: number
  index: number
  kind: FailureKind
  message: string
  /** The input, hex. */
  inputHex: string
}

/** What one range of inputs of one target did. */
export interface RangeStats {
  target: string
  inputs: number
  /** Time spent in `run`, ms. */
  runMs: number
  maxMs: number
  /** Largest heap growth during one input (bytes). */
  maxAllocBytes: number
  histogram: Record<Outcome, number>
  failures: Failure[]
  /** Failures beyond those kept. */
  moreFailures: number
}

function heapBytes(): number {
  const stats = getHeapStatistics()
  return stats.used_heap_size + stats.external_memory
}

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`
  return `non-Error thrown: ${String(error)}`
}

function isThenable(value: unknown): value is PromiseLike<Outcome> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function'
}

/** Run the property once; the outcome or the failure it raised. */
async function runOnce(instance: TargetInstance, input: Uint8Array): Promise<{ outcome?: Outcome; error?: unknown; ms: number; alloc: number }> {
  const heap0 = heapBytes()
  const t0 = performance.now()
  try {
    const result = instance.run(input)
    const outcome = isThenable(result) ? await result : result
    return { outcome, ms: performance.now() - t0, alloc: heapBytes() - heap0 }
  } catch (error) {
    return { error, ms: performance.now() - t0, alloc: heapBytes() - heap0 }
  }
}

/** Hooks the worker uses to tell its watchdog which input is running. */
export interface RangeHooks {
  /** Called with each input before it runs. */
  onInput?(index: number, input: Uint8Array): void
  /** Called after each input. */
  onDone?(index: number): void
}

/** Inputs `from .. from + count - 1` of `target` (seed `seed`). */
export async function runRange(
  target: Target,
  instance: TargetInstance,
  seed: number,
  from: number,
  count: number,
  options: { budgetMs?: number; hooks?: RangeHooks } = {},
): Promise<RangeStats> {
  const budgetMs = target.budgetMs ?? options.budgetMs ?? DEFAULT_BUDGET_MS
  const stats: RangeStats = { target: target.name, inputs: 0, runMs: 0, maxMs: 0, maxAllocBytes: 0, histogram: {}, failures: [], moreFailures: 0 }
  const fail = (index: number, kind: FailureKind, message: string, input: Uint8Array): void => {
    if (stats.failures.length >= KEPT_FAILURES) {
      stats.moreFailures++
      return
    }
    stats.failures.push({ target: target.name, seed, index, kind, message, inputHex: toHex(input) })
  }
  for (let index = from; index < from + count; index++) {
    let input: Uint8Array
    try {
      input = instance.generate(inputRng(seed, target.name, index))
    } catch (error) {
      fail(index, 'generator', `the fuzzer's generator threw: ${describe(error)}`, new Uint8Array(0))
      continue
    }
    options.hooks?.onInput?.(index, input)
    let run = await runOnce(instance, input)
    if (run.error === undefined && (run.ms > budgetMs || run.alloc > ALLOC_LIMIT_BYTES)) {
      // Confirm before reporting: a GC pause or a busy machine makes one run slow, not two.
      const again = await runOnce(instance, input)
      run = again.error !== undefined ? again : { ...again, ms: Math.min(run.ms, again.ms), alloc: Math.min(run.alloc, again.alloc) }
    }
    options.hooks?.onDone?.(index)
    stats.inputs++
    stats.runMs += run.ms
    stats.maxMs = Math.max(stats.maxMs, run.ms)
    stats.maxAllocBytes = Math.max(stats.maxAllocBytes, run.alloc)
    if (run.error !== undefined) {
      const kind: FailureKind = run.error instanceof PropertyViolation ? 'violation' : 'throw'
      fail(index, kind, describe(run.error), input)
      stats.histogram[`FAILED ${kind}`] = (stats.histogram[`FAILED ${kind}`] ?? 0) + 1
      continue
    }
    if (run.ms > budgetMs) fail(index, 'slow', `took ${run.ms.toFixed(0)} ms (budget ${budgetMs} ms), twice`, input)
    else if (run.alloc > ALLOC_LIMIT_BYTES) fail(index, 'alloc', `grew the heap by ${(run.alloc / 2 ** 20).toFixed(0)} MiB while it ran, twice`, input)
    const outcome = run.outcome ?? 'undefined outcome'
    stats.histogram[outcome] = (stats.histogram[outcome] ?? 0) + 1
  }
  return stats
}

/** Merge range stats of one target. */
export function mergeStats(into: RangeStats | undefined, add: RangeStats): RangeStats {
  if (!into) return { ...add, histogram: { ...add.histogram }, failures: [...add.failures] }
  into.inputs += add.inputs
  into.runMs += add.runMs
  into.maxMs = Math.max(into.maxMs, add.maxMs)
  into.maxAllocBytes = Math.max(into.maxAllocBytes, add.maxAllocBytes)
  for (const [k, v] of Object.entries(add.histogram)) into.histogram[k] = (into.histogram[k] ?? 0) + v
  for (const f of add.failures) {
    if (into.failures.length < KEPT_FAILURES) into.failures.push(f)
    else into.moreFailures++
  }
  into.moreFailures += add.moreFailures
  return into
}
