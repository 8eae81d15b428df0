/**
 * The plaintext of a snapshot envelope: the full inner state plus, per sender, the seqs it covers.
 *
 * ```
 * u8 version(1) · varuint senders · (16B senderId · seqset)* · varbytes state (Yjs update v1)
 * ```
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { fromHex, toHex } from '../util/bytes.js'
import { SeqSet } from './seq-set.js'

const SNAPSHOT_VERSION = 1

/** Decoded snapshot payload. */
export interface SnapshotPayload {
  /** Seqs covered, by hex sender id. */
  coverage: Map<string, SeqSet>
  /** Full inner-doc state as a Yjs v1 update. */
  state: Uint8Array
}

/** Encode a snapshot payload. */
export function encodeSnapshot(payload: SnapshotPayload): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, SNAPSHOT_VERSION)
  encoding.writeVarUint(enc, payload.coverage.size)
  for (const [sender, seqs] of payload.coverage) {
    encoding.writeUint8Array(enc, fromHex(sender)!)
    seqs.encode(enc)
  }
  encoding.writeVarUint8Array(enc, payload.state)
  return encoding.toUint8Array(enc)
}

/** Decode a snapshot payload; `undefined` when malformed. */
export function decodeSnapshot(bytes: Uint8Array): SnapshotPayload | undefined {
  try {
    const dec = decoding.createDecoder(bytes)
    if (decoding.readUint8(dec) !== SNAPSHOT_VERSION) return undefined
    const senders = decoding.readVarUint(dec)
    if (senders > bytes.length) return undefined
    const coverage = new Map<string, SeqSet>()
    for (let i = 0; i < senders; i++) {
      const id = toHex(decoding.readUint8Array(dec, 16))
      coverage.set(id, SeqSet.decode(dec))
    }
    const state = decoding.readVarUint8Array(dec)
    if (decoding.hasContent(dec)) return undefined
    return { coverage, state }
  } catch {
    return undefined
  }
}
