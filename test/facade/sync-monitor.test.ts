/**
 * SyncMonitor's bookkeeping with a stand-in replica: when a peer's announced seq counts as
 * missing, when pending (unintegrable) updates do, and that every `behind` is followed by its
 * `caught-up` — also when the next announcement arrives before the next check.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { SyncMonitor, type SyncLagEvent } from '../../src/facade/sync-monitor.js'
import type { DeviceContext } from '../../src/facade/device-context.js'
import type { Replica } from '../../src/sync/replica.js'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const monitors: SyncMonitor[] = []
afterEach(() => monitors.splice(0).forEach((m) => m.close()))

/** A personal-scope replica whose applied seqs and pending state the test sets. */
function setup(lagTimeoutMs = 80) {
  const applied = new Set<number>()
  const state = { pending: false, clocks: new Map<number, number>() }
  const replica = {
    scope: 'personal',
    hasApplied: (_sender: string, seq: number) => applied.has(seq),
    hasPendingUpdates: () => state.pending,
    holdsContent: (client: number, clock: number) => (state.clocks.get(client) ?? 0) >= clock,
  } as unknown as Replica
  // Only what the monitor reads of the device context.
  const context = {
    deviceId: 'me',
    replicas: () => [replica],
    eachReplica: (fn: (r: Replica) => void) => fn(replica),
    replica: () => replica,
    assertOpen: () => {},
    registry: { revocation: () => undefined },
    allReplicas: () => [replica],
  } as unknown as DeviceContext
  const monitor = new SyncMonitor(context, { lagTimeoutMs })
  monitors.push(monitor)
  const events: string[] = []
  monitor.on('lag', (e: SyncLagEvent) => events.push(`${e.state}:${e.announcedSeq}`))
  return { monitor, applied, state, events }
}

describe('SyncMonitor', () => {
  it('counts an announced seq as arrived when the doc holds its tip, whatever was compacted away', async () => {
    const { monitor, state, events } = setup()
    // Seq 7 was compacted into someone else's snapshot before it reached this device: not applied
    // here, but the content it ends with (client 42 up to clock 10) is.
    state.clocks.set(42, 10)
    monitor.announce('personal', 'peer', 7, { client: 42, clock: 10 })
    expect(monitor.status()).toEqual([expect.objectContaining({ announcedSeq: 7, caughtUp: true })])
    // A tip this doc does not reach is missing content: behind, then caught up once it arrives.
    monitor.announce('personal', 'peer', 8, { client: 42, clock: 12 })
    await sleep(250)
    expect(events).toEqual(['behind:8'])
    state.clocks.set(42, 12)
    await sleep(150)
    expect(events).toEqual(['behind:8', 'caught-up:8'])
  })

  it('reports a missing announced seq once, and its arrival — also when a newer announcement comes first', async () => {
    const { monitor, applied, events } = setup()
    monitor.announce('personal', 'peer', 5)
    expect(monitor.status()).toEqual([expect.objectContaining({ deviceId: 'peer', announcedSeq: 5, caughtUp: false })])
    await sleep(250)
    expect(events).toEqual(['behind:5'])
    // Seq 5 arrives and the peer announces 6 before the next check.
    applied.add(5)
    applied.add(6)
    monitor.announce('personal', 'peer', 6)
    await sleep(150)
    expect(events).toEqual(['behind:5', 'caught-up:5'])
    expect(monitor.status()).toEqual([expect.objectContaining({ announcedSeq: 6, caughtUp: true })])
    // Own announcements and seq 0 are ignored; older announcements do not move it back.
    monitor.announce('personal', 'me', 99)
    monitor.announce('personal', 'peer', 0)
    monitor.announce('personal', 'peer', 4)
    expect(monitor.status()).toEqual([expect.objectContaining({ deviceId: 'peer', announcedSeq: 6 })])
  })

  it('counts updates that cannot be integrated (an earlier one missing) as behind, once they persist', async () => {
    const { monitor, applied, state, events } = setup()
    applied.add(3)
    monitor.announce('personal', 'peer', 3)
    await sleep(150)
    expect(events).toEqual([])
    // The latest seq applied, but it depends on one that never came.
    state.pending = true
    await sleep(300)
    expect(events).toEqual(['behind:3'])
    expect(monitor.status()[0]).toMatchObject({ caughtUp: false, behindSince: expect.any(Number) })
    state.pending = false
    await sleep(150)
    expect(events).toEqual(['behind:3', 'caught-up:3'])
  })

  it('does not report pending updates that resolve within the timeout', async () => {
    const { monitor, applied, state, events } = setup(400)
    applied.add(2)
    monitor.announce('personal', 'peer', 2)
    state.pending = true
    await sleep(150)
    state.pending = false
    await sleep(500)
    expect(events).toEqual([])
  })
})
