/**
 * A virtual clock for link simulations: a {@link LinkClock} whose timers run in virtual time, in
 * order (ties in the order they were set), as fast as the CPU allows. A seeded simulation of a
 * glasses day takes milliseconds, and one seed always gives one run.
 *
 * Promise continuations (an async token check, say) run between events: before the clock moves
 * to a later instant it lets pending microtasks and one macrotask run, so "now" is the same for
 * everything that happens at one instant.
 *
 * @module
 */
import type { LinkClock } from '../adapters/link-channel.js'
import { MinHeap } from '../util/min-heap.js'

interface TimerEvent {
  at: number
  seq: number
  fn: () => void
  cancelled: boolean
}

/** A virtual-time {@link LinkClock}; drive it with {@link VirtualClock.advance} or {@link VirtualClock.settle}. */
export class VirtualClock implements LinkClock {
  private current = 0
  private seq = 0
  private readonly heap = new MinHeap<TimerEvent>(before)
  private running = false

  /** Virtual milliseconds since the clock was made. */
  now(): number {
    return this.current
  }

  /** Run `fn` after `ms` virtual milliseconds. */
  setTimer(fn: () => void, ms: number): unknown {
    const event: TimerEvent = { at: this.current + Math.max(0, ms), seq: ++this.seq, fn, cancelled: false }
    this.heap.push(event)
    return event
  }

  /** Cancel a timer set by {@link setTimer}. */
  clearTimer(handle: unknown): void {
    if (handle && typeof handle === 'object' && 'cancelled' in handle) (handle as TimerEvent).cancelled = true
  }

  /** Timers waiting to run (cancelled ones excluded). */
  get pending(): number {
    return this.heap.toArray().filter((event) => !event.cancelled).length
  }

  /** Run every timer due within the next `ms` virtual milliseconds, then set the clock to that instant. */
  async advance(ms: number): Promise<void> {
    const until = this.current + ms
    await this.run(until)
    this.current = Math.max(this.current, until)
  }

  /**
   * Run timers until none is left, or `maxMs` of virtual time has passed (a periodic keepalive
   * never leaves the queue empty). Resolves with whether the queue emptied.
   */
  async settle(maxMs = 600_000): Promise<boolean> {
    await this.run(this.current + maxMs)
    return this.pending === 0
  }

  private async run(until: number): Promise<void> {
    if (this.running) return
    this.running = true
    try {
      await flushAsync()
      for (;;) {
        const next = this.peek()
        if (!next || next.at > until) break
        if (next.at > this.current) {
          // Let continuations of the current instant finish before time moves on.
          await flushAsync()
          const again = this.peek()
          if (again !== next) continue
          this.current = next.at
        }
        this.heap.pop()
        next.fn()
        await Promise.resolve()
      }
      await flushAsync()
    } finally {
      this.running = false
    }
  }

  private peek(): TimerEvent | undefined {
    while (this.heap.peek()?.cancelled) this.heap.pop()
    return this.heap.peek()
  }
}

function before(a: TimerEvent, b: TimerEvent): boolean {
  return a.at !== b.at ? a.at < b.at : a.seq < b.seq
}

const immediate: (fn: () => void) => void =
  (globalThis as { setImmediate?: (fn: () => void) => void }).setImmediate ?? ((fn) => setTimeout(fn, 0))

/** Let pending promise continuations run (one macrotask drains the microtask queue). */
function flushAsync(): Promise<void> {
  return new Promise((resolve) => immediate(resolve))
}
