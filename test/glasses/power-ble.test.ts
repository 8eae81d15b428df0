/**
 * The glasses' power profile on the BLE link simulator: `openGlasses` linked to `openPhone` over
 * a simulated connection (30 ms interval, MTU 185). On battery with the screen off the glasses
 * hold writes for the radio window, ride the connection events their radio attends anyway and
 * ask for peripheral latency 30, so the radio attends far fewer events than on the charger
 * (latency 0, every write at once) for the same writes; with the screen on the latency drops to
 * 0 again. Measured by the simulator's `RadioStats` in virtual time.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { bleLinkSimulator, type BleLink, type BleLinkSimulator } from '../../src/testing/ble-link.js'
import type { Glasses } from '../../adapters/glasses/index.js'
import type { Phone } from '../../adapters/phone/index.js'
import { relayOn, teardown, testGlasses, testPhone, waitUntil } from '../helpers/phone.js'

afterEach(teardown)

const SEED = 0x91a55
const WRITES = 8
const GAP_MS = 5_000

/** `WRITES` glasses memories `GAP_MS` apart in virtual time; the peripheral radio's counters over that span. */
async function radioFor(sim: BleLinkSimulator, link: BleLink, glasses: Glasses, phone: Phone, label: string) {
  const before = link.radio.peripheral
  const ids: string[] = []
  for (let i = 0; i < WRITES; i++) {
    ids.push((await glasses.device.memory.remember({ text: `${label} ${i}` })).id)
    await glasses.device.flush()
    await sim.advance(GAP_MS)
  }
  // Everything delivered before the span ends (the radio window is at most 4 s).
  for (let i = 0; i < 50 && !ids.every((id) => phone.device.memory.get(id) !== undefined); i++) {
    await sim.advance(200)
    await new Promise((r) => setTimeout(r, 5))
  }
  expect(ids.filter((id) => phone.device.memory.get(id) === undefined)).toEqual([])
  const after = link.radio.peripheral
  return { radioWakeUps: after.radioWakeUps - before.radioWakeUps, wakeUps: after.wakeUps - before.wakeUps, energyMicroJoules: after.energyMicroJoules - before.energyMicroJoules }
}

describe('the glasses power profile on the BLE simulator', () => {
  it(`on battery the radio attends fewer connection events than on the charger for the same writes (seed ${SEED})`, async () => {
    const sim = bleLinkSimulator({ seed: SEED, mtu: 185, connectionIntervalMs: 30, supervisionTimeoutMs: 6_000 })
    const relay = await relayOn()
    const phone = await testPhone(relay.url, { link: { keepaliveMs: 0, clock: sim.clock } })
    const glasses = await testGlasses(phone, relay.url, { link: { keepaliveMs: 0, clock: sim.clock } })
    glasses.setNetwork({ wifi: false })
    const link = sim.connect()
    phone.serveLink(link.central)
    glasses.connectLink(link.peripheral)
    await waitUntil(async () => {
      await sim.advance(100)
      return glasses.pathOf(glasses.device.roomId('personal')) === 'link' && glasses.links.length === 1 && glasses.links[0]!.ready
    }, 10_000, 'the link session')
    // Seal each write at once on both profiles: what differs is the link's radio use alone.
    const sealAtOnce = () => glasses.device.tune({ flushDelayMs: 0, streamFlushDelayMs: 0 })

    expect(glasses.setPowerState({ charging: true, batteryLevel: 0.9, screenOn: false })).toMatchObject({ peripheralLatency: 0, rideRadioEvents: false, radioWindowMs: 0 })
    sealAtOnce()
    await sim.advance(1_000)
    const charging = await radioFor(sim, link, glasses, phone, 'charging')

    expect(glasses.setPowerState({ charging: false, batteryLevel: 0.9, screenOn: false })).toMatchObject({ peripheralLatency: 30, rideRadioEvents: true })
    sealAtOnce()
    await sim.advance(1_000) // the connection parameter update applies 6 events later
    const battery = await radioFor(sim, link, glasses, phone, 'battery')

    expect(glasses.setPowerState({ charging: false, batteryLevel: 0.9, screenOn: true })).toMatchObject({ peripheralLatency: 0 })
    sealAtOnce()
    await sim.advance(1_000)
    const screenOn = await radioFor(sim, link, glasses, phone, 'screen on')

    console.log(
      `peripheral radio over ${WRITES} writes ${GAP_MS} ms apart (seed ${SEED}): ` +
        `charging ${charging.radioWakeUps} events attended (${charging.wakeUps} with data), battery ${battery.radioWakeUps} (${battery.wakeUps}), ` +
        `battery + screen on ${screenOn.radioWakeUps} (${screenOn.wakeUps}); energy µJ ${Math.round(charging.energyMicroJoules)} / ${Math.round(battery.energyMicroJoules)} / ${Math.round(screenOn.energyMicroJoules)}`,
    )
    expect(battery.radioWakeUps * 5).toBeLessThan(charging.radioWakeUps)
    expect(battery.energyMicroJoules).toBeLessThan(charging.energyMicroJoules)
    // Screen on: latency 0 again, the radio attends every event.
    expect(screenOn.radioWakeUps).toBeGreaterThan(battery.radioWakeUps * 5)
  }, 60_000)
})
