/**
 * A campaign worker (worker_threads): takes ranges of inputs from the parent, runs them with
 * {@link runRange} and posts the stats back. Before each input it copies the input and its index
 * into memory shared with the parent, so the parent's watchdog can name the input when the worker
 * hangs, runs out of memory or crashes — none of which the worker could report itself.
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads'
import { ready } from '../../src/crypto/index.js'
import { runRange } from './engine.js'
import { SharedSlot } from './shared-slot.js'
import { targetByName } from './targets/index.js'
import type { TargetInstance } from './target.js'

/** A range of inputs to run. */
export interface WorkerTask {
  type: 'task'
  target: string
  seed: number
  from: number
  count: number
  budgetMs: number
}

/** The parent asks the worker to close its targets and exit. */
export interface WorkerStop {
  type: 'stop'
}

async function main(): Promise<void> {
  const port = parentPort
  if (!port) throw new Error('test/fuzz/worker.ts runs as a worker thread')
  const slot = new SharedSlot(workerData.slot as SharedArrayBuffer)
  await ready()
  const instances = new Map<string, TargetInstance>()
  port.on('message', (message: WorkerTask | WorkerStop) => {
    void (async () => {
      if (message.type === 'stop') {
        const errors: string[] = []
        for (const [name, instance] of instances) {
          try {
            await instance.close?.()
          } catch (error) {
            errors.push(`${name}: ${error instanceof Error ? error.message : String(error)}`)
          }
        }
        port.postMessage({ type: 'stopped', errors })
        return
      }
      const target = targetByName(message.target)
      if (!target) throw new Error(`unknown target ${message.target}`)
      let instance = instances.get(target.name)
      if (!instance) {
        instance = await target.setup(message.seed)
        instances.set(target.name, instance)
      }
      const stats = await runRange(target, instance, message.seed, message.from, message.count, {
        budgetMs: message.budgetMs,
        hooks: {
          onInput: (index, input) => slot.start(index, input),
          onDone: () => slot.finish(),
        },
      })
      port.postMessage({ type: 'done', stats })
    })().catch((error: unknown) => {
      // Set-up failures are the fuzzer's own bugs: surface them as a worker error.
      setImmediate(() => {
        throw error
      })
    })
  })
  port.postMessage({ type: 'ready' })
}

void main()
