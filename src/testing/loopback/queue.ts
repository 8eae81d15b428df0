/**
 * The loopback network's event queue and the pump that runs it in virtual time. Events sort by
 * virtual delivery time, then a tie drawn from the seeded PRNG, then sequence — so one seed always
 * yields one delivery order.
 *
 * @module
 */
import * as prng from 'lib0/prng'
import { MinHeap } from '../../util/min-heap.js'

/** Let timers and I/O run every so many deliveries, so a long simulation does not starve them. */
const EVENTS_PER_SLICE = 256

/** Where a queued event sorts. */
export interface QueueKey {
  at: number
  tie: number
  seq: number
}

/** A queued delivery or connection step. */
export interface QueuedEvent extends QueueKey {
  run: () => void
}

/** Whether `a` runs before `b`. */
export function before(a: QueueKey, b: QueueKey): boolean {
  if (a.at !== b.at) return a.at < b.at
  if (a.tie !== b.tie) return a.tie < b.tie
  return a.seq < b.seq
}

/**
 * Runs queued events in order, always after the current call stack, advancing the virtual clock
 * to each event's time; {@link EventPump.whenIdle} resolves once nothing is left to run.
 */
export class EventPump {
  private readonly queue = new MinHeap<QueuedEvent>(before)
  private clock = 0
  private seq = 0
  private pumping = false
  private idleWaiters: Array<() => void> = []

  /** `random` is the network's PRNG: ties come from the same stream as the fault draws. */
  constructor(private readonly random: prng.PRNG) {}

  /** The virtual time of the event running now (or of the last one run). */
  get now(): number {
    return this.clock
  }

  /** Whether an event is queued or the pump is running. */
  get busy(): boolean {
    return this.pumping || this.queue.size > 0
  }

  /** The next sequence number, for a key built by the caller. */
  nextSeq(): number {
    return ++this.seq
  }

  /** Queue an event with a key of the caller's choosing. */
  push(event: QueuedEvent): void {
    this.queue.push(event)
    this.start()
  }

  /** Queue `run` `delay` ticks from now, with a fresh PRNG tie. */
  schedule(delay: number, run: () => void): void {
    this.push({ at: this.clock + delay, tie: prng.real53(this.random), seq: ++this.seq, run })
  }

  /** Drop everything queued. */
  clear(): void {
    this.queue.clear()
  }

  /** Resolves once the queue has drained. */
  whenIdle(): Promise<void> {
    if (!this.pumping && this.queue.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private start(): void {
    if (this.pumping) return
    this.pumping = true
    // Never deliver inside the sender's call stack (it may be inside a Y transaction).
    setTimeout(() => void this.run(), 0)
  }

  private async run(): Promise<void> {
    let ran = 0
    for (let event = this.queue.pop(); event; event = this.queue.pop()) {
      this.clock = Math.max(this.clock, event.at)
      try {
        event.run()
      } catch (error) {
        console.error('contextsync: loopback delivery failed', error)
      }
      // A microtask between deliveries lets promise-based consumers react in between.
      await (++ran % EVENTS_PER_SLICE === 0 ? macrotask() : undefined)
    }
    this.pumping = false
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }
}

function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0))
}
