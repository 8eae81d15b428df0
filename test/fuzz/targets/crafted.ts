/**
 * Crafted structures for the seq-set and snapshot formats (WIRE.md "Envelope v1"): valid-looking
 * encodings whose counts and lengths sit at, just past or far past their bounds (65 536 ranges
 * per set, 1024 senders, 262 144 ranges per snapshot), with ranges out of order, overlapping,
 * adjacent, or running past 2^53 — what a hostile member device would seal.
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { insertMemory, type MemoryItem } from '../../../src/crdt/memory.js'
import { MAX_SEQ_RANGES } from '../../../src/sync/seq-set.js'
import { MAX_SNAPSHOT_RANGES, MAX_SNAPSHOT_SENDERS } from '../../../src/sync/snapshot.js'
import { HUGE_VALUES } from '../mutators.js'
import { bytes, chance, int, pick, weighted, type Rng } from '../rng.js'

/** A count: small, at a bound, just past it, or huge. */
function count(gen: Rng, bound: number): number {
  return weighted<number>(gen, [
    [6, int(gen, 0, 8)],
    [2, bound],
    [2, bound + 1],
    [1, bound - 1],
    [3, pick(gen, HUGE_VALUES)],
  ])
}

/** Write a seq set whose header claims `claimed` ranges, with up to `actual` ranges following. */
export function writeCraftedSeqSet(gen: Rng, enc: encoding.Encoder, claimed = count(gen, MAX_SEQ_RANGES), actual = Math.min(claimed, int(gen, 0, 64))): void {
  encoding.writeVarUint(enc, claimed)
  let next = chance(gen, 0.9) ? int(gen, 1, 100) : pick(gen, HUGE_VALUES)
  // Occasionally many ranges, so a set near the bound really is decoded (one pass, bounded).
  const ranges = chance(gen, 0.01) ? Math.min(claimed, MAX_SEQ_RANGES + 1) : actual
  for (let i = 0; i < ranges; i++) {
    const shape = weighted<string>(gen, [
      [20, 'ascending'],
      [1, 'adjacent'],
      [1, 'overlap'],
      [1, 'backwards'],
      [1, 'huge'],
    ])
    let start = next
    let length = int(gen, 0, 5)
    if (shape === 'adjacent') start = Math.max(1, next - 1)
    else if (shape === 'overlap') start = Math.max(1, next - 3)
    else if (shape === 'backwards') start = int(gen, 0, next)
    else if (shape === 'huge') {
      start = pick(gen, HUGE_VALUES)
      length = pick(gen, HUGE_VALUES)
    }
    encoding.writeVarUint(enc, start)
    encoding.writeVarUint(enc, length)
    next = start + length + int(gen, 2, 10)
  }
}

/** Bytes of a crafted seq set. */
export function craftedSeqSet(gen: Rng): Uint8Array {
  const enc = encoding.createEncoder()
  writeCraftedSeqSet(gen, enc)
  if (chance(gen, 0.1)) encoding.writeUint8Array(enc, bytes(gen, int(gen, 1, 4)))
  return encoding.toUint8Array(enc)
}

/** A small genuine inner-doc state (one or two memories), as Y.encodeStateAsUpdate writes it. */
export function innerState(gen: Rng, clientID = int(gen, 1, 2 ** 31)): Uint8Array {
  const doc = new Y.Doc()
  doc.clientID = clientID
  const n = int(gen, 1, 2)
  for (let i = 0; i < n; i++) insertMemory(doc, sampleMemory(gen, i))
  const state = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return state
}

/** A memory item with most optional fields, for inner docs and exports. */
export function sampleMemory(gen: Rng, i: number, deviceId = 'a'.repeat(32)): MemoryItem {
  const item: MemoryItem = {
    id: `m${i}-${int(gen, 0, 1e9).toString(36)}`,
    text: `fuzz memory ${i}: ${'x'.repeat(int(gen, 1, 40))}`,
    scope: 'personal',
    kind: pick(gen, ['fact', 'preference', 'event', 'summary'] as const),
    tags: ['fuzz', `t${i}`],
    createdAt: 1_700_000_000_000 + i,
    updatedAt: 1_700_000_000_000 + i,
    source: { deviceId, sessionId: 's1' },
  }
  if (chance(gen, 0.5)) item.confidence = 0.5
  if (chance(gen, 0.3)) item.embedding = new Float32Array([0.25, -1, 2, 0.125])
  if (chance(gen, 0.3)) item.embeddingModel = 'fuzz-embed'
  if (chance(gen, 0.3)) {
    item.validFrom = 1
    item.validTo = 2
  }
  return item
}

/** A crafted snapshot payload: `u8 version · varuint n · (16B sender · seqset)ⁿ · varbytes state`. */
export function craftedSnapshot(gen: Rng): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, chance(gen, 0.95) ? 1 : int(gen, 0, 255))
  const senders = count(gen, MAX_SNAPSHOT_SENDERS)
  encoding.writeVarUint(enc, senders)
  const actual = Math.min(senders, chance(gen, 0.03) ? MAX_SNAPSHOT_SENDERS + 1 : int(gen, 0, 6))
  const ids: Uint8Array[] = []
  // Sets large enough to run into the snapshot-wide budget of ranges.
  const perSet = chance(gen, 0.005) ? Math.ceil(MAX_SNAPSHOT_RANGES / Math.max(1, actual)) + 1 : undefined
  for (let i = 0; i < actual; i++) {
    const id = chance(gen, 0.1) && ids.length > 0 ? pick(gen, ids) : bytes(gen, 16)
    ids.push(id)
    encoding.writeUint8Array(enc, id)
    if (perSet !== undefined) writeCraftedSeqSet(gen, enc, Math.min(perSet, MAX_SEQ_RANGES), Math.min(perSet, MAX_SEQ_RANGES))
    else writeCraftedSeqSet(gen, enc)
  }
  const state = chance(gen, 0.8) ? innerState(gen) : bytes(gen, int(gen, 0, 64))
  if (chance(gen, 0.15)) encoding.writeVarUint(enc, pick(gen, HUGE_VALUES))
  else encoding.writeVarUint(enc, state.length)
  encoding.writeUint8Array(enc, state)
  if (chance(gen, 0.05)) encoding.writeUint8Array(enc, bytes(gen, int(gen, 1, 8)))
  return encoding.toUint8Array(enc)
}
