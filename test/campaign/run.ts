/**
 * One seed of the adversarial campaign: set up the world, run the seeded ops, heal, settle and
 * wait (bounded) for repairs, then run every check (`checks.ts`). Used by
 * `test/sync/integrity/campaign.test.ts` and by the soak CLI (`soak.ts`).
 *
 * Replayability: the op sequence is a function of the seed (every choice is drawn from one
 * `lib0/prng`, and candidate lists are ordered by the model, not by timestamps). The library
 * itself is not fully deterministic — Yjs client ids, nonces, memory ids and its timers are real —
 * so a failing seed reproduces in most runs, not necessarily in every one; the trace
 * (`CONTEXTSYNC_TRACE=1`) shows what ran.
 *
 * @module
 */
import * as prng from 'lib0/prng'
import { REGISTRY_SCOPE } from '../../src/crypto/index.js'
import {
  checkAcknowledged,
  checkConvergence,
  checkForgotten,
  checkRevoked,
  checkStalled,
  type CheckName,
  type Failure,
} from './checks.js'
import { drawOp, endStream, sleep, within, type OpContext } from './ops.js'
import { RelayAdversary } from './relay-adversary.js'
import { SYNCED_SCOPES, World } from './world.js'

/** Options of {@link runSeed}. */
export interface RunOptions {
  /** Ops per run. Default {@link DEFAULT_OPS}. */
  ops?: number
  /**
   * How long the final phase may wait for convergence and repairs (ms). Default 8 000. The phase
   * ends as soon as the devices converge (an honest seed needs well under a second), so the
   * budget only bounds a slow one; under a loaded CI machine (2 cores, other test files in
   * parallel) repairs paced by wall-clock delays took longer than the 2 500 it used to be.
   */
  settleMs?: number
  /** Called with the world after the checks, before it is closed (debugging a seed). */
  beforeClose?: (world: World) => Promise<void> | void
}

/** Ops per run by default (sized so 200 seeds fit the CI budget). */
export const DEFAULT_OPS = 30

/** What one seed's run found. */
export interface SeedResult {
  seed: number
  failures: Failure[]
  /** Check names that failed, each once, in order. */
  failed: CheckName[]
  trace: string[]
  ms: number
}

/** Run one seed. Never throws: whatever breaks is a failure of check `error`. */
export async function runSeed(seed: number, options: RunOptions = {}): Promise<SeedResult> {
  const started = performance.now()
  const gen = prng.create(seed)
  const failures: Failure[] = []
  const sync = { repairDelayMs: prng.int32(gen, 2, 20), compaction: { maxEntries: prng.int32(gen, 3, 12), idleMs: 0 } }
  let world: World | undefined
  const trace: string[] = [`seed ${seed}: compaction.maxEntries ${sync.compaction.maxEntries}, repairDelayMs ${sync.repairDelayMs}`]
  try {
    world = await World.create(seed, gen, { sync })
    const relay = new RelayAdversary(world)
    const ops = options.ops ?? DEFAULT_OPS
    for (let step = 1; step <= ops; step++) {
      const op = drawOp(gen)
      // Each op draws from its own PRNG, seeded from the run's: however many values an op draws
      // (which can depend on what the devices hold at that moment), the ops after it stay the same.
      const ctx: OpContext = { world, relay, gen: prng.create(prng.uint32(gen, 1, 0x7fffffff)), step }
      try {
        world.log(`#${step} ${await op.run(ctx)}`)
      } catch (error) {
        world.log(`#${step} ${op.name} THREW: ${message(error)}`)
        failures.push({ check: 'error', message: `step ${step} (${op.name}) threw: ${message(error)}` })
        break
      }
      // Let the network deliver between ops; the relay remembers what passed.
      await new Promise((resolve) => setImmediate(resolve))
      world.noteKnowledge()
      relay.capture(step)
    }
    await finish(world, options.settleMs ?? 8_000)
    failures.push(...(await runChecks(world)))
    await options.beforeClose?.(world)
  } catch (error) {
    failures.push({ check: 'error', message: `the run broke: ${message(error)}` })
  } finally {
    if (world) {
      trace.push(...world.trace)
      await world.close().catch(() => undefined)
    }
  }
  return { seed, failures, failed: [...new Set(failures.map((f) => f.check))], trace, ms: performance.now() - started }
}

/** Every check of `checks.ts`, plus what went wrong during the run (`World.errors`). */
export async function runChecks(world: World): Promise<Failure[]> {
  const failures: Failure[] = world.errors.map((message) => ({ check: 'error', message }))
  failures.push(...checkConvergence(world), ...checkAcknowledged(world), ...checkStalled(world))
  failures.push(...(await checkForgotten(world)), ...(await checkRevoked(world)))
  return failures
}

/**
 * Heal everything, end open streams, and settle until honest devices converge with every write
 * settled — or `budgetMs` passes (the checks then report what did not happen). Finally have
 * every honest device rewrite its stores: each does so by itself at most ~1 s after someone
 * else's deletion (WIRE.md "Sealed log"); waiting that long in every run would triple the
 * campaign's time.
 */
export async function finish(world: World, budgetMs: number): Promise<void> {
  world.net.setFaults({})
  world.net.heal()
  world.offline.clear()
  for (const device of world.running()) if (device.stream) world.log(`final: ${endStream({ world }, device)}`)
  const honest = () => world.running().filter((d) => !world.model.revoked(d.name))
  const deadline = performance.now() + budgetMs
  for (let round = 0; ; round++) {
    await within(Promise.all(honest().map((d) => d.dev.flush())), 100, 'flush').catch(() => undefined)
    await world.net.settle()
    await sleep(round < 3 ? 2 : 15)
    world.noteKnowledge()
    const pending = [...world.inFlight.values()].some((name) => !world.model.revoked(name))
    // Upkeep first (repairs after an erasure, sweeps of refused replays, re-compactions): the
    // properties are about the state once the devices have done what they do by themselves.
    const upkeep = honest().some((d) => [REGISTRY_SCOPE, ...SYNCED_SCOPES, 'local'].some((scope) => d.dev.replica(scope)?.maintenancePending === true))
    if (!pending && !upkeep && checkConvergence(world).length === 0 && checkAcknowledged(world).length === 0) break
    if (performance.now() > deadline) {
      world.log(`final: still not settled after ${budgetMs} ms`)
      break
    }
  }
  // Twice: a rewrite can deliver a compaction whose deletions the others then defer in turn.
  for (let i = 0; i < 2; i++) {
    for (const device of honest()) {
      for (const scope of [REGISTRY_SCOPE, ...SYNCED_SCOPES, 'local']) await device.dev.replica(scope)?.checkpoint()
    }
    await world.net.settle()
  }
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** One line per failure, prefixed with the seed and the check (for test output and the soak log). */
export function formatFailures(result: SeedResult): string[] {
  return result.failures.map((f) => `seed ${result.seed} [${f.check}] ${f.message}`)
}

/**
 * Run seeds `concurrency` at a time in this process (a run spends much of its time waiting for
 * timers and the network, so a few overlap well on one core). Results arrive in completion order.
 */
export async function runSeeds(
  seeds: readonly number[],
  options: RunOptions & { concurrency?: number; onResult?: (result: SeedResult) => void } = {},
): Promise<SeedResult[]> {
  const results: SeedResult[] = []
  let next = 0
  const lane = async () => {
    while (next < seeds.length) {
      const result = await runSeed(seeds[next++]!, options)
      results.push(result)
      options.onResult?.(result)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.concurrency ?? 1, seeds.length)) }, lane))
  return results
}
