/**
 * Timer helpers shared by the facade and the sync layer.
 *
 * @module
 */

/** Longest delay `setTimeout` honours (a longer one fires at once): 2^31 − 1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** Let a timer not keep Node's event loop alive (a no-op in browsers, whose timers have no `unref`). */
export function unref(timer: ReturnType<typeof setTimeout> | ReturnType<typeof setInterval>): void {
  ;(timer as { unref?: () => void }).unref?.()
}

/**
 * A timer kept for the earliest deadline it is armed for: arming it for a later time than it is
 * already set for changes nothing, arming it earlier moves it. Used where several events ask for
 * "run by then" (a flush window, the next expiry).
 */
export class EarliestTimer {
  private timer: ReturnType<typeof setTimeout> | undefined
  private at = Infinity

  /** `fn` runs once per deadline reached; with `unref`, the timer never keeps Node running. */
  constructor(
    private readonly fn: () => void,
    private readonly options: { unref?: boolean } = {},
  ) {}

  /** True while a deadline is set. */
  get armed(): boolean {
    return this.timer !== undefined
  }

  /** Run `fn` at `at` (epoch ms, clamped to {@link MAX_TIMER_MS} from now) unless it is set earlier. */
  arm(at: number): void {
    if (at >= this.at) return
    if (this.timer) clearTimeout(this.timer)
    this.at = at
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.at = Infinity
      this.fn()
    }, Math.min(Math.max(0, at - Date.now()), MAX_TIMER_MS))
    if (this.options.unref) unref(this.timer)
  }

  /** Drop the deadline. */
  cancel(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.at = Infinity
  }
}
