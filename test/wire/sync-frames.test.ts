import * as decoding from 'lib0/decoding'
import * as syncProtocol from 'y-protocols/sync'
import * as Y from 'yjs'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { parseClientMessage } from '../../src/relay/protocol.js'
import { MessageType } from '../../src/wire/messages.js'
import { cutState, cutTransaction } from '../../src/crdt/cut-state.js'
import { syncFrame, syncStep2Frames, updateFrames, type SyncFrames } from '../../src/wire/sync-frames.js'
import { propertyParams } from '../helpers/seeded.js'

/** A sealed-log-shaped doc: a `Y.Array` of byte strings. */
function logOf(doc: Y.Doc): Y.Array<Uint8Array> {
  return doc.getArray<Uint8Array>('log')
}

function envelope(size: number, fill: number): Uint8Array {
  return new Uint8Array(size).fill(fill & 0xff)
}

/** Decode a frame: its sync message type and update. */
function readFrame(frame: Uint8Array): { syncType: number; update: Uint8Array } {
  const decoder = decoding.createDecoder(frame)
  expect(decoding.readVarUint(decoder)).toBe(MessageType.Sync)
  const syncType = decoding.readVarUint(decoder)
  const update = decoding.readVarUint8Array(decoder)
  expect(decoding.hasContent(decoder)).toBe(false)
  return { syncType, update }
}

function applyFrames(doc: Y.Doc, frames: Uint8Array[]): void {
  for (const frame of frames) Y.applyUpdate(doc, readFrame(frame).update)
}

function expectSameState(a: Y.Doc, b: Y.Doc): void {
  expect(Y.encodeStateVector(b)).toEqual(Y.encodeStateVector(a))
  expect(logOf(b).toArray()).toEqual(logOf(a).toArray())
  // Same deletions too: nothing left to send either way.
  expect(Y.encodeStateAsUpdate(b, Y.encodeStateVector(a)).length).toBe(Y.encodeStateAsUpdate(a, Y.encodeStateVector(a)).length)
}

/** Three writers appending envelopes of the given sizes in turns, some then deleted (compaction). */
function buildDoc(sizes: number[], deletions: number[]): Y.Doc {
  const writers = [1, 2, 3].map((clientID) => {
    const doc = new Y.Doc({ gc: true })
    doc.clientID = clientID * 1000
    return doc
  })
  sizes.forEach((size, i) => {
    const writer = writers[i % writers.length]!
    logOf(writer).push([envelope(size, i)])
    // Pass everything around so later items reference earlier ones of other clients.
    if (i % 5 === 4) for (const a of writers) for (const b of writers) if (a !== b) Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)))
  })
  for (const a of writers) for (const b of writers) if (a !== b) Y.applyUpdate(b, Y.encodeStateAsUpdate(a, Y.encodeStateVector(b)))
  const doc = writers[0]!
  for (const index of deletions) {
    const length = logOf(doc).length
    if (length > 0) logOf(doc).delete(index % length, 1)
  }
  return doc
}

/** The answer to a sync step 1 as the relay and the transport build it. */
function step2(doc: Y.Doc, stateVector: Uint8Array, budget: number): SyncFrames & { largestItemBytes: number } {
  const pieces = cutState(doc, budget - 8, stateVector)
  return { ...syncStep2Frames(pieces), largestItemBytes: pieces.largestItemBytes }
}

describe('sync frames', () => {
  it('cut a large sync step 2 into frames under the budget that rebuild the same doc', () => {
    const doc = buildDoc(Array.from({ length: 300 }, (_, i) => 200 + ((i * 37) % 400)), [5, 17, 40, 41, 42, 99])
    const budget = 8 * 1024
    const { frames, largestItemBytes } = step2(doc, Y.encodeStateVector(new Y.Doc()), budget)
    expect(frames.length).toBeGreaterThan(10)
    expect(largestItemBytes).toBeLessThan(budget)
    for (const frame of frames) expect(frame.length).toBeLessThanOrEqual(budget)
    const types = frames.map((frame) => readFrame(frame).syncType)
    expect(types.slice(0, -1).every((type) => type === syncProtocol.messageYjsUpdate)).toBe(true)
    expect(types.at(-1)).toBe(syncProtocol.messageYjsSyncStep2)
    // The relay's strict frame validation accepts every piece.
    for (const frame of frames) expect(parseClientMessage(frame)?.type).toMatch(/^sync-/)
    const receiver = new Y.Doc()
    applyFrames(receiver, frames)
    expectSameState(doc, receiver)
  })

  it('send only what a partly synced receiver lacks', () => {
    const doc = buildDoc(Array.from({ length: 120 }, () => 300), [])
    const receiver = new Y.Doc()
    Y.applyUpdate(receiver, Y.encodeStateAsUpdate(doc))
    for (let i = 0; i < 80; i++) logOf(doc).push([envelope(500, i)])
    logOf(doc).delete(3, 2)
    const before = Y.encodeStateVector(receiver)
    const { frames } = step2(doc, before, 4096)
    const sent = frames.reduce((sum, frame) => sum + frame.length, 0)
    expect(sent).toBeLessThan(80 * 600)
    applyFrames(receiver, frames)
    expectSameState(doc, receiver)
  })

  it('carry an item larger than the budget alone in its frame', () => {
    const doc = new Y.Doc()
    logOf(doc).push([envelope(100, 1), envelope(20_000, 2), envelope(100, 3)])
    const { frames, largestItemBytes } = step2(doc, Y.encodeStateVector(new Y.Doc()), 4096)
    expect(largestItemBytes).toBeGreaterThan(20_000)
    const big = frames.filter((frame) => frame.length > 4096)
    expect(big).toHaveLength(1)
    expect(Y.decodeUpdate(readFrame(big[0]!).update).structs).toHaveLength(1)
    const receiver = new Y.Doc()
    applyFrames(receiver, frames)
    expectSameState(doc, receiver)
  })

  it('send a small transaction as one frame, cut or not', () => {
    const doc = new Y.Doc()
    let update: Uint8Array | undefined
    doc.on('update', (u: Uint8Array) => (update = u))
    logOf(doc).push([envelope(1000, 7)])
    const pieces = cutTransaction(doc, update!, 4096)
    // Cut or not, the one item comes out as the same bytes (plus an empty delete set).
    expect(pieces.updates).toHaveLength(2)
    expect(Y.decodeUpdate(pieces.updates[0]!).structs).toHaveLength(1)
    const { frames } = updateFrames(pieces)
    expect(frames).toHaveLength(1)
    const peer = new Y.Doc()
    applyFrames(peer, frames)
    expectSameState(doc, peer)
    expect(updateFrames({ updates: [update!], splittable: [true] }).frames).toEqual([syncFrame(syncProtocol.messageYjsUpdate, update!)])
  })

  it('cut one large transaction (with deletions) so a peer that had the state before gets all of it', () => {
    const doc = buildDoc(Array.from({ length: 50 }, () => 300), [])
    const peer = new Y.Doc()
    Y.applyUpdate(peer, Y.encodeStateAsUpdate(doc))
    let update: Uint8Array | undefined
    doc.on('update', (u: Uint8Array) => (update = u))
    doc.transact(() => {
      logOf(doc).delete(0, 10)
      for (let i = 0; i < 400; i++) logOf(doc).push([envelope(250, i)])
    })
    const { frames } = updateFrames(cutTransaction(doc, update!, 8192 - 8))
    expect(frames.length).toBeGreaterThan(10)
    for (const frame of frames) expect(frame.length).toBeLessThanOrEqual(8192)
    applyFrames(peer, frames)
    expectSameState(doc, peer)
  })

  it('converge whatever order the frames arrive in', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 120 }),
        fc.array(fc.nat(), { maxLength: 20 }),
        fc.integer({ min: 1024, max: 16_384 }),
        fc.infiniteStream(fc.nat()),
        (sizes, deletions, budget, order) => {
          const doc = buildDoc(sizes, deletions)
          const { frames } = step2(doc, Y.encodeStateVector(new Y.Doc()), budget)
          const shuffled = [...frames]
          const picks = order[Symbol.iterator]()
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = picks.next().value! % (i + 1)
            ;[shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!]
          }
          const receiver = new Y.Doc()
          applyFrames(receiver, shuffled)
          expectSameState(doc, receiver)
        },
      ),
      propertyParams(60),
    )
  })
})
