/**
 * What the link transport promises beyond the shared conformance suite, over the BLE link
 * simulator: resumption from state vectors after the channel is lost mid-message, coded refusals
 * of reordered and repeated packets without losing data, the hub's token check (the relay's own:
 * only rooms the device's relay pass covers), the radio window, credit flow control against a
 * small TX buffer, keepalive, and the handshake's role check.
 */
import { beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { createAccessToken, createAccountKeys, createDeviceKeys, issueRelayPass, ownerKeyring, ready } from '../../src/crypto/index.js'
import { CloseCode } from '../../src/wire/close-codes.js'
import { linkServer, type LinkServerOptions } from '../../src/adapters/link-server.js'
import { linkTransport, type LinkTransport, type LinkTransportOptions } from '../../src/adapters/link.js'
import type { LinkError } from '../../src/adapters/link-errors.js'
import { sameOuterState, sealedLog } from '../../src/adapters/transport-conformance.js'
import type { TransportAttachment } from '../../src/adapters/transport.js'
import { bleLinkSimulator, type BleLinkOptions } from '../../src/testing/ble-link.js'
import { utf8 } from '../../src/util/bytes.js'

beforeAll(async () => {
  await ready()
})

interface Replica {
  doc: Y.Doc
  awareness: Awareness
  attachment: TransportAttachment
}

function attach(transport: LinkTransport, roomId: string, token?: (request: { audience: string }) => string): Replica {
  const doc = new Y.Doc()
  const awareness = new Awareness(doc)
  const attachment = transport.attach({ roomId, doc, awareness, ...(token && { token }) })
  return { doc, awareness, attachment }
}

/** A phone hub and one pair of glasses on a simulated BLE link. */
function setup(sim: BleLinkOptions = {}, glassesOptions: LinkTransportOptions = {}, hubOptions: LinkServerOptions = { auth: 'none' }) {
  const simulator = bleLinkSimulator({ seed: 1, ...sim })
  const hub = linkServer({ keepaliveMs: 0, ...hubOptions, clock: simulator.clock })
  const glasses = linkTransport({ keepaliveMs: 0, ...glassesOptions, clock: simulator.clock })
  const errors: LinkError[] = []
  glasses.on('error', ({ error }) => errors.push(error))
  hub.on('error', ({ error }) => errors.push(error))
  const connect = () => {
    const link = simulator.connect()
    const hubSide = hub.accept(link.central)
    const glassesSide = glasses.connect(link.peripheral)
    return { link, hubSide, glassesSide }
  }
  return { sim: simulator, hub, glasses, errors, connect }
}

function entries(doc: Y.Doc): string[] {
  return sealedLog(doc)
    .toArray()
    .map((entry) => new TextDecoder().decode(entry))
}

describe('link transport', () => {
  it('carries a log larger than the reassembly limit both ways, in messages under it', async () => {
    const limit = 2 * 1024 * 1024
    const { sim, hub, glasses, errors, connect } = setup(
      { mtu: 512, connectionIntervalMs: 7.5, packetsPerEvent: 64 },
      { maxMessageBytes: limit },
      { auth: 'none', maxMessageBytes: limit },
    )
    const roomId = 'room-large'
    const g = attach(glasses, roomId)
    // ~3 MB: before sync data was cut into frames, the first sync step 2 was one message this size.
    for (let i = 0; i < 30; i++) sealedLog(g.doc).push([utf8(`entry-${i}-${'y'.repeat(100_000)}`)])
    connect()
    await sim.settle()
    const hubDoc = hub.room(roomId)!.doc
    expect(sameOuterState(g.doc, hubDoc)).toBe(true)
    // And from the hub to glasses that hold nothing yet.
    const other = linkTransport({ keepaliveMs: 0, maxMessageBytes: limit, clock: sim.clock })
    other.on('error', ({ error }) => errors.push(error))
    const fresh = attach(other, roomId)
    const link = sim.connect()
    hub.accept(link.central)
    other.connect(link.peripheral)
    await sim.settle()
    expect(entries(fresh.doc)).toHaveLength(30)
    expect(sameOuterState(fresh.doc, hubDoc)).toBe(true)
    expect(errors.map((error) => error.code)).toEqual([])
  }, 60_000)

  it('resumes after the channel is lost mid-message without resending the document', async () => {
    const { sim, hub, glasses, connect } = setup({ mtu: 20, connectionIntervalMs: 30, packetsPerEvent: 2 })
    const first = connect()
    const roomId = 'room-resume'
    const g = attach(glasses, roomId)
    for (let i = 0; i < 40; i++) sealedLog(g.doc).push([utf8(`memory-${i}-${'x'.repeat(100)}`)])
    await sim.settle()
    const hubDoc = hub.room(roomId)!.doc
    expect(sameOuterState(g.doc, hubDoc)).toBe(true)
    const wholeDoc = Y.encodeStateAsUpdate(g.doc).length

    // One more entry, several hundred bytes: ~30 packets at MTU 20. Cut the link while the hub
    // holds part of it.
    sealedLog(g.doc).push([utf8(`late-${'y'.repeat(500)}`)])
    for (let i = 0; i < 200 && first.hubSide.stats.reassemblyBytes === 0; i++) await sim.advance(30)
    expect(first.hubSide.stats.reassemblyBytes).toBeGreaterThan(0)
    first.link.disconnect()
    await sim.settle()
    expect(g.attachment.status).toBe('disconnected')
    expect(entries(hubDoc)).toHaveLength(40) // the partial message was dropped, not half-applied

    const second = connect()
    await sim.settle()
    expect(sameOuterState(g.doc, hubDoc)).toBe(true)
    expect(g.attachment.status).toBe('synced')
    // The second connection carried the missing entry and two state vectors, not the document.
    const sent = second.glassesSide.stats.bytesSent
    expect(sent).toBeLessThan(wholeDoc / 4)
    expect(sent).toBeGreaterThan(500)
  })

  it('refuses reordered and repeated packets with a code and still converges without loss or duplicates', async () => {
    const { sim, hub, glasses, errors, connect } = setup({ seed: 11, mtu: 20, reorder: 0.05, duplicate: 0.05 }, { retryMs: 200 })
    connect()
    const roomId = 'room-faults'
    const g = attach(glasses, roomId)
    for (let i = 0; i < 30; i++) {
      sealedLog(g.doc).push([utf8(`g-${i}-${'z'.repeat(60)}`)])
      await sim.advance(50)
    }
    await sim.settle()
    const hubDoc = hub.room(roomId)!.doc
    for (let i = 0; i < 20; i++) sealedLog(hubDoc).push([utf8(`h-${i}`)])
    await sim.settle()
    expect(sameOuterState(g.doc, hubDoc)).toBe(true)
    const seen = entries(g.doc)
    expect(new Set(seen).size).toBe(50)
    expect(seen).toHaveLength(50)
    const reasons = new Set(errors.map((error) => error.reason))
    expect(reasons).toContain('out-of-order')
    expect(reasons).toContain('duplicate')
    for (const error of errors) expect(['out-of-order', 'duplicate'], error.message).toContain(error.reason)
  })

  it('admits only the rooms the relay pass covers, with the relay token check, and refuses the rest with 4403', async () => {
    const account = createAccountKeys()
    const device = createDeviceKeys()
    const keyring = ownerKeyring(account)
    const allowed = keyring.roomId('personal')
    const other = keyring.roomId('health')
    const relayPass = issueRelayPass(account, device, { rooms: [allowed] })
    const token = (roomId: string, audience: string) => createAccessToken({ rootPublicKey: account.rootPublicKey, relayPass, device, roomId, audience })
    const { sim, hub, glasses, errors, connect } = setup({}, { audience: 'link:phone' }, { auth: { audiences: ['link:phone'] } })
    const admitted: string[] = []
    hub.on('admitted', ({ roomId }) => admitted.push(roomId))
    connect()
    const a = attach(glasses, allowed, ({ audience }) => token(allowed, audience))
    const b = attach(glasses, other, ({ audience }) => token(other, audience))
    sealedLog(a.doc).push([utf8('allowed')])
    sealedLog(b.doc).push([utf8('secret')])
    await sim.settle()
    expect(admitted).toEqual([allowed])
    expect(entries(hub.room(allowed)!.doc)).toEqual(['allowed'])
    expect(hub.room(other)).toBeUndefined()
    expect(a.attachment.status).toBe('synced')
    expect(b.attachment.status).toBe('disconnected')
    const refusal = errors.find((error) => error.reason === 'refused')
    expect(refusal?.closeCode).toBe(CloseCode.Forbidden)

    // A token for another audience (say, captured at the relay) is refused too.
    const c = linkTransport({ clock: sim.clock, keepaliveMs: 0, audience: 'relay.example' })
    const codes: Array<number | undefined> = []
    c.on('error', ({ error }) => codes.push(error.closeCode))
    const link = sim.connect()
    hub.accept(link.central)
    c.connect(link.peripheral)
    attach(c, allowed, ({ audience }) => token(allowed, audience))
    await sim.settle()
    expect(codes).toContain(CloseCode.Forbidden)
    c.close()
  })

  it('holds writes for the radio window and sends them as one burst with one merged update', async () => {
    const burstsFor = async (radioWindowMs: number) => {
      const { sim, hub, glasses, connect } = setup({}, { radioWindowMs })
      const { glassesSide } = connect()
      const g = attach(glasses, 'room-window')
      await sim.settle()
      const before = glassesSide.stats
      for (let i = 0; i < 20; i++) {
        sealedLog(g.doc).push([utf8(`write-${i}`)])
        await sim.advance(40)
      }
      await sim.settle()
      expect(entries(hub.room('room-window')!.doc)).toHaveLength(20)
      const after = glassesSide.stats
      return { bursts: after.bursts - before.bursts, messages: after.messagesSent - before.messagesSent }
    }
    const immediate = await burstsFor(0)
    const windowed = await burstsFor(1000)
    expect(immediate.bursts).toBe(20)
    expect(immediate.messages).toBe(20)
    expect(windowed.bursts).toBe(1)
    expect(windowed.messages).toBe(1)
  })

  it('never overruns a small TX buffer: credit and canSend hold the sender back', async () => {
    const { sim, hub, glasses, connect } = setup({ mtu: 20, txBufferPackets: 4, packetsPerEvent: 2 }, { window: 8 })
    const { link } = connect()
    const g = attach(glasses, 'room-flow')
    sealedLog(g.doc).push([new Uint8Array(20_000).fill(7)])
    await sim.settle()
    expect(sameOuterState(g.doc, hub.room('room-flow')!.doc)).toBe(true)
    expect(link.stats.overflowed).toBe(0)
    expect(link.stats.sent).toBeGreaterThan(1000)
  })

  it('drops a silent peer after three keepalive intervals, with a timeout error', async () => {
    const sim = bleLinkSimulator({ seed: 3 })
    const glasses = linkTransport({ clock: sim.clock, keepaliveMs: 1000 })
    const errors: string[] = []
    glasses.on('error', ({ error }) => errors.push(error.reason))
    const link = sim.connect() // nobody on the central side
    const connection = glasses.connect(link.peripheral)
    const g = attach(glasses, 'room-silent')
    expect(g.attachment.status).toBe('connecting')
    await sim.advance(2_500)
    expect(connection.closed).toBe(false)
    await sim.advance(1_000)
    expect(connection.closed).toBe(true)
    expect(errors).toEqual(['timeout'])
    expect(g.attachment.status).toBe('disconnected')
    glasses.close()
  })

  it('refuses a channel whose two ends both claim to be the initiator', async () => {
    const sim = bleLinkSimulator({ seed: 4 })
    const a = linkTransport({ clock: sim.clock, keepaliveMs: 0 })
    const b = linkTransport({ clock: sim.clock, keepaliveMs: 0 })
    const errors: string[] = []
    a.on('error', ({ error }) => errors.push(error.reason))
    b.on('error', ({ error }) => errors.push(error.reason))
    const link = sim.connect()
    const ca = a.connect(link.central)
    const cb = b.connect(link.peripheral)
    await sim.settle()
    expect(errors).toContain('handshake')
    expect(ca.closed && cb.closed).toBe(true)
    a.close()
    b.close()
  })

  it('multiplexes several rooms on one channel and fans updates out between two pairs of glasses', async () => {
    const { sim, hub, glasses, connect } = setup({ mtu: 185 })
    connect()
    const other = linkTransport({ clock: sim.clock, keepaliveMs: 0 })
    const link = sim.connect()
    hub.accept(link.central)
    other.connect(link.peripheral)
    const rooms = ['r1', 'r2', 'r3']
    const mine = rooms.map((roomId) => attach(glasses, roomId))
    const theirs = rooms.map((roomId) => attach(other, roomId))
    rooms.forEach((_, i) => sealedLog(mine[i]!.doc).push([utf8(`from-a-${i}`)]))
    rooms.forEach((_, i) => sealedLog(theirs[i]!.doc).push([utf8(`from-b-${i}`)]))
    mine[0]!.awareness.setLocalState({ presence: 'sealed-a' })
    await sim.settle()
    rooms.forEach((_, i) => {
      expect(sameOuterState(mine[i]!.doc, theirs[i]!.doc)).toBe(true)
      expect(entries(theirs[i]!.doc).sort()).toEqual([`from-a-${i}`, `from-b-${i}`])
    })
    expect(theirs[0]!.awareness.getStates().get(mine[0]!.doc.clientID)).toEqual({ presence: 'sealed-a' })
    expect(theirs[1]!.awareness.getStates().has(mine[0]!.doc.clientID)).toBe(false)
    expect(glasses.connections[0]!.stats.rooms).toBe(3)
    other.close()
  })

  it("refuses a peer's attempt to overwrite or remove another device's presence through the hub", async () => {
    const { sim, hub, glasses, errors, connect } = setup()
    connect()
    const honest = attach(glasses, 'room-presence')
    honest.awareness.setLocalState({ presence: 'sealed-honest' })
    await sim.settle()
    const hubAwareness = hub.room('room-presence')!.awareness
    const honestId = honest.doc.clientID
    expect(hubAwareness.getStates().get(honestId)).toEqual({ presence: 'sealed-honest' })
    // The attacker's awareness claims the honest client's id, with a clock far ahead of it.
    const attacker = linkTransport({ clock: sim.clock, keepaliveMs: 0 })
    const link = sim.connect()
    hub.accept(link.central)
    attacker.connect(link.peripheral)
    const forgedDoc = new Y.Doc()
    forgedDoc.clientID = honestId
    const forged = new Awareness(forgedDoc)
    for (let i = 0; i < 50; i++) forged.setLocalState({ presence: 'forged' })
    attacker.attach({ roomId: 'room-presence', doc: forgedDoc, awareness: forged })
    await sim.settle()
    forged.setLocalState(null)
    await sim.settle()
    expect(hubAwareness.getStates().get(honestId)).toEqual({ presence: 'sealed-honest' })
    expect(honest.awareness.getStates().get(honestId)).toEqual({ presence: 'sealed-honest' })
    expect(errors.map((error) => error.reason)).toContain('forbidden')
    attacker.close()
  })

  it('ends a room when the relay pass grants it only until a time: the glasses get 4403 and nothing after', async () => {
    const account = createAccountKeys()
    const device = createDeviceKeys()
    const roomId = ownerKeyring(account).roomId('personal')
    const until = Date.now() + 5_000
    const relayPass = issueRelayPass(account, device, { rooms: [roomId], roomsUntil: { [roomId]: until } })
    const token = ({ audience }: { audience: string }) => createAccessToken({ rootPublicKey: account.rootPublicKey, relayPass, device, roomId, audience })
    const { sim, hub, glasses, errors, connect } = setup({}, {}, { auth: {} })
    connect()
    const g = attach(glasses, roomId, token)
    sealedLog(g.doc).push([utf8('during')])
    await sim.advance(1_000)
    expect(g.attachment.status).toBe('synced')
    const hubDoc = hub.room(roomId)!.doc
    expect(entries(hubDoc)).toEqual(['during'])
    // The hub's timer runs on the link clock: virtual time passes the pass's end.
    await sim.advance(Math.max(0, until - Date.now()) + 1_000)
    expect(g.attachment.status).toBe('disconnected')
    expect(errors.find((error) => error.reason === 'refused')?.closeCode).toBe(CloseCode.Forbidden)
    sealedLog(g.doc).push([utf8('after')])
    sealedLog(hubDoc).push([utf8('from-phone-after')])
    await sim.advance(10_000)
    expect(entries(hubDoc)).toEqual(['during', 'from-phone-after'])
    expect(entries(g.doc)).toEqual(['during', 'after'])
  })
})
