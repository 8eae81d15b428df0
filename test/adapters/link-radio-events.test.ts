/**
 * `rideRadioEvents`: under BLE peripheral latency the glasses' radio attends one connection event
 * every (latency + 1) intervals anyway; with a channel that reports those events, held presence
 * goes out on the next one — long before a 60 s radio window ends, and without a wake-up of its
 * own. Asserted on the simulator's virtual time and radio counters.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { linkServer } from '../../src/adapters/link-server.js'
import { linkTransport } from '../../src/adapters/link.js'
import { sameOuterState, sealedLog } from '../../src/adapters/transport-conformance.js'
import { bleLinkSimulator } from '../../src/testing/ble-link.js'

const INTERVAL = 30
const LATENCY = 30
const SPAN = INTERVAL * (LATENCY + 1)

async function run(rideRadioEvents: boolean, presence: boolean) {
  const sim = bleLinkSimulator({ seed: 5, mtu: 185, connectionIntervalMs: INTERVAL, peripheralLatency: LATENCY, supervisionTimeoutMs: 6_000 })
  // A slow keepalive, as on BLE (the supervision timeout catches a dead link): owed acks ride it.
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: 600_000 })
  const glasses = linkTransport({ clock: sim.clock, keepaliveMs: 600_000, radioWindowMs: 60_000, rideRadioEvents })
  const doc = new Y.Doc()
  const awareness = new Awareness(doc)
  glasses.attach({ roomId: 'room', doc, awareness })
  const link = sim.connect()
  hub.accept(link.central)
  glasses.connect(link.peripheral)
  await sim.settle()
  const phone = hub.room('room')!
  const delays: number[] = []
  let setAt: number | undefined
  phone.awareness.on('update', ({ added, updated }: { added: number[]; updated: number[] }) => {
    if (setAt !== undefined && [...added, ...updated].includes(awareness.clientID)) {
      delays.push(sim.clock.now() - setAt)
      setAt = undefined
    }
  })
  const before = link.radio.peripheral
  for (let i = 0; i < 20; i++) {
    await sim.advance(15_000)
    if (presence) {
      setAt ??= sim.clock.now()
      awareness.setLocalState({ n: i })
    }
  }
  await sim.advance(61_000)
  const after = link.radio.peripheral
  glasses.close()
  hub.close()
  awareness.destroy()
  return { delays, radioWakeUps: after.radioWakeUps - before.radioWakeUps, wakeUps: after.wakeUps - before.wakeUps }
}

describe('link: riding radio events', () => {
  it('sends held presence on the next event the radio attends anyway, adding no wake-ups', async () => {
    const ridden = await run(true, true)
    const idle = await run(true, false)
    expect(ridden.delays).toHaveLength(20)
    expect(Math.max(...ridden.delays)).toBeLessThanOrEqual(SPAN + INTERVAL)
    expect(ridden.wakeUps).toBeGreaterThanOrEqual(20)
    // Every presence renewal rode a forced event: the radio woke as often as on the idle link (± one
    // event where sending moved the forced-event schedule).
    expect(Math.abs(ridden.radioWakeUps - idle.radioWakeUps)).toBeLessThanOrEqual(1)
  })

  it('without it the window decides: presence waits for the 60 s flush and each flush wakes the radio', async () => {
    const timed = await run(false, true)
    const idle = await run(false, false)
    expect(Math.max(...timed.delays)).toBeGreaterThanOrEqual(45_000)
    expect(timed.radioWakeUps).toBeGreaterThan(idle.radioWakeUps)
  })

  it('credit grants that ride radio events do not stall a large transfer to the glasses', async () => {
    const duration = async (rideRadioEvents: boolean): Promise<number> => {
      const sim = bleLinkSimulator({ seed: 8, mtu: 185, connectionIntervalMs: INTERVAL, peripheralLatency: LATENCY, supervisionTimeoutMs: 6_000 })
      const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: 600_000 })
      const glasses = linkTransport({ clock: sim.clock, keepaliveMs: 600_000, radioWindowMs: 2_000, rideRadioEvents })
      const doc = new Y.Doc()
      const awareness = new Awareness(doc)
      glasses.attach({ roomId: 'room', doc, awareness })
      const link = sim.connect()
      hub.accept(link.central)
      glasses.connect(link.peripheral)
      await sim.settle()
      const phoneDoc = hub.room('room')!.doc
      const start = sim.clock.now()
      for (let i = 0; i < 100; i++) sealedLog(phoneDoc).push([new Uint8Array(1024).fill(i)])
      while (!sameOuterState(doc, phoneDoc) && sim.clock.now() - start < 120_000) await sim.advance(30)
      expect(sameOuterState(doc, phoneDoc)).toBe(true)
      const took = sim.clock.now() - start
      glasses.close()
      hub.close()
      awareness.destroy()
      return took
    }
    const ridden = await duration(true)
    const direct = await duration(false)
    // 100 KB at 4 packets of 185 B per 30 ms event is about 4 s either way.
    expect(ridden).toBeLessThanOrEqual(direct * 1.25 + SPAN)
  })
})
