/**
 * The full adversarial campaign from the command line: `npm run soak -- --seeds 10000`.
 *
 * ```
 * npm run soak -- --seeds N [--from S] [--ops K] [--workers W] [--concurrency C] [--out failures.jsonl] [--trace]
 * ```
 *
 * Runs seeds S..S+N-1 in a pool of W child processes (default 2), each with C seeds in flight
 * (default 3: a run mostly waits on timers and the network), prints each failing seed as it
 * happens and progress every 10 s, and at the end a summary: seeds run, failed seeds per check,
 * time. `--out` writes one JSON line per failing seed (failures and, with `--trace`, the op
 * trace). A seed that runs longer than 120 s is reported as a failure of check `error` and its
 * worker replaced (the other seeds it had in flight too are reported as `error`). Exit code 1 when any seed failed.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { formatFailures, runSeed, type SeedResult } from './run.js'

/** Message from a worker: one seed's result. */
interface WorkerResult {
  type: 'result'
  result: SeedResult
}

const SEED_TIMEOUT_MS = 120_000
/** A worker is replaced after this many seeds, so nothing one leaks accumulates over 10 000. */
const SEEDS_PER_WORKER = 200

interface Options {
  seeds: number
  from: number
  ops: number | undefined
  workers: number
  /** Seeds in flight per worker (a run mostly waits on timers and the network). */
  concurrency: number
  out: string | undefined
  trace: boolean
}

function parseArgs(argv: string[]): Options {
  const options: Options = { seeds: 200, from: 1, ops: undefined, workers: 2, concurrency: 3, out: undefined, trace: false }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = () => {
      const v = argv[++i]
      if (v === undefined) usage(`${arg} needs a value`)
      return v
    }
    const integer = (min: number) => {
      const n = Number(value())
      if (!Number.isInteger(n) || n < min) usage(`${arg} must be an integer ≥ ${min}`)
      return n
    }
    if (arg === '--seeds') options.seeds = integer(1)
    else if (arg === '--from') options.from = integer(0)
    else if (arg === '--ops') options.ops = integer(1)
    else if (arg === '--workers') options.workers = integer(1)
    else if (arg === '--concurrency') options.concurrency = integer(1)
    else if (arg === '--out') options.out = value()
    else if (arg === '--trace') options.trace = true
    else if (arg === '--help' || arg === '-h') usage()
    else usage(`unknown argument ${arg}`)
  }
  return options
}

function usage(problem?: string): never {
  if (problem) console.error(`soak: ${problem}`)
  console.error('usage: npm run soak -- --seeds N [--from S] [--ops K] [--workers W] [--concurrency C] [--out failures.jsonl] [--trace]')
  process.exit(problem ? 2 : 0)
}

/** Worker side: run the seeds the parent sends, one at a time. */
function worker(ops: number | undefined): void {
  const running = new Map<number, string[]>()
  // An error escaping the library is a failure of every seed running at that moment (it cannot
  // tell which one), not a crash of the pool.
  const unexpected = (text: string) => {
    for (const list of running.values()) list.push(text)
  }
  process.on('unhandledRejection', (reason) => unexpected(`unhandled rejection: ${String((reason as Error)?.stack ?? reason)}`))
  process.on('uncaughtException', (error) => unexpected(`uncaught exception: ${String(error.stack ?? error)}`))
  process.on('message', (message: { seed: number }) => {
    const errors: string[] = []
    running.set(message.seed, errors)
    void runSeed(message.seed, ops === undefined ? {} : { ops }).then((result) => {
      running.delete(message.seed)
      for (const text of errors) result.failures.push({ check: 'error', message: text })
      result.failed = [...new Set(result.failures.map((f) => f.check))]
      process.send!({ type: 'result', result } satisfies WorkerResult)
    })
  })
}

/** Parent side: hand out seeds, collect results, print the summary. */
async function main(options: Options): Promise<void> {
  const started = performance.now()
  const last = options.from + options.seeds - 1
  console.log(`soak: seeds ${options.from}..${last}, ${options.workers} workers × ${options.concurrency}${options.ops ? `, ${options.ops} ops per seed` : ''}`)
  const out: WriteStream | undefined = options.out ? createWriteStream(options.out) : undefined
  const failed = new Map<number, SeedResult>()
  let next = options.from
  let done = 0
  let lastProgress = performance.now()
  const self = fileURLToPath(import.meta.url)

  const record = (result: SeedResult) => {
    done++
    if (result.failures.length > 0) {
      failed.set(result.seed, result)
      console.log(`seed ${result.seed} FAILED: ${result.failed.join(', ')}`)
      for (const line of formatFailures(result).slice(0, 3)) console.log(`  ${line.slice(0, 300)}`)
      out?.write(`${JSON.stringify({ seed: result.seed, failed: result.failed, failures: result.failures, ...(options.trace && { trace: result.trace }) })}\n`)
    }
    if (performance.now() - lastProgress > 10_000) {
      lastProgress = performance.now()
      const rate = done / ((performance.now() - started) / 1000)
      const eta = (options.seeds - done) / rate
      console.log(`[${done}/${options.seeds}] ${failed.size} failed, ${rate.toFixed(1)} seeds/s, ~${Math.ceil(eta / 60)} min left`)
    }
  }

  /** One worker process with up to `options.concurrency` seeds in flight; replaced when it dies, hangs or has run its share. */
  const runWorker = () =>
    new Promise<void>((resolve) => {
      let child: ChildProcess
      let ran = 0
      const running = new Map<number, ReturnType<typeof setTimeout>>()
      const replace = (reason: string) => {
        child.removeAllListeners()
        child.kill('SIGKILL')
        for (const [seed, timer] of running) {
          clearTimeout(timer)
          record({ seed, failures: [{ check: 'error', message: reason }], failed: ['error'], trace: [], ms: 0 })
        }
        running.clear()
        spawn()
      }
      const spawn = () => {
        ran = 0
        child = fork(self, ['--worker', ...(options.ops ? ['--ops', String(options.ops)] : [])], {
          execArgv: process.execArgv,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
        child.on('message', (message: WorkerResult) => {
          if (message.type !== 'result') return
          clearTimeout(running.get(message.result.seed))
          running.delete(message.result.seed)
          record(message.result)
          ran++
          if (ran >= SEEDS_PER_WORKER && running.size === 0) replace('')
          fill()
        })
        child.on('exit', (code) => {
          replace(`worker exited (${String(code)}) while running the seed`)
          fill()
        })
      }
      const fill = () => {
        // A worker due for replacement gets nothing new until its last seeds are back.
        while (running.size < options.concurrency && next <= last && ran + running.size < SEEDS_PER_WORKER) {
          const seed = next++
          running.set(
            seed,
            setTimeout(() => {
              running.delete(seed)
              record({ seed, failures: [{ check: 'error', message: `the seed ran longer than ${SEED_TIMEOUT_MS / 1000} s` }], failed: ['error'], trace: [], ms: SEED_TIMEOUT_MS })
              replace(`worker replaced: another seed (${seed}) hung in it`)
              fill()
            }, SEED_TIMEOUT_MS),
          )
          child.send({ seed })
        }
        if (running.size === 0 && next > last) {
          child.removeAllListeners()
          child.kill()
          resolve()
        }
      }
      spawn()
      fill()
    })

  await Promise.all(Array.from({ length: Math.min(options.workers, options.seeds) }, runWorker))
  await new Promise<void>((resolve) => (out ? out.end(resolve) : resolve()))

  const seconds = (performance.now() - started) / 1000
  console.log('')
  console.log(`soak summary: ${done} seeds (${options.from}..${last}) in ${seconds.toFixed(0)} s, ${failed.size} failed`)
  const byCheck = new Map<string, number[]>()
  for (const result of failed.values()) for (const check of result.failed) byCheck.set(check, [...(byCheck.get(check) ?? []), result.seed])
  for (const [check, seeds] of [...byCheck].sort((a, b) => b[1].length - a[1].length)) {
    seeds.sort((a, b) => a - b)
    console.log(`  ${check}: ${seeds.length} seeds — ${seeds.slice(0, 40).join(' ')}${seeds.length > 40 ? ' …' : ''}`)
  }
  if (failed.size > 0) console.log('replay one: CONTEXTSYNC_SEED=<n> CONTEXTSYNC_TRACE=1 npx vitest run test/sync/integrity/campaign.test.ts')
  process.exitCode = failed.size > 0 ? 1 : 0
}

const argv = process.argv.slice(2)
if (argv[0] === '--worker') {
  const ops = argv[1] === '--ops' ? Number(argv[2]) : undefined
  worker(ops)
} else {
  await main(parseArgs(argv))
}
