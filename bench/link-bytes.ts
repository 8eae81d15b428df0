/**
 * Parts 1 and 4 of bench/link.ts, bytes on the link: a memory write sealed by a real replica and
 * carried glasses → phone, and a handoff offer for a 20-turn session, each beside its plaintext.
 *
 * @module
 */
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { linkServer } from '../src/adapters/link-server.js'
import { linkTransport } from '../src/adapters/link.js'
import { insertMemory } from '../src/crdt/memory.js'
import { insertOffer } from '../src/crdt/session-leases.js'
import { insertSession, insertTurns, sessionMap, type NewTurn } from '../src/crdt/sessions.js'
import { bleLinkSimulator } from '../src/testing/ble-link.js'
import { INTERVAL, KEEPALIVE_MS, MTU, SEED, benchReplica, memory } from './link-fixtures.js'

/** Bytes per memory write: the plaintext update, its envelope, and the link bytes. */
export interface WriteFigures {
  plaintext: number
  envelope: number
  glassesToPhone: number
  bothWays: number
}

/** Part 1: `writes` memories in batches of `batch`, over the link; bytes per write. */
export async function bytesPerWrite(batch: number, writes: number): Promise<WriteFigures> {
  const { replica, roomId, device } = await benchReplica('personal')
  const sim = bleLinkSimulator({ seed: SEED, mtu: MTU, connectionIntervalMs: INTERVAL })
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: 2_000 })
  const glasses = linkTransport({ clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: 2_000 })
  const link = sim.connect()
  const phoneSide = hub.accept(link.central)
  const glassesSide = glasses.connect(link.peripheral)
  glasses.attach({ roomId, doc: replica.outer, awareness: new Awareness(replica.outer) })
  await sim.settle()

  let plaintext = 0
  let envelope = 0
  const onInner = (update: Uint8Array): void => void (plaintext += update.length)
  const onOuter = (update: Uint8Array, origin: unknown): void => void (origin === undefined || origin === null ? (envelope += update.length) : undefined)
  replica.inner.on('update', onInner)
  const log = replica.outer.getArray<Uint8Array>('log')
  const countEnvelopes = (): number => log.toArray().reduce((sum, entry) => sum + entry.length, 0)
  const envelopesBefore = countEnvelopes()
  replica.outer.on('update', onOuter)
  const before = { g: glassesSide.stats.bytesSent, p: phoneSide.stats.bytesSent }
  for (let i = 0; i < writes; i += batch) {
    // One flush window's worth of writes: separate transactions, sealed as one envelope.
    for (let j = i; j < Math.min(writes, i + batch); j++) replica.inner.transact(() => insertMemory(replica.inner, memory(j, device.deviceId)))
    await replica.whenFlushed()
    await sim.advance(60_000)
  }
  await sim.settle(KEEPALIVE_MS * 4)
  replica.inner.off('update', onInner)
  replica.outer.off('update', onOuter)
  const hubLog = hub.room(roomId)!.doc.getArray<Uint8Array>('log')
  if (hubLog.length !== log.length) throw new RangeError(`the phone holds ${hubLog.length} envelopes, the glasses ${log.length}`)
  const g = glassesSide.stats.bytesSent - before.g
  const p = phoneSide.stats.bytesSent - before.p
  envelope = countEnvelopes() - envelopesBefore
  glasses.close()
  hub.close()
  await replica.close()
  return { plaintext: plaintext / writes, envelope: envelope / writes, glassesToPhone: g / writes, bothWays: (g + p) / writes }
}

/** Bytes of a handoff offer, and of the conversation it points at. */
export interface HandoffFigures {
  plaintext: number
  envelope: number
  glassesToPhone: number
  bothWays: number
  /** The conversation itself: what a handoff carrying the turns would carry (its Yjs state). */
  conversation: number
}

/**
 * Part 4: a handoff offer from the glasses for a realistic session (20 turns of ~300 characters,
 * already synced to the phone). The offer names the session by its place in the sessions doc and
 * carries a small app payload (a cursor into the conversation) and a deep link — not the turns.
 * Figures: the plaintext Yjs update of the offer, its sealed envelope, and the link bytes both
 * ways until quiet (headers, acks, sync framing) at MTU 185.
 */
export async function handoffBytes(): Promise<HandoffFigures> {
  const { replica, roomId, device } = await benchReplica('sessions')
  const sim = bleLinkSimulator({ seed: SEED, mtu: MTU, connectionIntervalMs: INTERVAL })
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: 500 })
  const glasses = linkTransport({ clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: 2_000 })
  const link = sim.connect()
  const phoneSide = hub.accept(link.central)
  const glassesSide = glasses.connect(link.peripheral)
  const awareness = new Awareness(replica.outer)
  glasses.attach({ roomId, doc: replica.outer, awareness })
  const sessionId = 's-0001'
  const t0 = 1_767_225_600_000
  replica.inner.transact(() => {
    insertSession(replica.inner, { id: sessionId, title: 'Train times home', scope: 'sessions', createdAt: t0, claim: { deviceId: device.deviceId, until: t0 + 600_000 } })
  })
  const turns: NewTurn[] = Array.from({ length: 20 }, (_, i) => ({
    id: `t${i.toString().padStart(3, '0')}`,
    role: i % 2 === 0 ? 'user' : 'assistant',
    deviceId: device.deviceId,
    createdAt: t0 + i * 30_000,
    done: true,
    parts: [{ type: 'text', state: 'done', text: `Turn ${i}: ${'the 18:04 from the central station is two minutes late, platform 7 instead of 4; '.repeat(4)}`.slice(0, 300) }],
  }))
  replica.inner.transact(() => insertTurns(replica.inner, sessionId, turns, t0 + 600_000))
  await replica.whenFlushed()
  await sim.settle(KEEPALIVE_MS)
  const conversation = Y.encodeStateAsUpdate(replica.inner).length
  let plaintext = 0
  const onInner = (update: Uint8Array): void => void (plaintext += update.length)
  replica.inner.on('update', onInner)
  const log = replica.outer.getArray<Uint8Array>('log')
  const entriesBefore = log.length
  const before = { g: glassesSide.stats.bytesSent, p: phoneSide.stats.bytesSent }
  const now = t0 + 660_000
  replica.inner.transact(() => {
    const session = sessionMap(replica.inner, sessionId)!
    insertOffer(session, {
      id: 'h-7f3a9c2e',
      from: device.deviceId,
      to: 'phone',
      toKind: true,
      createdAt: now,
      expiresAt: now + 60_000,
      payload: { cursor: { turn: 't019', offset: 212 }, view: 'conversation' },
      link: `contextsync://sessions/${sessionId}`,
    })
    session.set('updatedAt', now)
  })
  await replica.whenFlushed()
  await sim.settle(KEEPALIVE_MS * 4)
  replica.inner.off('update', onInner)
  const envelope = log.toArray().slice(entriesBefore).reduce((sum, entry) => sum + entry.length, 0)
  const hubLog = hub.room(roomId)!.doc.getArray<Uint8Array>('log')
  if (hubLog.length !== log.length) throw new RangeError('the offer did not reach the phone')
  const g = glassesSide.stats.bytesSent - before.g
  const p = phoneSide.stats.bytesSent - before.p
  glasses.close()
  hub.close()
  awareness.destroy()
  await replica.close()
  return { plaintext, envelope, glassesToPhone: g, bothWays: g + p, conversation }
}
