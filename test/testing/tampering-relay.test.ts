/**
 * The tampering relay of `contextsync/testing`: every operation shown once with stock y-websocket
 * `WebsocketProvider` clients (which apply whatever the relay sends, so each operation's raw
 * effect is visible) and once with `ContextSync` devices over `websocketTransport` (what a real
 * device does with it: refuses forgeries with their codes, keeps what it holds, keeps syncing).
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { createAccount, RejectCode, type ContextSync } from '../../src/index.js'
import { EnvelopeType, ownerKeyring, ready, sealEnvelope } from '../../src/crypto/index.js'
import { createTamperingRelay, deviceIdOfToken, type TamperingRelay } from '../../src/testing/tampering-relay.js'
import { deleteEntries, injectEntries, listEntries, TamperError, TamperOrigin } from '../../src/testing/sealed-log-tamper.js'
import { converge } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'
import { fakeEnvelope, makeAccount, NodeWebSocket, type TestAccount } from '../relay/helpers.js'
import { IntegrityFixture, envelopeWith, rejectionsOf, sleep, until } from '../helpers/integrity.js'

beforeAll(async () => {
  await ready()
})

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function relay(): Promise<TamperingRelay> {
  const r = await createTamperingRelay()
  cleanups.push(() => r.close())
  return r
}

/** A stock y-websocket client of one room. */
function stockClient(url: string, roomId: string, token?: string) {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, roomId, doc, {
    WebSocketPolyfill: NodeWebSocket,
    disableBc: true,
    maxBackoffTime: 200,
    ...(token !== undefined && { params: { token } }),
  })
  cleanups.push(() => {
    provider.destroy()
    doc.destroy()
  })
  const log = doc.getArray<Uint8Array>('log')
  return { doc, provider, log, seqs: () => listEntries(doc).map((e) => e.header?.seq ?? 0) }
}

/** A real envelope of the test account's device, `seq` in its header. */
function envelope(who: TestAccount, roomId: string, seq: number): Uint8Array {
  return sealEnvelope({
    roomId,
    type: EnvelopeType.Update,
    epoch: 0,
    seq,
    sender: who.device.deviceIdBytes,
    signSecretKey: who.device.signSecretKey,
    key: ownerKeyring(who.account).epochKey('personal', 0)!,
    plaintext: new TextEncoder().encode(`update ${seq}`),
  })
}

/** Push envelopes one transaction each (one sync update per envelope, as devices do). */
function push(log: Y.Array<Uint8Array>, who: TestAccount, roomId: string, seqs: number[]): void {
  for (const seq of seqs) log.push([envelope(who, roomId, seq)])
}

async function stockPair(r: TamperingRelay) {
  const alice = makeAccount()
  const roomId = alice.roomId()
  const a = stockClient(r.url, roomId, alice.token(roomId))
  const b = stockClient(r.url, roomId)
  await until(() => a.provider.synced && b.provider.synced, 5_000, 'stock clients synced')
  return { alice, roomId, a, b }
}

describe('tampering relay with stock y-websocket clients', () => {
  it('lists entries with parsed headers, captures every envelope, and names connections by the device id in their token', async () => {
    const r = await relay()
    const { alice, roomId, a, b } = await stockPair(r)
    push(a.log, alice, roomId, [1, 2, 3])
    await until(() => b.log.length === 3, 5_000, 'entries at b')
    const room = r.room(roomId)
    expect(room.entries().map((e) => [e.index, e.header?.senderId, e.header?.seq])).toEqual([
      [0, alice.device.deviceId, 1],
      [1, alice.device.deviceId, 2],
      [2, alice.device.deviceId, 3],
    ])
    expect(room.captured().map((e) => [e.from, e.header?.seq])).toEqual([
      [alice.device.deviceId, 1],
      [alice.device.deviceId, 2],
      [alice.device.deviceId, 3],
    ])
    expect(room.connections().map((c) => c.deviceId)).toEqual([alice.device.deviceId, undefined])
    expect(r.connections().length).toBe(2)
    expect(deviceIdOfToken(alice.token(roomId))).toBe(alice.device.deviceId)
    expect(deviceIdOfToken('not a token')).toBeUndefined()
    expect(r.rooms()).toEqual([roomId])
  })

  it('deletes by predicate and range, injects at an index, truncates, replays and reorders — every client sees it', async () => {
    const r = await relay()
    const { alice, roomId, a, b } = await stockPair(r)
    push(a.log, alice, roomId, [1, 2, 3, 4, 5])
    await until(() => b.log.length === 5, 5_000, 'entries at b')
    const room = r.room(roomId)
    const same = (seqs: number[]) => until(() => JSON.stringify(a.seqs()) === JSON.stringify(seqs) && JSON.stringify(b.seqs()) === JSON.stringify(seqs), 5_000, `log ${seqs}`)

    expect(room.deleteEntries((e) => e.header?.seq === 2).map((e) => e.header?.seq)).toEqual([2])
    await same([1, 3, 4, 5])
    expect(room.deleteRange(0, 1).map((e) => e.header?.seq)).toEqual([1])
    await same([3, 4, 5])
    room.inject([fakeEnvelope('junk')], 1)
    await same([3, 0, 4, 5])
    expect(b.log.get(1)).toEqual(fakeEnvelope('junk'))
    expect(room.truncate(2).map((e) => e.header?.seq)).toEqual([4, 5])
    await same([3, 0])
    // The capture still holds what was deleted: replay it.
    const old = room.captured().filter((e) => e.header && e.header.seq <= 2)
    room.replay(old.map((e) => e.bytes))
    await same([3, 0, 1, 2])
    const before = room.entries().map((e) => e.header?.seq ?? 0)
    const order = room.reorder(42)
    expect(order.slice().sort()).toEqual([0, 1, 2, 3])
    expect(order).not.toEqual([0, 1, 2, 3])
    await same(order.map((i) => before[i]!))
    // The same seed gives the same permutation.
    const again = r.room(roomId).entries().map((e) => e.header?.seq ?? 0)
    expect(room.reorder(42)).toEqual(order)
    await same(order.map((i) => again[i]!))
    expect(() => room.deleteRange(3, 99)).toThrow(TamperError)
    expect(() => room.inject([fakeEnvelope('x')], -1)).toThrow(TamperError)
  })

  it('wipes the log and the public statement map, and moves entries into another room', async () => {
    const r = await relay()
    const { alice, roomId, a, b } = await stockPair(r)
    const otherRoom = alice.roomId('work')
    const other = stockClient(r.url, otherRoom)
    await until(() => other.provider.synced, 5_000, 'other room synced')
    push(a.log, alice, roomId, [1, 2, 3])
    const room = r.room(roomId)
    room.setPublicStatement('pass/x', new Uint8Array([1, 2, 3]))
    room.setPublicStatement('lockbox/y', new Uint8Array([4]))
    await until(() => b.log.length === 3 && b.doc.getMap('public').size === 2, 5_000, 'entries and statements at b')
    expect(room.publicStatements().map((s) => s.key).sort()).toEqual(['lockbox/y', 'pass/x'])

    expect(room.moveTo(r.room(otherRoom), (e) => e.header?.seq === 3).map((e) => e.header?.seq)).toEqual([3])
    await until(() => b.log.length === 2 && other.log.length === 1, 5_000, 'moved')
    expect(listEntries(other.doc)[0]?.header?.seq).toBe(3)

    expect(room.deletePublicStatements((s) => s.key.startsWith('lockbox/')).map((s) => s.key)).toEqual(['lockbox/y'])
    await until(() => b.doc.getMap('public').size === 1, 5_000, 'statement deleted at b')
    const wiped = room.wipe()
    expect(wiped.entries.length).toBe(2)
    expect(wiped.statements.map((s) => s.key)).toEqual(['pass/x'])
    await until(() => a.log.length === 0 && b.log.length === 0 && b.doc.getMap('public').size === 0, 5_000, 'wiped everywhere')
    // What the relay saw stays in its capture, for a replay.
    expect(room.captured().length).toBe(3)
  })

  it('withholds updates from a device, towards a device, or by envelope; release delivers, discard drops', async () => {
    const r = await relay()
    const { alice, roomId, a, b } = await stockPair(r)
    push(a.log, alice, roomId, [1])
    await until(() => b.log.length === 1, 5_000, 'first entry')

    // From a device: not applied, so nobody gets it.
    const fromA = r.withhold({ from: alice.device.deviceId })
    push(a.log, alice, roomId, [2])
    await until(() => fromA.heldCount === 1, 5_000, 'held from a')
    await sleep(200)
    expect(b.seqs()).toEqual([1])
    expect(r.room(roomId).entries().length).toBe(1)
    expect(fromA.heldEnvelopes().map((e) => e.header?.seq)).toEqual([2])
    fromA.release()
    await until(() => JSON.stringify(b.seqs()) === '[1,2]', 5_000, 'released to b')

    // Towards a device: the relay keeps it, that device does not get it.
    const toA = r.withhold({ to: alice.device.deviceId, roomId })
    push(b.log, alice, roomId, [3])
    await until(() => r.room(roomId).entries().length === 3 && toA.heldCount === 1, 5_000, 'held towards a')
    await sleep(200)
    expect(a.seqs()).toEqual([1, 2])
    toA.release()
    await until(() => JSON.stringify(a.seqs()) === '[1,2,3]', 5_000, 'released to a')

    // By envelope: only the matching update is held.
    const seq5 = r.withhold({ envelope: (e) => e.header?.seq === 5 })
    push(a.log, alice, roomId, [4, 5])
    await until(() => seq5.heldCount === 1 && b.log.length === 4, 5_000, 'seq 4 through, seq 5 held')
    expect(b.seqs()).toEqual([1, 2, 3, 4])
    // Discarded: it never reached the relay's doc; a reconnect makes the client upload it again.
    seq5.discard()
    expect(r.room(roomId).entries().length).toBe(4)
    expect(r.closeConnections({ deviceId: alice.device.deviceId })).toBe(1)
    await until(() => b.log.length === 5, 5_000, 'seq 5 after a reconnected')
  })

  it('forgets a room: connections close, clients reconnect and upload what they hold; the capture stays', async () => {
    const r = await relay()
    const { alice, roomId, a, b } = await stockPair(r)
    push(a.log, alice, roomId, [1, 2])
    await until(() => b.log.length === 2, 5_000, 'entries at b')
    const firstIds = r.connections(roomId).map((c) => c.id)
    r.forgetRoom(roomId)
    expect(r.captured(roomId).length).toBe(2)
    await until(() => r.room(roomId).entries().length === 2 && r.connections(roomId).length === 2, 5_000, 're-uploaded')
    expect(r.connections(roomId).every((c) => !firstIds.includes(c.id))).toBe(true)
    // The new room carries on like the old one.
    push(b.log, alice, roomId, [3])
    await until(() => a.log.length === 3, 5_000, 'after forgetRoom')
  })

  it('forwards awareness between clients, as y-websocket does, and drops a closed client\u2019s state', async () => {
    const r = await relay()
    const { a, b } = await stockPair(r)
    a.provider.awareness.setLocalState({ hello: 'from a' })
    await until(() => b.provider.awareness.getStates().get(a.doc.clientID)?.hello === 'from a', 5_000, 'awareness at b')
    a.provider.disconnect()
    await until(() => !b.provider.awareness.getStates().has(a.doc.clientID), 5_000, 'state removed at b')
  })
})

describe('tampering relay with ContextSync devices', () => {
  let fixture: IntegrityFixture
  afterEach(async () => {
    await fixture?.close()
  })

  async function phoneAndCar() {
    fixture = await IntegrityFixture.start()
    const account = await createAccount()
    const phone = await fixture.owner(account, 'phone', { store: 'memory' })
    const car = await fixture.member(phone.dev, 'car', { store: 'memory', scopes: ['personal', 'location'] })
    return { account, phone, car, personal: phone.dev.roomId('personal') }
  }

  it('carries devices like a y-websocket relay: pairing, sync, presence; connections carry device ids', async () => {
    const { phone, car, personal } = await phoneAndCar()
    const m = await phone.dev.memory.remember({ text: 'Prefers aisle seats' })
    await until(() => car.dev.memory.get(m.id)?.text === 'Prefers aisle seats', 10_000, 'memory on the car')
    const ids = fixture.relay.connections(personal).map((c) => c.deviceId).sort()
    expect(ids).toEqual([phone.dev.deviceId, car.dev.deviceId].sort())
    car.dev.presence.set({ activity: 'driving' })
    await until(() => phone.dev.presence.get(car.dev.deviceId)?.activity === 'driving', 10_000, 'car driving on the phone')
    expect(phone.dev.presence.get(car.dev.deviceId)?.online).toBe(true)
  })

  it('injected junk, replayed and moved envelopes are refused with their codes; devices keep what they hold and keep syncing', async () => {
    const { account, phone, car, personal } = await phoneAndCar()
    const m = await phone.dev.memory.remember({ text: 'MOVE-ME marker' })
    await until(() => car.dev.memory.get(m.id) !== undefined, 10_000, 'memory on the car')
    const room = fixture.relay.room(personal)
    // Version byte 1 but far too short for an envelope: structurally broken.
    room.inject([new Uint8Array(40).fill(1)])
    await until(() => rejectionsOf(car, RejectCode.Malformed).length > 0 && rejectionsOf(phone, RejectCode.Malformed).length > 0, 10_000, 'junk refused')

    const carried = envelopeWith(account, 'personal', room.captured(), 'MOVE-ME')
    expect(carried?.header?.senderId).toBe(phone.dev.deviceId)
    room.replay([carried!.bytes])
    await until(() => rejectionsOf(car, RejectCode.Replay).length > 0, 10_000, 'replay refused on the car')

    // Moved into another room of the account: its signature binds the room it was sealed for.
    const location = phone.dev.roomId('location')
    room.moveTo(fixture.relay.room(location), (e) => e.header?.seq === carried!.header!.seq && e.header?.senderId === phone.dev.deviceId)
    await until(() => rejectionsOf(car, RejectCode.BadSignature).some((e) => e.scope === 'location'), 10_000, 'moved envelope refused')
    expect(car.dev.memory.get(m.id)?.text).toBe('MOVE-ME marker')
    expect(phone.dev.memory.get(m.id)?.text).toBe('MOVE-ME marker')

    const later = await car.dev.memory.remember({ text: 'still syncing' })
    await until(() => phone.dev.memory.get(later.id) !== undefined, 10_000, 'later write on the phone')
  })

  it('withholds a device\u2019s writes, or what is sent to it, until released', async () => {
    const { phone, car, personal } = await phoneAndCar()
    const fromCar = fixture.relay.withhold({ from: car.dev.deviceId, roomId: personal })
    const hidden = await car.dev.memory.remember({ text: 'held at the relay' })
    await until(() => fromCar.heldEnvelopes().some((e) => e.header?.senderId === car.dev.deviceId), 10_000, 'car envelope held')
    await sleep(200)
    expect(phone.dev.memory.get(hidden.id)).toBeUndefined()
    fromCar.release()
    await until(() => phone.dev.memory.get(hidden.id) !== undefined, 10_000, 'released to the phone')

    const toCar = fixture.relay.withhold({ to: car.dev.deviceId, roomId: personal })
    const kept = await phone.dev.memory.remember({ text: 'kept from the car' })
    await until(() => toCar.heldCount > 0, 10_000, 'frames towards the car held')
    await sleep(200)
    expect(car.dev.memory.get(kept.id)).toBeUndefined()
    toCar.release()
    await until(() => car.dev.memory.get(kept.id) !== undefined, 10_000, 'released to the car')
  })

  it('reorder, wipe and forgetRoom on the relay: running devices keep what they hold; after forgetRoom they re-upload', async () => {
    const { phone, car, personal } = await phoneAndCar()
    const items = [await phone.dev.memory.remember({ text: 'one' }), await car.dev.memory.remember({ text: 'two' })]
    await until(() => items.every((i) => phone.dev.memory.get(i.id) && car.dev.memory.get(i.id)), 10_000, 'both on both')
    const room = fixture.relay.room(personal)
    room.reorder(7)
    room.wipe()
    expect(room.entries()).toEqual([])
    for (const i of items) {
      expect(phone.dev.memory.get(i.id)?.text).toBe(i.text)
      expect(car.dev.memory.get(i.id)?.text).toBe(i.text)
    }
    const third = await car.dev.memory.remember({ text: 'three' })
    await until(() => phone.dev.memory.get(third.id) !== undefined, 10_000, 'write after the wipe')

    const registry = `${phone.dev.accountId}.registry`
    const before = fixture.relay.room(registry).entries().length
    expect(before).toBeGreaterThan(0)
    fixture.relay.forgetRoom(registry)
    await until(() => fixture.relay.room(registry).entries().length >= before, 10_000, 'registry re-uploaded after forgetRoom')
    const fourth = await phone.dev.memory.remember({ text: 'four' })
    await until(() => car.dev.memory.get(fourth.id) !== undefined, 10_000, 'write after forgetRoom')
  })
})

describe('sealed-log tamper operations on the loopback hub', () => {
  it('work on net.relayDoc(roomId) with their own transaction origins; devices refuse the junk and keep their memories', async () => {
    const { net, all } = await loopbackDevices(['phone', 'pc'], { seed: 11, converge: false })
    const [phone, pc] = all as [ContextSync, ContextSync]
    const rejected: number[] = []
    pc.on('rejected', (e) => rejected.push(e.code))
    const m = await phone.memory.remember({ text: 'on the hub' })
    await converge([phone, pc], net)
    const hub = net.relayDoc(phone.roomId('personal'))!
    const origins: unknown[] = []
    hub.on('afterTransaction', (t: Y.Transaction) => origins.push(t.origin))
    const before = listEntries(hub)
    expect(before.some((e) => e.header?.senderId === phone.deviceId)).toBe(true)
    injectEntries(hub, [new Uint8Array(40).fill(1)])
    deleteEntries(hub, (e) => e.header?.senderId === phone.deviceId)
    await converge([phone, pc], net)
    expect(origins).toContain(TamperOrigin.inject)
    expect(origins).toContain(TamperOrigin.delete)
    expect(rejected).toContain(RejectCode.Malformed)
    expect(pc.memory.get(m.id)?.text).toBe('on the hub')
    expect(phone.memory.get(m.id)?.text).toBe('on the hub')
  })
})
