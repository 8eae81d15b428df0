/**
 * The head unit (`contextsync/car`) against a real relay on 127.0.0.1: restricted scopes, driver
 * profiles, a guest, a rental, the driving context and the outbox.
 */
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ValidationError } from '../../src/index.js'
import { CloseCode } from '../../src/relay/index.js'
import { filesUnder, memberDevice, ownerDevice, relayOn, teardown, tempDir, testCar, waitUntil } from '../helpers/car.js'
import { rawClient, roomUrl } from '../relay/helpers.js'

afterEach(teardown)

describe('scopes on a head unit', () => {
  it('a car invited with health is refused it by the owner; granted it anyway, the car refuses it and says why', async () => {
    const relay = await relayOn()
    const { dev: phone } = await ownerDevice(relay.url)
    await expect(phone.devices.invite({ kind: 'car', scopes: ['personal', 'location', 'health'] })).rejects.toThrow(/a car cannot be invited to health/)

    // The owner widens health to cars: the head unit still refuses it.
    await phone.scopes.define('health', { kinds: ['phone', 'glasses', 'car'] })
    const car = await testCar({ dataDir: tempDir(), relayUrl: relay.url })
    const refused: Array<{ scope: string; reason: string }> = []
    car.on('scope-refused', (e) => refused.push(e))
    const invite = await phone.devices.invite({ kind: 'car', scopes: ['personal', 'location', 'health'] })
    await car.profiles.join({ id: 'alice', invite: invite.code })
    expect(car.device.scopes.available().sort()).toEqual(['local', 'location', 'personal'])
    expect(car.refusedScopes()).toEqual([{ scope: 'health', reason: expect.stringMatching(/health data does not belong on a head unit/) }])
    await waitUntil(() => refused.length > 0, 5000, 'scope-refused')
    expect(refused[0]).toMatchObject({ scope: 'health', reason: expect.stringMatching(/allowScopes/) })
    const secret = await phone.memory.remember({ text: 'HEALTH-ON-PHONE-ONLY', scope: 'health' })
    const shared = await phone.memory.remember({ text: 'seat position 4' })
    await waitUntil(() => car.device.memory.get(shared.id) !== undefined, 10_000, 'personal on the car')
    expect(() => car.device.memory.get(secret.id)).not.toThrow()
    expect(car.device.memory.get(secret.id)).toBeUndefined()
    await car.device.flush()
    expect(filesUnder(car.dataDir).some((f) => f.bytes.includes('HEALTH-ON-PHONE-ONLY'))).toBe(false)
    // Nothing of the health room was ever stored or subscribed to.
    expect(car.device.replica('health')).toBeUndefined()
  }, 40_000)

  it('the owner allows health explicitly: the car holds it', async () => {
    const relay = await relayOn()
    const { dev: phone } = await ownerDevice(relay.url)
    await phone.scopes.define('health', { kinds: ['phone', 'glasses', 'car'] })
    const car = await testCar({ dataDir: tempDir(), relayUrl: relay.url, allowScopes: ['health'] })
    const invite = await phone.devices.invite({ kind: 'car', scopes: ['personal', 'location', 'health'] })
    await car.profiles.join({ id: 'alice', invite: invite.code })
    expect(car.device.scopes.available()).toContain('health')
    expect(car.refusedScopes()).toEqual([])
  }, 40_000)
})

describe('driver profiles', () => {
  it('two accounts on one head unit never see each other; removing one leaves no trace in dataDir', async () => {
    const relay = await relayOn()
    const { dev: alicePhone } = await ownerDevice(relay.url)
    const { dev: bobPhone } = await ownerDevice(relay.url)
    const dataDir = tempDir()
    const car = await testCar({ dataDir, relayUrl: relay.url })
    const aliceDev = await car.profiles.join({ id: 'alice', name: 'Alice', invite: (await alicePhone.devices.invite({ kind: 'car' })).code })
    const aliceDeviceId = aliceDev.deviceId
    const aliceNote = await alicePhone.memory.remember({ text: 'ALICE-MARKER-seat-2', scope: 'personal' })
    await waitUntil(() => car.device.memory.get(aliceNote.id) !== undefined, 10_000, 'alice note on the car')
    const fromCar = await car.device.memory.remember({ text: 'ALICE-MARKER-from-car' })
    await waitUntil(() => alicePhone.memory.get(fromCar.id) !== undefined, 10_000, 'car note on alice phone')

    const bobDev = await car.profiles.join({ id: 'bob', name: 'Bob', invite: (await bobPhone.devices.invite({ kind: 'car' })).code })
    expect(car.activeProfile).toBe('bob')
    expect(bobDev.accountId).not.toBe(alicePhone.accountId)
    expect(bobDev.deviceId).not.toBe(aliceDeviceId)
    const bobNote = await bobPhone.memory.remember({ text: 'BOB-MARKER-mirrors' })
    await waitUntil(() => car.device.memory.get(bobNote.id) !== undefined, 10_000, 'bob note on the car')
    expect(car.device.memory.get(aliceNote.id)).toBeUndefined()
    expect(car.device.memory.list().some((m) => m.text.includes('ALICE'))).toBe(false)
    expect(bobPhone.memory.list().some((m) => m.text.includes('ALICE'))).toBe(false)
    expect(car.profiles.list().map((p) => [p.id, p.active])).toEqual([
      ['alice', false],
      ['bob', true],
    ])
    // Separate stores, each its own keys.
    const alicePath = join(dataDir, 'profiles', 'alice', 'contextsync.db')
    expect(existsSync(alicePath)).toBe(true)
    expect(existsSync(join(dataDir, 'profiles', 'bob', 'contextsync.db'))).toBe(true)

    await car.profiles.switch('alice')
    expect(car.device.memory.get(aliceNote.id)?.text).toBe('ALICE-MARKER-seat-2')
    expect(car.device.memory.get(bobNote.id)).toBeUndefined()
    await car.profiles.switch('bob')

    await car.profiles.remove('alice')
    expect(car.profiles.list().map((p) => p.id)).toEqual(['bob'])
    expect(existsSync(join(dataDir, 'profiles', 'alice'))).toBe(false)
    for (const file of filesUnder(dataDir)) {
      for (const marker of ['alice', 'Alice', aliceDeviceId, alicePhone.accountId]) {
        expect(file.bytes.includes(marker), `${file.path} holds ${marker}`).toBe(false)
      }
    }
    // Bob carries on.
    expect(car.device.memory.get(bobNote.id)?.text).toBe('BOB-MARKER-mirrors')
    await expect(car.profiles.switch('alice')).rejects.toBeInstanceOf(ValidationError)
  }, 60_000)

  it('a guest profile holds nothing once the drive ends, nor after a power cut mid-drive', async () => {
    const relay = await relayOn()
    const { dev: guestPhone } = await ownerDevice(relay.url)
    const dataDir = tempDir()
    let car = await testCar({ dataDir, relayUrl: relay.url })
    await car.profiles.join({ id: 'guest', invite: (await guestPhone.devices.invite({ kind: 'car' })).code, guest: true })
    await car.device.memory.remember({ text: 'GUEST-MARKER' })
    await car.device.flush()
    expect(filesUnder(dataDir).length).toBeGreaterThan(1)
    await car.endDrive()
    expect(car.profiles.list()).toEqual([])
    expect(existsSync(join(dataDir, 'profiles', 'guest'))).toBe(false)

    // Again, and this time the process "dies" (the car is never closed): the next start removes it.
    await car.profiles.join({ id: 'guest', invite: (await guestPhone.devices.invite({ kind: 'car' })).code, guest: true })
    await car.device.memory.remember({ text: 'GUEST-MARKER-2' })
    await car.device.flush()
    const again = await testCar({ dataDir, relayUrl: relay.url })
    expect(again.profiles.list()).toEqual([])
    expect(existsSync(join(dataDir, 'profiles', 'guest'))).toBe(false)
    car = again
  }, 60_000)
})

describe('a rental (invite until)', () => {
  it('reads location before until; after it the relay refuses it, and the profile and its data are gone', async () => {
    const relay = await relayOn()
    const { dev: phone } = await ownerDevice(relay.url)
    const dataDir = tempDir()
    const car = await testCar({ dataDir, relayUrl: relay.url })
    const ended: Array<{ profile: string; until: number }> = []
    car.on('access-ended', (e) => ended.push(e))
    const T = Date.now() + 4_000
    await car.profiles.join({ id: 'rental', invite: (await phone.devices.invite({ kind: 'car', until: T })).code })
    const before = await phone.memory.remember({ text: 'RENTAL-parking P3', scope: 'location' })
    await waitUntil(() => car.device.memory.get(before.id) !== undefined, 10_000, 'location on the car')
    const room = car.device.roomId('location')
    const token = car.device.accessToken(room, { lifetimeSeconds: 600 })

    await waitUntil(() => ended.length === 1, 15_000, 'access-ended')
    expect(ended).toEqual([{ profile: 'rental', until: T }])
    expect(car.profiles.list()).toEqual([])
    expect(existsSync(join(dataDir, 'profiles', 'rental'))).toBe(false)
    expect(filesUnder(dataDir).some((f) => f.bytes.includes('RENTAL'))).toBe(false)
    // A token minted before the end, for ten minutes: refused.
    const client = rawClient(roomUrl(relay, room, token))
    expect((await client.closed).code).toBe(CloseCode.Forbidden)
    // The phone rotated location without it.
    await waitUntil(() => phone.devices.list().some((d) => d.until === T && d.scopes.length === 0), 5000, 'phone sees it ended')
  }, 60_000)

  it('a rental switched away from before until is refused on its next switch after it, and removed', async () => {
    const relay = await relayOn()
    const { dev: owner } = await ownerDevice(relay.url)
    const { dev: other } = await ownerDevice(relay.url)
    const dataDir = tempDir()
    const car = await testCar({ dataDir, relayUrl: relay.url })
    const T = Date.now() + 3_000
    await car.profiles.join({ id: 'rental', invite: (await owner.devices.invite({ kind: 'car', until: T })).code })
    await car.device.memory.remember({ text: 'RENTAL2-note' })
    await car.profiles.join({ id: 'home', invite: (await other.devices.invite({ kind: 'car' })).code })
    await expect(car.profiles.join({ id: 'home', invite: 'AAAA-AAAA-AAAA-AAAA' })).rejects.toBeInstanceOf(ValidationError)
    expect(car.activeProfile).toBe('home')
    await waitUntil(() => Date.now() > T + 50, 10_000, 'until')
    const ended: string[] = []
    car.on('access-ended', (e) => ended.push(e.profile))
    await expect(car.profiles.switch('rental')).rejects.toMatchObject({ code: 'access-ended', until: T })
    expect(ended).toEqual(['rental'])
    expect(car.profiles.list().map((p) => p.id)).toEqual(['home'])
    expect(existsSync(join(dataDir, 'profiles', 'rental'))).toBe(false)
    expect(filesUnder(dataDir).some((f) => f.bytes.includes('RENTAL2'))).toBe(false)
  }, 60_000)
})

describe('driving', () => {
  it('glasses start a session; the driving car takes the handoff by itself; the phone and the PC show the car as active', async () => {
    const relay = await relayOn()
    const { dev: phone } = await ownerDevice(relay.url)
    const glasses = await memberDevice(phone, relay.url, 'glasses')
    const pc = await memberDevice(phone, relay.url, 'pc')
    const car = await testCar({ dataDir: tempDir(), relayUrl: relay.url, driving: { glanceChars: 24 } })
    await car.profiles.join({ id: 'alice', invite: (await phone.devices.invite({ kind: 'car' })).code })

    const session = glasses.sessions.start({ title: 'Ride home' })
    await session.append({ role: 'user', text: 'Find me a quiet route home that avoids the ring road please' })
    await session.claim()
    await waitUntil(() => car.device.sessions.get(session.id) !== undefined, 10_000, 'session on the car')

    // Parked: an offer waits for a tap.
    const parkedOffer = await session.handoff({ to: 'car', expiresIn: 30_000 })
    await waitUntil(() => car.device.sessions.pendingHandoffs().length === 1, 10_000, 'offer on the car')
    await new Promise((r) => setTimeout(r, 300))
    expect(parkedOffer.status()).toBe('pending')

    car.setDriving(true)
    await waitUntil(() => parkedOffer.status() === 'accepted', 10_000, 'accepted while driving')
    await waitUntil(() => phone.sessions.get(session.id)?.activeDevice === car.device.deviceId, 10_000, 'phone shows the car active')
    await waitUntil(() => pc.sessions.get(session.id)?.activeDevice === car.device.deviceId, 10_000, 'pc shows the car active')
    await waitUntil(() => phone.presence.get(car.device.deviceId)?.activity === 'driving', 10_000, 'phone sees driving')
    expect(pc.presence.get(car.device.deviceId)).toMatchObject({ activity: 'driving' })

    // The glance: the latest turn, cut to 24 characters.
    expect(car.glance()).toMatchObject({ sessionId: session.id, role: 'user', text: 'Find me a quiet route…', truncated: true })
    expect(car.glance(500)?.text).toBe('Find me a quiet route home that avoids the ring road please')
  }, 60_000)

  it('a handoff from a kind outside autoAcceptFrom waits even while driving', async () => {
    const relay = await relayOn()
    const { dev: phone } = await ownerDevice(relay.url)
    const pc = await memberDevice(phone, relay.url, 'pc')
    const car = await testCar({ dataDir: tempDir(), relayUrl: relay.url })
    await car.profiles.join({ id: 'alice', invite: (await phone.devices.invite({ kind: 'car' })).code })
    car.setDriving(true)
    const session = pc.sessions.start({ title: 'From the desk' })
    await session.claim()
    const offer = await session.handoff({ to: 'car', expiresIn: 30_000 })
    await waitUntil(() => car.device.sessions.pendingHandoffs().length === 1, 10_000, 'offer on the car')
    await new Promise((r) => setTimeout(r, 400))
    expect(offer.status()).toBe('pending')
  }, 60_000)
})

describe('intermittent network', () => {
  it('offline writes show in pending() per scope; back online the outbox empties, synced fires and the phone has them', async () => {
    const relay = await relayOn()
    const { dev: phone } = await ownerDevice(relay.url)
    const car = await testCar({ dataDir: tempDir(), relayUrl: relay.url })
    await car.profiles.join({ id: 'alice', invite: (await phone.devices.invite({ kind: 'car' })).code })
    await waitUntil(() => car.pending().count === 0, 5000, 'empty outbox')
    const synced: string[][] = []
    car.on('synced', (e) => synced.push(e.scopes))

    car.setNetwork({ online: false })
    const a = await car.device.memory.remember({ text: 'in the tunnel' })
    const b = await car.device.memory.remember({ text: 'exit 12 ahead', scope: 'location' })
    const pending = car.pending()
    expect(pending.count).toBe(2)
    expect(pending.scopes.personal?.count).toBe(1)
    expect(pending.scopes.location?.count).toBe(1)
    expect(pending.bytes).toBeGreaterThan(100)
    await new Promise((r) => setTimeout(r, 500))
    expect(phone.memory.get(a.id)).toBeUndefined()

    car.setNetwork({ online: true })
    await waitUntil(() => synced.length > 0, 5000, 'synced')
    expect(car.pending()).toEqual({ count: 0, bytes: 0, scopes: {} })
    await waitUntil(() => phone.memory.get(a.id) !== undefined && phone.memory.get(b.id) !== undefined, 5000, 'writes on the phone')
  }, 60_000)
})
