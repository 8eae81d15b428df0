/**
 * Runs a fuzz campaign in a pool of worker threads: splits the inputs over the targets by weight,
 * cuts each target's share into ranges, hands ranges to idle workers and merges their stats. A
 * watchdog reads each worker's {@link SharedSlot}: an input running longer than `hangMs` is a
 * hang — the worker is replaced and the rest of its range runs on — and a worker that dies (an
 * uncaught exception, running out of memory) takes the input it was running with it into the
 * report.
 *
 * @module
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { Worker } from 'node:worker_threads'
import { toHex } from '../../src/util/bytes.js'
import { DEFAULT_BUDGET_MS, mergeStats, type Failure, type RangeStats } from './engine.js'
import { SharedSlot } from './shared-slot.js'
import { TARGETS } from './targets/index.js'
import type { Target } from './target.js'
import type { WorkerTask } from './worker.js'

/** Options of {@link runCampaign}. */
export interface CampaignOptions {
  /** Inputs in all, split over the targets by weight. */
  inputs: number
  seed: number
  /** Target names (default: all). */
  targets?: readonly string[]
  /** Worker threads (default 2). */
  workers?: number
  /** Per-input time budget (default 250 ms). */
  budgetMs?: number
  /** An input running this long is a hang: its worker is replaced (default 10 s). */
  hangMs?: number
  /** Inputs per range handed to a worker (default 1000). */
  chunk?: number
  /** Heap limit of a worker (MiB); past it the worker dies and its input is reported. */
  workerHeapMb?: number
  /** Progress lines. */
  log?: (line: string) => void
}

/** What a campaign did. */
export interface CampaignResult {
  seed: number
  inputs: number
  wallMs: number
  workers: number
  perTarget: RangeStats[]
  failures: Failure[]
  /** All failures, counted (more than {@link failures} holds when many). */
  failureCount: number
}

/** Split `inputs` over `targets` by weight (largest remainder; every target gets at least one). */
export function planInputs(inputs: number, targets: readonly Target[]): Map<string, number> {
  const total = targets.reduce((n, t) => n + t.weight, 0)
  const shares = targets.map((t) => ({ name: t.name, exact: (inputs * t.weight) / total }))
  const plan = new Map(shares.map((s) => [s.name, Math.floor(s.exact)]))
  let left = inputs - [...plan.values()].reduce((a, b) => a + b, 0)
  for (const s of [...shares].sort((a, b) => (b.exact % 1) - (a.exact % 1))) {
    if (left <= 0) break
    plan.set(s.name, plan.get(s.name)! + 1)
    left--
  }
  for (const t of targets) if (plan.get(t.name) === 0 && inputs >= targets.length) plan.set(t.name, 1)
  return plan
}

/**
 * The worker's bootstrap: register tsx's loader inside the worker, then import the TypeScript
 * entry. (Node 20 does not apply `--import tsx` from a worker's execArgv to its entry module.)
 */
function workerBootstrap(): string {
  // The ESM build of tsx's API, found through the package's own exports map.
  const tsxRoot = dirname(createRequire(import.meta.url).resolve('tsx/package.json'))
  const tsxApi = pathToFileURL(join(tsxRoot, 'dist/esm/api/index.mjs')).href
  const entry = new URL('./worker.ts', import.meta.url).href
  return `import(${JSON.stringify(tsxApi)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}) })`
}

/** Workers that die before finishing any range: past this many, the campaign gives up. */
const MAX_EARLY_DEATHS = 3

interface Handle {
  worker: Worker
  slot: SharedSlot
  task: WorkerTask | undefined
  ready: boolean
  dead: boolean
  finishedAny: boolean
}

/** Run a campaign; resolves when every input ran (or was lost with a dead worker and reported). */
export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const started = Date.now()
  const selected = options.targets ? TARGETS.filter((t) => options.targets!.includes(t.name)) : [...TARGETS]
  const unknown = (options.targets ?? []).filter((n) => !TARGETS.some((t) => t.name === n))
  if (unknown.length > 0) throw new Error(`unknown target(s): ${unknown.join(', ')} (known: ${TARGETS.map((t) => t.name).join(', ')})`)
  const workers = Math.max(1, options.workers ?? 2)
  const budgetMs = options.budgetMs ?? DEFAULT_BUDGET_MS
  const hangMs = options.hangMs ?? 10_000
  const chunk = Math.max(1, options.chunk ?? 1000)
  const log = options.log ?? (() => {})
  const plan = planInputs(options.inputs, selected)

  // Ranges, interleaved across targets so every worker runs a mix and progress shows all of them.
  const perTargetTasks = selected.map((t) => {
    const tasks: WorkerTask[] = []
    const count = plan.get(t.name) ?? 0
    for (let from = 0; from < count; from += chunk) {
      tasks.push({ type: 'task', target: t.name, seed: options.seed, from, count: Math.min(chunk, count - from), budgetMs })
    }
    return tasks
  })
  const queue: WorkerTask[] = []
  for (let i = 0; perTargetTasks.some((ts) => i < ts.length); i++) for (const ts of perTargetTasks) if (i < ts.length) queue.push(ts[i]!)

  const stats = new Map<string, RangeStats>()
  const failures: Failure[] = []
  let failureCount = 0
  const addFailure = (f: Failure): void => {
    failureCount++
    if (failures.length < 50) failures.push(f)
    log(`FAIL ${f.target} #${f.index} (${f.kind}): ${f.message}`)
  }
  const handles: Handle[] = []
  let done = 0
  let inFlight = 0
  let earlyDeaths = 0
  let finish: () => void = () => {}
  const finished = new Promise<void>((resolve) => (finish = resolve))

  const spawn = (): Handle => {
    const slot = new SharedSlot()
    const worker = new Worker(workerBootstrap(), {
      eval: true,
      workerData: { slot: slot.buffer },
      resourceLimits: { maxOldGenerationSizeMb: options.workerHeapMb ?? 2048 },
    })
    const handle: Handle = { worker, slot, task: undefined, ready: false, dead: false, finishedAny: false }
    worker.on('message', (message: { type: string; stats?: RangeStats }) => {
      if (message.type === 'ready') {
        handle.ready = true
        next(handle)
      } else if (message.type === 'done' && message.stats) {
        stats.set(message.stats.target, mergeStats(stats.get(message.stats.target), message.stats))
        for (const f of message.stats.failures) addFailure(f)
        failureCount += message.stats.moreFailures
        done += message.stats.inputs
        handle.finishedAny = true
        handle.task = undefined
        inFlight--
        next(handle)
      }
    })
    worker.on('error', (error: Error) => lost(handle, 'crash', `worker died: ${error.name}: ${error.message}`))
    worker.on('exit', (code) => {
      if (!handle.dead && code !== 0) lost(handle, 'crash', `worker exited with code ${code}`)
    })
    handles.push(handle)
    return handle
  }

  /** A worker is gone (crash, hang): report its input, run the rest of its range elsewhere. */
  const lost = (handle: Handle, kind: 'crash' | 'hang', message: string): void => {
    if (handle.dead) return
    handle.dead = true
    if (!handle.task) log(`worker lost between ranges: ${message}`)
    if (!handle.finishedAny && ++earlyDeaths > MAX_EARLY_DEATHS) {
      // Set-up keeps failing: report it once and drop what is left rather than respawn forever.
      addFailure({ target: handle.task?.target ?? '(worker)', seed: options.seed, index: -1, kind: 'crash', message: `workers keep dying before finishing a range: ${message}`, inputHex: '' })
      queue.length = 0
      inFlight = handle.task ? inFlight - 1 : inFlight
      handle.task = undefined
      void handle.worker.terminate()
      return maybeFinish()
    }
    const current = handle.slot.current()
    const task = handle.task
    void handle.worker.terminate()
    if (task) {
      inFlight--
      const index = current?.index ?? task.from
      addFailure({
        target: task.target,
        seed: task.seed,
        index,
        kind,
        message: current ? `${message}${current.length > current.input.length ? ` (input cut to ${current.input.length} of ${current.length} bytes)` : ''}` : `${message} (not while running an input: set-up or teardown)`,
        inputHex: current ? toHex(current.input) : '',
      })
      const rest = task.from + task.count - (index + 1)
      // A set-up that kills its worker would do so again: only a failing input's range resumes.
      if (current && rest > 0) queue.unshift({ ...task, from: index + 1, count: rest })
      done += index - task.from + (current ? 1 : 0)
    }
    if (queue.length > 0) spawn()
    else maybeFinish()
  }

  const next = (handle: Handle): void => {
    if (handle.dead || !handle.ready) return
    const task = queue.shift()
    if (!task) return maybeFinish()
    handle.task = task
    inFlight++
    handle.worker.postMessage(task)
  }

  const maybeFinish = (): void => {
    if (queue.length === 0 && inFlight === 0) finish()
  }

  const watchdog = setInterval(() => {
    for (const handle of handles) {
      if (handle.dead) continue
      const current = handle.slot.current()
      if (current && Date.now() - current.startedAt > hangMs) lost(handle, 'hang', `input still running after ${hangMs} ms`)
    }
  }, 200)
  const progress = setInterval(() => {
    const seconds = (Date.now() - started) / 1000
    log(`… ${done} / ${options.inputs} inputs in ${seconds.toFixed(0)} s (${(done / seconds).toFixed(0)}/s), ${failureCount} failures`)
  }, 10_000)

  for (let i = 0; i < Math.min(workers, Math.max(1, queue.length)); i++) spawn()
  if (queue.length === 0) finish()
  await finished
  clearInterval(watchdog)
  clearInterval(progress)

  // Close every target (relays, files) and collect what their teardown found.
  await Promise.all(
    handles
      .filter((h) => !h.dead)
      .map(
        (h) =>
          new Promise<void>((resolve) => {
            const timer = setTimeout(() => {
              addFailure({ target: '(teardown)', seed: options.seed, index: -1, kind: 'hang', message: 'a worker did not close its targets within 10 s', inputHex: '' })
              resolve()
            }, 10_000)
            h.worker.on('message', (message: { type: string; errors?: string[] }) => {
              if (message.type !== 'stopped') return
              clearTimeout(timer)
              for (const e of message.errors ?? []) addFailure({ target: e.split(':')[0]!, seed: options.seed, index: -1, kind: 'violation', message: `teardown: ${e}`, inputHex: '' })
              resolve()
            })
            h.worker.postMessage({ type: 'stop' })
          }),
      ),
  )
  for (const h of handles) {
    h.dead = true
    await h.worker.terminate()
  }
  const perTarget = selected.map((t) => stats.get(t.name)).filter((s): s is RangeStats => s !== undefined)
  return { seed: options.seed, inputs: perTarget.reduce((n, s) => n + s.inputs, 0), wallMs: Date.now() - started, workers, perTarget, failures, failureCount }
}
