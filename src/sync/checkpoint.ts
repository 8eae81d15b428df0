/**
 * A replica checkpoint: what this device has applied in one room, kept in its own store and
 * sealed with its at-rest key (WIRE.md "Replica checkpoint"). The shared sealed log is an
 * untrusted exchange medium — anyone in the room can delete its entries — so what a device has
 * applied never depends on what the log still holds: on load the checkpoint is the authority, and
 * the log only adds what arrived after it.
 *
 * ```
 * u8 version = 1 · u8 flags (bit 0: repair due, bit 1: unsealed changes) · varuint sealedEpoch
 * · varuint tipClient · varuint tipClock · varuint erasureSeq · seqmap applied · seqmap claims · varbytes state · varbytes extra
 * seqmap = varuint n · (16B sender · seqset)ⁿ
 * ```
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { openAtRest, sealAtRest } from '../crypto/at-rest.js'
import { fromHex, toHex } from '../util/bytes.js'
import { SeqSet } from './seq-set.js'

const CHECKPOINT_VERSION = 1
const PURPOSE = 'checkpoint'
const FLAG_REPAIR_DUE = 1
const FLAG_UNSEALED = 2

/** What one replica has applied, as persisted. */
export interface Checkpoint {
  /** Seqs this device verified and applied itself, by hex sender id. */
  applied: Map<string, SeqSet>
  /** Seqs each sender's own snapshots say they cover (hints for gap detection only). */
  claims: Map<string, SeqSet>
  /** The full inner doc (`Y.encodeStateAsUpdate`). */
  state: Uint8Array
  /** A republishing compaction is due: applied entries were erased from the log, a snapshot raced an erasure, or a revoked sender's envelopes need re-sealing. */
  repairDue: boolean
  /** The state holds local changes that may not have been sealed into the log yet. */
  unsealed: boolean
  /** The newest key epoch this device sealed under in the room (0 when none). */
  sealedEpoch: number
  /**
   * Where this device's newest sealed update ends in the inner doc: its Yjs client and the clock
   * past its last struct (clock 0: none). Announced with its seq, so peers can tell they hold that
   * content even when the envelope itself was compacted away.
   */
  tip: { client: number; clock: number }
  /** This device's seq of the last envelope that erased content (forget, purge, retention); 0 when none. */
  erasureSeq: number
  /** Bytes the replica's owner keeps with the checkpoint (the registry: statements it relies on). */
  extra: Uint8Array
}

function writeSeqMap(enc: encoding.Encoder, map: Map<string, SeqSet>): void {
  encoding.writeVarUint(enc, map.size)
  for (const [sender, seqs] of map) {
    encoding.writeUint8Array(enc, fromHex(sender)!)
    seqs.encode(enc)
  }
}

function readSeqMap(dec: decoding.Decoder): Map<string, SeqSet> {
  const count = decoding.readVarUint(dec)
  // Caught by openCheckpoint's parse, like lib0's own out-of-bounds reads.
  if (count > dec.arr.length) throw new RangeError('sender count exceeds input')
  const map = new Map<string, SeqSet>()
  for (let i = 0; i < count; i++) map.set(toHex(decoding.readUint8Array(dec, 16)), SeqSet.decode(dec))
  return map
}

/** Encode and seal a checkpoint for `roomId` under the device's at-rest key. */
export function sealCheckpoint(key: Uint8Array, roomId: string, checkpoint: Checkpoint): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, CHECKPOINT_VERSION)
  encoding.writeUint8(enc, (checkpoint.repairDue ? FLAG_REPAIR_DUE : 0) | (checkpoint.unsealed ? FLAG_UNSEALED : 0))
  encoding.writeVarUint(enc, checkpoint.sealedEpoch)
  encoding.writeVarUint(enc, checkpoint.tip.client)
  encoding.writeVarUint(enc, checkpoint.tip.clock)
  encoding.writeVarUint(enc, checkpoint.erasureSeq)
  writeSeqMap(enc, checkpoint.applied)
  writeSeqMap(enc, checkpoint.claims)
  encoding.writeVarUint8Array(enc, checkpoint.state)
  encoding.writeVarUint8Array(enc, checkpoint.extra)
  return sealAtRest(key, PURPOSE, roomId, encoding.toUint8Array(enc))
}

/** Open and decode a sealed checkpoint; `undefined` when it is not authentic or does not parse. */
export function openCheckpoint(key: Uint8Array, roomId: string, sealed: Uint8Array): Checkpoint | undefined {
  const bytes = openAtRest(key, PURPOSE, roomId, sealed)
  if (!bytes) return undefined
  try {
    const dec = decoding.createDecoder(bytes)
    if (decoding.readUint8(dec) !== CHECKPOINT_VERSION) return undefined
    const flags = decoding.readUint8(dec)
    const sealedEpoch = decoding.readVarUint(dec)
    const tip = { client: decoding.readVarUint(dec), clock: decoding.readVarUint(dec) }
    const erasureSeq = decoding.readVarUint(dec)
    const applied = readSeqMap(dec)
    const claims = readSeqMap(dec)
    const state = decoding.readVarUint8Array(dec)
    const extra = decoding.readVarUint8Array(dec)
    if (decoding.hasContent(dec)) return undefined
    return { applied, claims, state, repairDue: (flags & FLAG_REPAIR_DUE) !== 0, unsealed: (flags & FLAG_UNSEALED) !== 0, sealedEpoch, tip, erasureSeq, extra }
  } catch {
    return undefined
  }
}
