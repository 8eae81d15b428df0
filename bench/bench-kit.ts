/**
 * Benchmark helpers that load no library code: relay options, waiting, memory texts. A probe that
 * imports the library from another source tree (bench/integrity-probe.ts) uses these without
 * pulling this tree's `src/` into its process, so the relays and devices it measures are built
 * with the same options as those of bench/relay.ts.
 *
 * @module
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import WebSocket from 'ws'

/** Relay store of the bench relays: SQLite in a temp dir unless BENCH_RELAY_STORAGE=memory. */
export const STORAGE = process.env.BENCH_RELAY_STORAGE === 'memory' ? 'memory' : 'sqlite'
/** Relay merge interval; default the relay's own (10 s). Stored bytes are read after the room unloaded (merged). */
export const MERGE_MS = process.env.BENCH_RELAY_MERGE_MS === undefined ? undefined : Number(process.env.BENCH_RELAY_MERGE_MS)
/** Same raised limits on every bench relay (bench/relay.ts module comment: the default closes a plain burst writer). */
export const LIMITS = { messagesPerSecond: 1_000_000, burst: 1_000_000 }
/** `ws` typed as the DOM WebSocket constructor the transports expect. */
export const WS = WebSocket as unknown as typeof globalThis.WebSocket
/** Resolve after `ms`. */
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Poll `predicate` every `everyMs` until true; throws after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs: number, what: string, everyMs = 5): Promise<void> {
  const start = performance.now()
  while (!predicate()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** Resolves waits on a growing count from the receiver's own events (no polling latency). */
export class Waiter {
  private target = Infinity
  private done: (() => void) | undefined
  private failure: ((error: unknown) => void) | undefined
  private error: unknown
  constructor(private readonly count: () => number) {}

  /** A write failed: reject the current and every later wait. */
  fail(error: unknown): void {
    this.error ??= error
    this.failure?.(error)
  }

  /** The count may have grown: resolve the current wait once it reached its target. */
  notify(): void {
    if (this.done && this.count() >= this.target) {
      const done = this.done
      this.done = undefined
      this.target = Infinity
      done()
    }
  }

  /** Resolve once the count reaches `target`; reject after `timeoutMs` or when a write failed. */
  wait(target: number, timeoutMs: number, what: string): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error)
    if (this.count() >= target) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.done = undefined
        this.target = Infinity
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.count()}/${target})`))
      }, timeoutMs)
      this.target = target
      this.done = () => {
        clearTimeout(timer)
        resolve()
      }
      this.failure = (error) => {
        clearTimeout(timer)
        this.done = undefined
        this.target = Infinity
        reject(error)
      }
    })
  }
}

/** The text of memory `i`, the same in every bench that writes memories. */
export function text(i: number): string {
  return `Remembered fact number ${i}: likes ${i % 2 ? 'tea' : 'coffee'} at ${i % 24}:00`
}

let gc: (() => void) | undefined
/**
 * A full GC before a measured run, so one run's garbage is not collected on the next one's clock.
 * `npm run bench` runs without --expose-gc, so the flag is set here, once.
 */
export function collectGarbage(): void {
  if (!gc) {
    setFlagsFromString('--expose-gc')
    gc = runInNewContext('gc') as () => void
  }
  gc()
}
