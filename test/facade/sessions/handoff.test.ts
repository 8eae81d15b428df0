import { describe, expect, it } from 'vitest'
import { ScopeAccessError, ValidationError, type ContextSync, type LoopbackNetwork } from '../../../src/index.js'
import type { ActiveDeviceChange, HandoffRequest, HandoffUpdate } from '../../../src/facade/sessions.js'
import { converge } from '../../helpers/devices.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

type Kind = 'phone' | 'glasses' | 'car' | 'pc'
async function devices<K extends Kind[]>(...kinds: K): Promise<ContextSync[]> {
  const fleet = await loopbackDevices(kinds, { seed: 66 })
  net = fleet.net
  return fleet.all
}

/** Every event of every kind a device's sessions API emits, in order. */
function record(dev: ContextSync) {
  const log: Array<{ event: string; offerId?: string; status?: string; by?: string; deviceId?: string }> = []
  const update = (event: string) => (e: HandoffUpdate) => log.push({ event, offerId: e.offer.id, status: e.offer.status, ...(e.offer.respondedBy && { by: e.offer.respondedBy }) })
  dev.sessions.on('handoff-accepted', update('handoff-accepted'))
  dev.sessions.on('handoff-declined', update('handoff-declined'))
  dev.sessions.on('handoff-expired', update('handoff-expired'))
  dev.sessions.on('handoff-cancelled', update('handoff-cancelled'))
  dev.sessions.on('active-device', (e: ActiveDeviceChange) => log.push({ event: 'active-device', deviceId: e.deviceId }))
  return log
}

describe('handoff', () => {
  it('glasses hand the session to the car: the car gets the offer, accepts, and is the active device everywhere', async () => {
    const [glasses, phone, car, pc] = (await devices('glasses', 'phone', 'car', 'pc')) as [ContextSync, ContextSync, ContextSync, ContextSync]
    const s = glasses.sessions.start({ title: 'Route home' })
    await s.append({ role: 'user', text: 'Take me home, avoid the highway' })
    await converge([glasses, phone, car, pc], net)
    expect(pc.sessions.get(s.id)!.activeDevice).toBe(glasses.deviceId)

    const offers: HandoffRequest[] = []
    car.sessions.on('handoff', (e) => {
      offers.push(e)
      void e.accept()
    })
    const elsewhere: HandoffRequest[] = []
    phone.sessions.on('handoff', (e) => elsewhere.push(e))
    pc.sessions.on('handoff', (e) => elsewhere.push(e))
    const onGlasses = record(glasses)
    const onPc = record(pc)

    const offer = await s.handoff({ to: 'car', payload: { step: 3, eta: '18:40' }, link: 'nav://route/home' })
    await converge([glasses, phone, car, pc], net)
    const result = await offer.settled()

    expect(offers).toHaveLength(1)
    expect(offers[0]).toMatchObject({
      id: offer.id,
      sessionId: s.id,
      scope: 'personal',
      from: glasses.deviceId,
      fromKind: 'glasses',
      fromName: 'Test glasses',
      to: 'car',
      toKind: true,
      title: 'Route home',
      payload: { step: 3, eta: '18:40' },
      link: 'nav://route/home',
      status: 'pending',
    })
    expect(elsewhere).toEqual([])
    expect(result).toMatchObject({ status: 'accepted', respondedBy: car.deviceId })
    for (const dev of [glasses, phone, car, pc]) {
      const session = dev.sessions.get(s.id)!
      expect(session.activeDevice, dev.kind).toBe(car.deviceId)
      expect(session.lease).toMatchObject({ deviceId: car.deviceId, offerId: offer.id, active: true })
      expect(session.handoffs).toEqual([expect.objectContaining({ id: offer.id, status: 'accepted', respondedBy: car.deviceId })])
    }
    for (const log of [onGlasses, onPc]) {
      expect(log).toEqual([
        { event: 'active-device', deviceId: car.deviceId },
        { event: 'handoff-accepted', offerId: offer.id, status: 'accepted', by: car.deviceId },
      ])
    }
    // The car continues the conversation.
    await car.sessions.open(s.id).append({ role: 'assistant', text: 'Route set, 18 minutes.' })
    await converge([glasses, phone, car, pc], net)
    expect(glasses.sessions.get(s.id)!.turns.map((t) => t.text)).toEqual(['Take me home, avoid the highway', 'Route set, 18 minutes.'])
  })

  it('a declined offer leaves the session where it was; the offering device hears the decline', async () => {
    const [glasses, pc] = (await devices('glasses', 'pc')) as [ContextSync, ContextSync]
    const s = glasses.sessions.start({ title: 'Recipe' })
    await converge([glasses, pc], net)
    pc.sessions.on('handoff', (e) => void e.decline())
    const onGlasses = record(glasses)
    const offer = await s.handoff({ to: pc.deviceId })
    await converge([glasses, pc], net)
    expect(await offer.settled()).toMatchObject({ status: 'declined', respondedBy: pc.deviceId, toKind: false, to: pc.deviceId })
    expect(onGlasses).toEqual([{ event: 'handoff-declined', offerId: offer.id, status: 'declined', by: pc.deviceId }])
    for (const dev of [glasses, pc]) expect(dev.sessions.get(s.id)!.activeDevice).toBe(glasses.deviceId)
    expect(pc.sessions.pendingHandoffs()).toEqual([])
  })

  it('an offer nobody answers expires on every device; answering it afterwards changes nothing', async () => {
    const [glasses, car, phone] = (await devices('glasses', 'car', 'phone')) as [ContextSync, ContextSync, ContextSync]
    const s = glasses.sessions.start({ title: 'Podcast' })
    await converge([glasses, car, phone], net)
    const onGlasses = record(glasses)
    const onPhone = record(phone)
    const offer = await s.handoff({ to: 'car', expiresIn: 150 })
    await converge([glasses, car, phone], net)
    const [late] = car.sessions.pendingHandoffs()
    expect(late).toMatchObject({ id: offer.id, status: 'pending' })
    await sleep(250)
    expect(offer.status()).toBe('expired')
    expect(await offer.settled()).toMatchObject({ status: 'expired' })
    expect(onGlasses).toEqual([{ event: 'handoff-expired', offerId: offer.id, status: 'expired' }])
    expect(onPhone).toEqual([{ event: 'handoff-expired', offerId: offer.id, status: 'expired' }])
    expect(car.sessions.pendingHandoffs()).toEqual([])
    // The car's user taps "accept" too late.
    const outcome = await late!.accept()
    expect(outcome).toMatchObject({ status: 'expired', activeDevice: glasses.deviceId })
    expect(outcome.session).toBeUndefined()
    await converge([glasses, car, phone], net)
    for (const dev of [glasses, car, phone]) expect(dev.sessions.get(s.id)!.activeDevice).toBe(glasses.deviceId)
  })

  it('the offering device can cancel a pending offer', async () => {
    const [phone, pc] = (await devices('phone', 'pc')) as [ContextSync, ContextSync]
    const s = phone.sessions.start({ title: 'Email draft' })
    await converge([phone, pc], net)
    const onPc = record(pc)
    const offer = await s.handoff({ to: 'pc' })
    await converge([phone, pc], net)
    await offer.cancel()
    await converge([phone, pc], net)
    expect(offer.status()).toBe('cancelled')
    expect(onPc).toEqual([{ event: 'handoff-cancelled', offerId: offer.id, status: 'cancelled', by: phone.deviceId }])
    expect(pc.sessions.pendingHandoffs()).toEqual([])
  })

  it('two devices claiming at once end with the same single winner everywhere', async () => {
    const [glasses, car, pc, phone] = (await devices('glasses', 'car', 'pc', 'phone')) as [ContextSync, ContextSync, ContextSync, ContextSync]
    const s = glasses.sessions.start({ title: 'Shared' })
    await converge([glasses, car, pc, phone], net)
    // Both claim before either hears of the other (same term): the higher device id wins.
    const [carLease, pcLease] = await Promise.all([car.sessions.open(s.id).claim(), pc.sessions.open(s.id).claim()])
    expect(carLease.term).toBe(pcLease.term)
    await converge([glasses, car, pc, phone], net)
    const winner = car.deviceId > pc.deviceId ? car.deviceId : pc.deviceId
    for (const dev of [glasses, car, pc, phone]) {
      expect(dev.sessions.get(s.id)!.activeDevice, dev.kind).toBe(winner)
      expect(dev.sessions.get(s.id)!.lease).toMatchObject({ deviceId: winner, term: carLease.term, active: true })
    }
    // A later claim (seen the others) wins over both.
    await glasses.sessions.open(s.id).claim()
    await converge([glasses, car, pc, phone], net)
    for (const dev of [glasses, car, pc, phone]) expect(dev.sessions.get(s.id)!.activeDevice).toBe(glasses.deviceId)
  })

  it('an offer to a kind accepted by two devices of that kind at once resolves to one winner everywhere', async () => {
    const [phone, pc1, pc2, glasses] = (await devices('phone', 'pc', 'pc', 'glasses')) as [ContextSync, ContextSync, ContextSync, ContextSync]
    const s = phone.sessions.start({ title: 'Spreadsheet' })
    await converge([phone, pc1, pc2, glasses], net)
    const requests: HandoffRequest[] = []
    pc1.sessions.on('handoff', (e) => requests.push(e))
    pc2.sessions.on('handoff', (e) => requests.push(e))
    const offer = await s.handoff({ to: 'pc' })
    await converge([phone, pc1, pc2, glasses], net)
    expect(requests).toHaveLength(2)
    const outcomes = await Promise.all(requests.map((r) => r.accept()))
    expect(outcomes.map((o) => o.status)).toEqual(['accepted', 'accepted'])
    await converge([phone, pc1, pc2, glasses], net)
    const winner = pc1.deviceId > pc2.deviceId ? pc1.deviceId : pc2.deviceId
    for (const dev of [phone, pc1, pc2, glasses]) {
      const session = dev.sessions.get(s.id)!
      expect(session.activeDevice).toBe(winner)
      expect(session.handoffs[0]).toMatchObject({ id: offer.id, status: 'accepted', respondedBy: winner })
    }
    expect(await offer.settled()).toMatchObject({ status: 'accepted', respondedBy: winner })
  })

  it('a device without the session scope never sees the offer; offering to it is refused', async () => {
    const [phone, glasses, car] = (await devices('phone', 'glasses', 'car')) as [ContextSync, ContextSync, ContextSync]
    const s = phone.sessions.start({ scope: 'health', title: 'Blood pressure' })
    await s.append({ role: 'user', text: 'Log 120/80' })
    await converge([phone, glasses, car], net)
    const carOffers: HandoffRequest[] = []
    car.sessions.on('handoff', (e) => carOffers.push(e))
    await expect(s.handoff({ to: 'car' })).rejects.toThrow(ScopeAccessError)
    await expect(s.handoff({ to: car.deviceId })).rejects.toThrow(/does not hold|holds scope 'health'/)
    // To the glasses (which hold health) it works — and the car still sees nothing.
    glasses.sessions.on('handoff', (e) => void e.accept())
    const offer = await s.handoff({ to: 'glasses' })
    await converge([phone, glasses, car], net)
    expect(await offer.settled()).toMatchObject({ status: 'accepted' })
    expect(carOffers).toEqual([])
    expect(car.sessions.get(s.id)).toBeUndefined()
    expect(car.sessions.pendingHandoffs()).toEqual([])
    expect(() => car.sessions.list({ scope: 'health' })).toThrow(ScopeAccessError)
  })

  it('validates handoff arguments', async () => {
    const [phone] = (await devices('phone')) as [ContextSync]
    const s = phone.sessions.start()
    await expect(s.handoff({ to: 'toaster' })).rejects.toThrow(/to must be a device id or one of 'phone'/)
    await expect(s.handoff({ to: phone.deviceId })).rejects.toThrow(/cannot be handed off to the device it is on/)
    await expect(s.handoff({ to: 'car' })).rejects.toThrow(/no other car device/)
    await expect(s.handoff({ to: 'f'.repeat(32) })).rejects.toThrow(/no device 'f+' in this account/)
    await expect(s.handoff({ to: 'car', expiresIn: 0 })).rejects.toThrow(/expiresIn must be a number between 1/)
    await expect(s.handoff({ to: 'car', payload: 'x'.repeat(20_000) })).rejects.toThrow(/payload is .* bytes as JSON; the limit is 16384/)
    // The limit is in UTF-8 bytes: 6 000 CJK characters are 18 002 bytes as JSON.
    await expect(s.handoff({ to: 'car', payload: '漢'.repeat(6_000) })).rejects.toThrow(/payload is 18002 bytes as JSON; the limit is 16384/)
    await expect(s.handoff({ to: 'car', payload: { f: 1n } as never })).rejects.toThrow(ValidationError)
  })

  it('delivers offers that arrived before anyone listened, once', async () => {
    const [glasses, car] = (await devices('glasses', 'car')) as [ContextSync, ContextSync]
    const s = glasses.sessions.start({ title: 'Later' })
    await converge([glasses, car], net)
    await s.handoff({ to: 'car', expiresIn: 60_000 })
    await converge([glasses, car], net)
    const got: string[] = []
    car.sessions.on('handoff', (e) => got.push(e.sessionId))
    car.sessions.on('handoff', () => got.push('second listener'))
    await sleep(0)
    expect(got).toEqual([s.id, 'second listener'])
    car.sessions.on('handoff', () => got.push('late'))
    await sleep(0)
    expect(got).toHaveLength(2)
  })
})

describe('lease renewal', () => {
  it('extends the holder’s lease by the length it was granted, without compounding', async () => {
    const [phone] = await devices('phone')
    const s = phone!.sessions.start({ title: 'Long chat' })
    await s.claim({ leaseMs: 60_000 })
    const realNow = Date.now
    let now = realNow()
    Date.now = () => now
    try {
      // Forty writes, one every 40 s: renewed whenever less than half of the minute is left.
      for (let i = 0; i < 40; i++) {
        now += 40_000
        await s.append({ role: 'user', text: `message ${i}` })
        const lease = s.get().lease!
        expect(lease.active).toBe(true)
        expect(lease.deviceId).toBe(phone!.deviceId)
        expect(lease.expiresAt - now).toBeLessThanOrEqual(60_000)
      }
      // Silence for just over one lease length: nobody holds the conversation any more.
      now += 60_001
      expect(s.get().lease!.active).toBe(false)
    } finally {
      Date.now = realNow
    }
  })
})
