/**
 * `EarliestTimer` (src/util/timers.ts): what the sealer's flush window and the memory expiry sweep
 * rely on — the earliest deadline wins, a later one changes nothing, a fired or cancelled timer
 * can be armed again, and deadlines past the 2^31 ms `setTimeout` limit do not fire at once.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { EarliestTimer, MAX_TIMER_MS } from '../../src/util/timers.js'

beforeEach(() => {
  vi.useFakeTimers()
  vi.setSystemTime(1_000_000)
})
afterEach(() => {
  vi.useRealTimers()
})

describe('EarliestTimer', () => {
  it('fires once at the earliest deadline it was armed for', () => {
    const fired: number[] = []
    const timer = new EarliestTimer(() => fired.push(Date.now()))
    timer.arm(Date.now() + 50)
    timer.arm(Date.now() + 20)
    timer.arm(Date.now() + 80)
    vi.advanceTimersByTime(100)
    expect(fired).toEqual([1_000_020])
    expect(timer.armed).toBe(false)
  })

  it('can be armed again after it fired or was cancelled', () => {
    let count = 0
    const timer = new EarliestTimer(() => count++)
    timer.arm(Date.now() + 10)
    timer.cancel()
    vi.advanceTimersByTime(20)
    expect(count).toBe(0)
    timer.arm(Date.now() + 30)
    vi.advanceTimersByTime(30)
    timer.arm(Date.now() + 30)
    vi.advanceTimersByTime(30)
    expect(count).toBe(2)
  })

  it('waits the longest delay setTimeout honours for a deadline months away, instead of firing at once', () => {
    let count = 0
    const timer = new EarliestTimer(() => count++)
    timer.arm(Date.now() + 90 * 24 * 3600 * 1000)
    vi.advanceTimersByTime(MAX_TIMER_MS - 1)
    expect(count).toBe(0)
    vi.advanceTimersByTime(1)
    expect(count).toBe(1)
  })
})
