/**
 * Memory a worker shares with the parent: the index of the input it is running, when it started,
 * and a copy of the input (up to {@link SLOT_INPUT_BYTES}). Written with `Atomics`, read by the
 * parent's watchdog without the worker's help.
 *
 * @module
 */

/** Bytes of an input the slot keeps (longer inputs are cut; the report says so). */
export const SLOT_INPUT_BYTES = 2 * 1024 * 1024

const HEADER_INTS = 4 // busy, input length, index low, index high
const HEADER_BYTES = HEADER_INTS * 4 + 8 // + float64 start time

/** The shared state of one worker. */
export class SharedSlot {
  private readonly ints: Int32Array
  private readonly started: Float64Array
  private readonly input: Uint8Array

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(HEADER_BYTES + SLOT_INPUT_BYTES)) {
    this.ints = new Int32Array(buffer, 0, HEADER_INTS)
    this.started = new Float64Array(buffer, HEADER_INTS * 4, 1)
    this.input = new Uint8Array(buffer, HEADER_BYTES)
  }

  /** The worker starts input `index`. */
  start(index: number, input: Uint8Array): void {
    const n = Math.min(input.length, SLOT_INPUT_BYTES)
    this.input.set(input.subarray(0, n))
    Atomics.store(this.ints, 1, input.length)
    Atomics.store(this.ints, 2, index % 2 ** 31)
    Atomics.store(this.ints, 3, Math.floor(index / 2 ** 31))
    this.started[0] = Date.now()
    Atomics.store(this.ints, 0, 1)
  }

  /** The worker finished its input. */
  finish(): void {
    Atomics.store(this.ints, 0, 0)
  }

  /** What the worker is running now, if anything. */
  current(): { index: number; startedAt: number; input: Uint8Array; length: number } | undefined {
    if (Atomics.load(this.ints, 0) !== 1) return undefined
    const length = Atomics.load(this.ints, 1)
    const index = Atomics.load(this.ints, 2) + Atomics.load(this.ints, 3) * 2 ** 31
    return { index, startedAt: this.started[0]!, input: this.input.slice(0, Math.min(length, SLOT_INPUT_BYTES)), length }
  }
}
