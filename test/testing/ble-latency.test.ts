/**
 * The BLE simulator's peripheral latency and supervision timeout (Core v5.3 Vol 6 Part B §4.5.1,
 * §4.5.2), which the radio figures in bench/link.ts rest on: an idle peripheral wakes once per
 * (latency + 1) intervals, the central's data waits for an event the peripheral attends, the
 * peripheral's own data goes at the next event, a radio notification lets held data ride an event
 * the radio attends anyway, and an outage as long as the supervision timeout loses the connection.
 * All timing is asserted in the simulator's virtual time.
 */
import { describe, expect, it } from 'vitest'
import { bleLinkSimulator } from '../../src/testing/ble-link.js'

const INTERVAL = 30
const LATENCY = 30
const SPAN = INTERVAL * (LATENCY + 1)

function pair(extra: Parameters<typeof bleLinkSimulator>[0] = {}) {
  const sim = bleLinkSimulator({ seed: 9, connectionIntervalMs: INTERVAL, peripheralLatency: LATENCY, ...extra })
  const link = sim.connect()
  const atPeripheral: number[] = []
  const atCentral: number[] = []
  link.peripheral.onMessage(() => atPeripheral.push(sim.clock.now()))
  link.central.onMessage(() => atCentral.push(sim.clock.now()))
  const closed: number[] = []
  link.peripheral.onClose(() => closed.push(sim.clock.now()))
  link.central.onClose(() => undefined)
  return { sim, link, atPeripheral, atCentral, closed }
}

describe('BLE simulator: peripheral latency', () => {
  it('an idle peripheral attends one event per (latency + 1) intervals, and no more', async () => {
    const { sim, link } = pair()
    await sim.advance(60_000)
    const radio = link.radio.peripheral
    expect(radio.wakeUps).toBe(0)
    expect(radio.idleWakeUps).toBeGreaterThanOrEqual(Math.floor(60_000 / SPAN) - 1)
    expect(radio.idleWakeUps).toBeLessThanOrEqual(Math.ceil(60_000 / SPAN))
    expect(radio.radioWakeUps).toBe(radio.idleWakeUps)
    expect(radio.radioOnMicros).toBeGreaterThan(0)
  })

  it("the central's data waits for an event the peripheral attends; the peripheral's goes at the next event", async () => {
    const { sim, link, atPeripheral, atCentral } = pair()
    await sim.advance(5_000)
    const delays: number[] = []
    for (let i = 0; i < 20; i++) {
      // Spread the sends over the latency span so some land right after a forced event.
      await sim.advance(137)
      const sentAt = sim.clock.now()
      link.central.send(Uint8Array.of(i))
      await sim.advance(SPAN + INTERVAL)
      delays.push(atPeripheral[i]! - sentAt)
    }
    expect(Math.max(...delays)).toBeLessThanOrEqual(SPAN)
    // Without latency nothing would wait longer than one interval; with it most sends do.
    expect(delays.filter((d) => d > INTERVAL).length).toBeGreaterThan(10)
    const sentAt = sim.clock.now()
    link.peripheral.send(Uint8Array.of(1))
    await sim.advance(SPAN)
    expect(atCentral[0]! - sentAt).toBeLessThanOrEqual(INTERVAL)
  })

  it('with latency 0 the central reaches the peripheral within one interval', async () => {
    const { sim, link, atPeripheral } = pair({ peripheralLatency: 0 })
    await sim.advance(1_000)
    const sentAt = sim.clock.now()
    link.central.send(Uint8Array.of(1))
    await sim.advance(200)
    expect(atPeripheral[0]! - sentAt).toBeLessThanOrEqual(INTERVAL)
  })

  it('data queued at a radio notification rides that event: no wake-up of its own', async () => {
    const ridden = pair()
    const idle = pair()
    await ridden.sim.advance(10_000)
    await idle.sim.advance(10_000)
    const sentAt: number[] = []
    for (let i = 0; i < 5; i++) {
      ridden.link.peripheral.nextRadioEvent!(() => {
        sentAt.push(ridden.sim.clock.now())
        ridden.link.peripheral.send(Uint8Array.of(i))
      })
      await ridden.sim.advance(2 * SPAN)
      await idle.sim.advance(2 * SPAN)
    }
    expect(ridden.atCentral).toEqual(sentAt)
    const r = ridden.link.radio.peripheral
    expect(r.wakeUps).toBe(5)
    // Same radio wake-ups as the idle link (same seed, same phase): the sends woke nothing.
    expect(r.radioWakeUps).toBe(idle.link.radio.peripheral.radioWakeUps)
  })

  it('a send outside radio events adds a wake-up to the idle floor', async () => {
    const busy = pair()
    const idle = pair()
    for (let i = 0; i < 5; i++) {
      await busy.sim.advance(1_000)
      await idle.sim.advance(1_000)
      busy.link.peripheral.send(Uint8Array.of(i))
    }
    await busy.sim.advance(1_000)
    await idle.sim.advance(1_000)
    expect(busy.link.radio.peripheral.wakeUps).toBe(5)
    expect(busy.link.radio.peripheral.radioWakeUps).toBeGreaterThan(idle.link.radio.peripheral.radioWakeUps)
  })

  it('a connection parameter update to latency 0 applies after 6 events: then the central reaches the peripheral within one interval', async () => {
    const { sim, link, atPeripheral } = pair({ supervisionTimeoutMs: 6_000 })
    await sim.advance(5_000)
    link.setPeripheralLatency(0)
    await sim.advance(6 * INTERVAL)
    const delays: number[] = []
    for (let i = 0; i < 10; i++) {
      await sim.advance(137)
      const sentAt = sim.clock.now()
      link.central.send(Uint8Array.of(i))
      await sim.advance(2 * INTERVAL)
      delays.push(atPeripheral[i]! - sentAt)
    }
    expect(Math.max(...delays)).toBeLessThanOrEqual(INTERVAL)
    const idleBefore = link.radio.peripheral.idleWakeUps
    await sim.advance(3_000)
    // Latency 0: the peripheral attends every event, about 100 in 3 s.
    expect(link.radio.peripheral.idleWakeUps - idleBefore).toBeGreaterThanOrEqual(95)
    expect(() => link.setPeripheralLatency(600)).toThrow(/peripheralLatency/)
  })

  it('refuses a latency out of range and a supervision timeout the Core specification forbids', () => {
    expect(() => bleLinkSimulator({ peripheralLatency: 500 })).toThrow(/peripheralLatency/)
    expect(() => bleLinkSimulator({ peripheralLatency: 1.5 })).toThrow(/peripheralLatency/)
    // (1 + 30) × 30 ms × 2 = 1 860 ms: a 1.8 s timeout is too short.
    expect(() => bleLinkSimulator({ connectionIntervalMs: 30, peripheralLatency: 30, supervisionTimeoutMs: 1_800 })).toThrow(/supervisionTimeoutMs/)
    expect(() => bleLinkSimulator({ connectionIntervalMs: 30, peripheralLatency: 30, supervisionTimeoutMs: 6_000 })).not.toThrow()
  })
})

describe('BLE simulator: supervision timeout', () => {
  it('an outage shorter than the timeout delays traffic and loses nothing', async () => {
    const { sim, link, atPeripheral, closed } = pair({ supervisionTimeoutMs: 6_000 })
    await sim.advance(1_000)
    const start = sim.clock.now()
    link.outage(4_000)
    link.central.send(Uint8Array.of(1))
    await sim.advance(8_000)
    expect(closed).toEqual([])
    expect(link.connected).toBe(true)
    expect(atPeripheral).toHaveLength(1)
    expect(atPeripheral[0]! - start).toBeGreaterThanOrEqual(4_000)
    expect(atPeripheral[0]! - start).toBeLessThanOrEqual(4_000 + SPAN)
  })

  it('an outage as long as the timeout loses the connection when the timeout expires', async () => {
    const { sim, link, atPeripheral, closed } = pair({ supervisionTimeoutMs: 6_000 })
    await sim.advance(1_000)
    const start = sim.clock.now()
    link.outage(10_000)
    link.central.send(Uint8Array.of(1))
    await sim.advance(12_000)
    expect(link.connected).toBe(false)
    expect(closed).toEqual([start + 6_000])
    expect(atPeripheral).toEqual([])
    expect(link.stats.lost).toBe(1)
  })

  it("the hosts learn of a dropped connection after the supervision timeout", async () => {
    const sim = bleLinkSimulator({ seed: 3, disconnect: 1, supervisionTimeoutMs: 4_000 })
    const link = sim.connect()
    const closed: number[] = []
    link.central.onClose(() => closed.push(sim.clock.now()))
    link.peripheral.onClose(() => undefined)
    link.central.onMessage(() => undefined)
    link.peripheral.onMessage(() => undefined)
    link.peripheral.send(Uint8Array.of(1))
    // The fault hits at the first connection event (within one 30 ms interval).
    await sim.advance(100)
    expect(link.connected).toBe(false)
    expect(closed).toEqual([])
    await sim.advance(5_000)
    expect(closed).toHaveLength(1)
    expect(closed[0]!).toBeGreaterThanOrEqual(4_000)
    expect(closed[0]!).toBeLessThanOrEqual(4_030)
  })
})
