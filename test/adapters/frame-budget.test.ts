import { describe, expect, it } from 'vitest'
import { FrameBudget } from '../../src/adapters/frame-budget.js'
import { MIN_SYNC_FRAME_BYTES } from '../../src/wire/sync-frames.js'

const frames = (sizes: number[], splittable: boolean[]) => ({ frames: sizes.map((size) => new Uint8Array(size)), splittable })

describe('frame budget', () => {
  it('halves the largest frame it could have cut after a 1009, until frames fit', () => {
    const budget = new FrameBudget(1024 * 1024)
    budget.connected()
    budget.sent(frames([1_000_000, 300_000, 10], [true, true, false]))
    expect(budget.refused()).toEqual({ outcome: 'smaller', budget: 500_000 })
    budget.connected()
    budget.sent(frames([499_000, 20], [true, false]))
    expect(budget.refused()).toEqual({ outcome: 'smaller', budget: 249_500 })
    expect(budget.bytes).toBe(249_500)
  })

  it('calls it lasting when the largest frame sent held one item, which no budget cuts', () => {
    const budget = new FrameBudget(1024 * 1024)
    budget.connected()
    budget.sent(frames([200_000, 700_000, 10], [true, false, false]))
    expect(budget.refused()).toEqual({ outcome: 'lasting', frameBytes: 700_000 })
    // The budget is left as it was: smaller frames would not help.
    expect(budget.bytes).toBe(1024 * 1024)
  })

  it('stops at the smallest budget', () => {
    const budget = new FrameBudget(MIN_SYNC_FRAME_BYTES * 2)
    budget.connected()
    budget.sent(frames([MIN_SYNC_FRAME_BYTES * 2], [true]))
    expect(budget.refused()).toEqual({ outcome: 'smaller', budget: MIN_SYNC_FRAME_BYTES })
    budget.connected()
    budget.sent(frames([MIN_SYNC_FRAME_BYTES], [true]))
    expect(budget.refused().outcome).toBe('lasting')
  })

  it('forgets what the last connection sent', () => {
    const budget = new FrameBudget(1024 * 1024)
    budget.sent(frames([900_000], [false]))
    budget.connected()
    budget.sent(frames([600_000], [true]))
    expect(budget.refused()).toEqual({ outcome: 'smaller', budget: 300_000 })
  })
})
