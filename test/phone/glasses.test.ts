/**
 * The phone as hub (`contextsync/phone`) and the glasses (`contextsync/glasses`) against a real
 * relay on 127.0.0.1, the link over a `MessageChannel` at MTU 185: glasses sync through the phone,
 * and with the phone alone while it is offline; the phone admits only rooms the glasses' relay
 * pass covers; the glasses never get a payments envelope; the Wi-Fi fallback carries each room
 * on one path only; the power profile lengthens the windows on battery and runs the deferred
 * compaction on the charger.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { linkTransport } from '../../src/adapters/link.js'
import { portChannel } from '../../src/adapters/link-port.js'
import type { LinkError } from '../../src/adapters/link-errors.js'
import { CloseCode } from '../../src/wire/close-codes.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import { linkUp, relayOn, teardown, testGlasses, testPc, testPhone, waitUntil } from '../helpers/phone.js'

afterEach(teardown)

describe('glasses through the phone', () => {
  it('sync through the phone while it is online, with the phone alone while it is offline, and the PC converges on reconnect', async () => {
    const relay = await relayOn()
    const phone = await testPhone(relay.url)
    const glasses = await testGlasses(phone, relay.url)
    const pc = await testPc(phone, relay.url)
    glasses.setNetwork({ wifi: false })
    linkUp(phone, glasses)
    expect(glasses.path).toBe('link')

    const fromGlasses = await glasses.device.memory.remember({ text: 'parked on level 3' })
    await waitUntil(() => pc.memory.get(fromGlasses.id) !== undefined, 15_000, 'glasses memory on the PC')
    const fromPc = await pc.memory.remember({ text: 'dentist on friday' })
    await waitUntil(() => glasses.device.memory.get(fromPc.id) !== undefined, 15_000, 'PC memory on the glasses')

    phone.setNetwork({ online: false })
    const offline = await glasses.device.memory.remember({ text: 'written while the phone was offline' })
    await waitUntil(() => phone.device.memory.get(offline.id) !== undefined, 10_000, 'glasses memory on the offline phone')
    const fromPhone = await phone.device.memory.remember({ text: 'phone note while offline' })
    await waitUntil(() => glasses.device.memory.get(fromPhone.id) !== undefined, 10_000, 'offline phone memory on the glasses')
    await new Promise((r) => setTimeout(r, 500))
    expect(pc.memory.get(offline.id)).toBeUndefined()

    phone.setNetwork({ online: true })
    await waitUntil(() => pc.memory.get(offline.id) !== undefined && pc.memory.get(fromPhone.id) !== undefined, 15_000, 'the PC converging')
  }, 60_000)

  it('the phone refuses a link peer a room outside its relay pass (health for glasses without it) with 4403', async () => {
    const relay = await relayOn()
    const phone = await testPhone(relay.url)
    await phone.device.scopes.define('health', { kinds: ['phone'] })
    const glasses = await testGlasses(phone, relay.url)
    const healthRoom = phone.device.roomId('health')
    const personalRoom = phone.device.roomId('personal')

    // A link peer with the glasses' own keys asks the phone for health and personal.
    const peer = linkTransport({ keepaliveMs: 0 })
    const errors: LinkError[] = []
    peer.on('error', ({ error }) => errors.push(error))
    const { port1, port2 } = new MessageChannel()
    phone.serveLink(portChannel(port1, { mtu: 185 }))
    peer.connect(portChannel(port2, { mtu: 185 }))
    const token = (roomId: string) => () => glasses.device.accessToken(roomId, { audience: 'link' })
    const { Doc } = await import('yjs')
    const { Awareness } = await import('y-protocols/awareness')
    const healthDoc = new Doc()
    const health = peer.attach({ roomId: healthRoom, doc: healthDoc, awareness: new Awareness(healthDoc), token: token(healthRoom) })
    const personalDoc = new Doc()
    const personal = peer.attach({ roomId: personalRoom, doc: personalDoc, awareness: new Awareness(personalDoc), token: token(personalRoom) })
    await phone.device.memory.remember({ text: 'HEALTH-PHONE-ONLY', scope: 'health' })
    await phone.device.memory.remember({ text: 'personal note' })
    await waitUntil(() => errors.some((e) => e.reason === 'refused'), 10_000, 'the refusal')
    await waitUntil(() => personal.status === 'synced', 10_000, 'personal admitted')
    const refusal = errors.find((e) => e.reason === 'refused')!
    expect(refusal.closeCode).toBe(CloseCode.Forbidden)
    expect(health.status).toBe('disconnected')
    expect(sealedLog(healthDoc).length).toBe(0)
    expect(sealedLog(personalDoc).length).toBeGreaterThan(0)
    peer.close()
  }, 60_000)

  it('the glasses never receive a payments envelope, and refuse health unless allowed, saying why', async () => {
    const relay = await relayOn()
    const phone = await testPhone(relay.url)
    const glasses = await testGlasses(phone, relay.url)
    glasses.setNetwork({ wifi: false })
    linkUp(phone, glasses)
    const paymentsRoom = phone.device.roomId('payments')
    const payment = await phone.device.memory.remember({ text: 'PAYMENTS-CARD-ENDING-4242', scope: 'payments' })
    const note = await phone.device.memory.remember({ text: 'likes window seats' })
    await waitUntil(() => glasses.device.memory.get(note.id) !== undefined, 15_000, 'personal on the glasses')
    expect(glasses.device.memory.get(payment.id)).toBeUndefined()
    expect(glasses.device.replica('payments')).toBeUndefined()
    expect(glasses.pathOf(paymentsRoom)).toBeUndefined()
    // The glasses' policy gives them health; they refuse it and say why.
    expect(glasses.device.scopes.available().sort()).toEqual(['local', 'location', 'personal'])
    expect(glasses.refusedScopes()).toEqual([{ scope: 'health', reason: expect.stringMatching(/health data does not belong on glasses/) }])
  }, 60_000)
})

describe('pairing through the phone', () => {
  it('phone.invite with confirmSas admits the glasses once both screens show the same digits', async () => {
    const relay = await relayOn()
    const phone = await testPhone(relay.url)
    let phoneSas = ''
    let glassesSas = ''
    const invite = await phone.invite({ kind: 'glasses', confirmSas: (sas) => ((phoneSas = sas), true) })
    const glasses = await testGlasses(phone, relay.url, { invite: invite.code, confirmSas: (sas) => ((glassesSas = sas), true) })
    expect(phoneSas).toMatch(/^\d{3} \d{3}$/)
    expect(glassesSas).toBe(phoneSas)
    expect((await invite.result()).deviceId).toBe(glasses.device.deviceId)
  }, 60_000)
})

describe('the Wi-Fi fallback', () => {
  it('carries each room on one path at a time: nothing written while the link was up goes to the relay directly, and nothing sent directly crosses the link again', async () => {
    const relay = await relayOn()
    const phone = await testPhone(relay.url)
    const sent: Uint8Array[] = []
    const { NodeWebSocket } = await import('../relay/helpers.js')
    // Count every frame the glasses send to the relay themselves.
    class CountingSocket extends (NodeWebSocket as unknown as new (url: string, protocols?: string | string[]) => WebSocket) {
      override send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
        if (data instanceof Uint8Array) sent.push(new Uint8Array(data))
        else if (data instanceof ArrayBuffer) sent.push(new Uint8Array(data))
        super.send(data)
      }
    }
    const glasses = await testGlasses(phone, relay.url, { WebSocket: CountingSocket as unknown as typeof WebSocket })
    const pc = await testPc(phone, relay.url)
    const first = linkUp(phone, glasses)
    await waitUntil(() => glasses.path === 'link', 5_000, 'link path')
    sent.length = 0
    const viaLink = await glasses.device.memory.remember({ text: `via link ${'L'.repeat(2_000)}` })
    await waitUntil(() => pc.memory.get(viaLink.id) !== undefined, 15_000, 'link write on the PC')
    const roomId = glasses.device.roomId('personal')
    const envelopes = () => sealedLog(glasses.device.replica('personal')!.outer).toArray()
    const linkEnvelope = envelopes().at(-1)!
    expect(sent.some((frame) => contains(frame, linkEnvelope))).toBe(false)

    // The link drops; Wi-Fi is up: the relay socket takes over.
    first.drop()
    await waitUntil(() => glasses.pathOf(roomId) === 'direct', 5_000, 'direct path')
    const direct = await glasses.device.memory.remember({ text: `via wifi ${'W'.repeat(8_000)}` })
    await waitUntil(() => pc.memory.get(direct.id) !== undefined && phone.device.memory.get(direct.id) !== undefined, 15_000, 'direct write on the PC and phone')
    const directEnvelope = envelopes().at(-1)!
    expect(sent.filter((frame) => contains(frame, directEnvelope)).length).toBe(1)
    expect(sent.some((frame) => contains(frame, linkEnvelope))).toBe(false)

    // The link is back: rooms leave the relay socket first, and the link carries only what the phone lacks.
    const second = linkUp(phone, glasses)
    await waitUntil(() => glasses.pathOf(roomId) === 'link', 5_000, 'link path again')
    const framesBefore = sent.length
    const back = await glasses.device.memory.remember({ text: 'after the link came back' })
    await waitUntil(() => pc.memory.get(back.id) !== undefined, 15_000, 'write after reconnect on the PC')
    expect(sent.length).toBe(framesBefore)
    const stats = phone.links.at(-1)!.stats
    expect(stats.bytesReceived).toBeLessThan(directEnvelope.length)
    second.drop()
  }, 60_000)
})

describe('the power profile', () => {
  it('on battery the link sends fewer bursts for the same writes; on the charger they are prompt', async () => {
    const relay = await relayOn()
    const phone = await testPhone(relay.url)
    const glasses = await testGlasses(phone, relay.url)
    glasses.setNetwork({ wifi: false })
    linkUp(phone, glasses)
    await new Promise((r) => setTimeout(r, 500))
    const bursts = (): number => glasses.links.at(-1)!.stats.bursts
    const burstsFor = async (label: string): Promise<number> => {
      const before = bursts()
      const writes: Array<Promise<{ id: string }>> = []
      for (let i = 0; i < 8; i++) {
        writes.push(glasses.device.memory.remember({ text: `${label} ${i}` }))
        await new Promise((r) => setTimeout(r, 150))
      }
      const ids = (await Promise.all(writes)).map((m) => m.id)
      await waitUntil(() => ids.every((id) => phone.device.memory.get(id) !== undefined), 20_000, `${label} writes on the phone`)
      return bursts() - before
    }
    const charging = await burstsFor('charging')
    expect(glasses.setPowerState({ charging: false, batteryLevel: 0.8, screenOn: false }).radioWindowMs).toBeGreaterThan(1_000)
    const battery = await burstsFor('battery')
    console.log(`link bursts for 8 writes 150 ms apart: charging ${charging}, battery ${battery}`)
    expect(charging).toBeGreaterThanOrEqual(8)
    expect(battery).toBeLessThan(charging / 2)
  }, 60_000)

  it('defers compaction and recall indexing on battery, and runs them on the charger', async () => {
    const relay = await relayOn()
    const phone = await testPhone(relay.url)
    const glasses = await testGlasses(phone, relay.url, {
      power: { charging: false, batteryLevel: 0.5, screenOn: false },
      sync: { compaction: { maxEntries: 8, idleMs: 0 } },
    })
    const log = () => sealedLog(glasses.device.replica('personal')!.outer).length
    glasses.setPowerState({ charging: false, batteryLevel: 0.5, screenOn: false })
    // Seal each write at once (the test needs one envelope per write), compaction still deferred.
    glasses.device.tune({ flushDelayMs: 0 })
    for (let i = 0; i < 12; i++) await glasses.device.memory.remember({ text: `battery note ${i}` })
    await glasses.device.flush()
    await new Promise((r) => setTimeout(r, 300))
    expect(log()).toBeGreaterThan(8)
    expect(glasses.device.memory.indexBacklog).toBeGreaterThan(0)
    glasses.setPowerState({ charging: true, batteryLevel: 0.5, screenOn: false })
    await waitUntil(() => log() <= 8, 10_000, 'the deferred compaction')
    await waitUntil(() => glasses.device.memory.indexBacklog === 0, 10_000, 'the deferred indexing')
    expect(glasses.device.memory.recall({ text: 'battery note 7' }).length).toBeGreaterThan(0)
  }, 60_000)
})

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer
    return true
  }
  return false
}
