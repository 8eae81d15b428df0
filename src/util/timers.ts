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
