/**
 * The plaintext of a snapshot envelope: the full inner state plus, per sender, the seqs it covers
 * (WIRE.md "Envelope v1").
 *
 * ```
 * u8 version(1) · varuint senders · (16B senderId · seqset)* · varbytes state (Yjs update v1)
 * ```
 *
 * A snapshot is sealed by a member device, which may be hostile (THREAT_MODEL.md "A member
 * device"): every count is bounded, and a payload is parsed in one pass or refused with a code.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { RejectCode, reject, type Checked } from '../crypto/codes.js'
import { fromHex, toHex } from '../util/bytes.js'
import { MAX_SEQ_RANGES, SeqSet, SeqSetError } from './seq-set.js'
import { ContextSyncError } from '../errors.js'

const SNAPSHOT_VERSION = 1
/** Device ids are BLAKE2b-128 of the device's signing key (WIRE.md "Envelope v1", `16B sender`). */
const SENDER_ID_BYTES = 16
const SENDER_ID_HEX = /^[0-9a-f]{32}$/

/**
 * Most senders one snapshot may cover. Why this number: a sender is a device the account root
 * certified that wrote in the scope; a person's handful of devices, replaced and re-enrolled over
 * the years, makes tens. 1024 leaves two orders of magnitude, and bounds the map a receiver builds
 * whatever the payload's size.
 */
export const MAX_SNAPSHOT_SENDERS = 1024

/**
 * Most seq ranges one snapshot may hold across all its senders. Why this number: four senders at
 * {@link MAX_SEQ_RANGES} each, more restarts than the devices of any account add up to, while a
 * snapshot at the bound still decodes in tens of milliseconds into 4 MiB of memory — where the
 * sender bound alone would allow 1024 × 65 536 ranges.
 */
export const MAX_SNAPSHOT_RANGES = 4 * MAX_SEQ_RANGES

/**
 * Largest inner state one snapshot envelope carries: 960 KiB, so the sealed envelope (header,
 * coverage, tag) stays under the 1 MiB sync frame budget (`src/wire/sync-frames.ts`). A larger
 * state is sealed as several snapshot envelopes with the same coverage, each holding part of it
 * (WIRE.md, "Frame sizes"); receivers need nothing new for that, since every part is an ordinary
 * snapshot whose state merges into the doc.
 */
export const SNAPSHOT_PART_BYTES = 960 * 1024

/** Decoded snapshot payload. */
export interface SnapshotPayload {
  /** Seqs covered, by hex sender id. */
  coverage: Map<string, SeqSet>
  /** Full inner-doc state as a Yjs v1 update. */
  state: Uint8Array
}

/**
 * {@link encodeSnapshot} was given coverage that receivers would refuse (see
 * {@link coverageOverLimits}). Thrown rather than written: a snapshot nobody can read would still
 * let its sealer compact away the entries it claims to cover. Code `invalid-argument`.
 */
export class SnapshotLimitError extends ContextSyncError {
  override name = 'SnapshotLimitError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-argument', message, options)
  }
}

/**
 * Why `coverage` cannot go into a snapshot receivers accept, or `undefined` when it can: more than
 * {@link MAX_SNAPSHOT_SENDERS} senders, a set over {@link MAX_SEQ_RANGES} ranges, more than
 * {@link MAX_SNAPSHOT_RANGES} in all, or a sender id that is not 16 bytes of lower-case hex.
 * Lets a caller check before compacting instead of catching {@link SnapshotLimitError}.
 */
export function coverageOverLimits(coverage: ReadonlyMap<string, SeqSet>): string | undefined {
  if (coverage.size > MAX_SNAPSHOT_SENDERS) return `coverage has ${coverage.size} senders, more than ${MAX_SNAPSHOT_SENDERS}`
  let total = 0
  for (const [sender, seqs] of coverage) {
    // Lower-case only: the decoder names senders with toHex, so an upper-case id would not
    // round-trip (and two spellings of one id would decode as a duplicate sender).
    if (!SENDER_ID_HEX.test(sender)) return `sender id ${JSON.stringify(sender)} is not 16 bytes of lower-case hex`
    const ranges = seqs.rangeCount()
    if (ranges > MAX_SEQ_RANGES) return `coverage of sender ${sender} has ${ranges} ranges, more than ${MAX_SEQ_RANGES}`
    total += ranges
  }
  if (total > MAX_SNAPSHOT_RANGES) return `coverage has ${total} ranges, more than ${MAX_SNAPSHOT_RANGES}`
  return undefined
}

/**
 * Encode a snapshot payload.
 *
 * @throws {@link SnapshotLimitError} when {@link coverageOverLimits} finds a problem: the bytes
 * would be refused by every receiver.
 */
export function encodeSnapshot(payload: SnapshotPayload): Uint8Array {
  const problem = coverageOverLimits(payload.coverage)
  if (problem !== undefined) throw new SnapshotLimitError(problem)
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

/**
 * Decode a snapshot payload, or say why not: `UnsupportedVersion` (2) for a version byte this
 * build does not know, `BadPayload` (11) for anything else — truncated, trailing bytes, too many
 * senders or ranges, a duplicate sender, a seq set out of order or out of range. One pass over
 * the bytes whatever they hold.
 */
export function decodeSnapshotChecked(bytes: Uint8Array): Checked<SnapshotPayload> {
  if (bytes.length === 0) return reject(RejectCode.BadPayload, 'snapshot is truncated: no version byte')
  const dec = decoding.createDecoder(bytes)
  const version = decoding.readUint8(dec)
  if (version !== SNAPSHOT_VERSION) return reject(RejectCode.UnsupportedVersion, `snapshot version ${version} is not supported`)
  try {
    const senders = decoding.readVarUint(dec)
    if (senders > MAX_SNAPSHOT_SENDERS) {
      return reject(RejectCode.BadPayload, `snapshot lists ${senders} senders, more than ${MAX_SNAPSHOT_SENDERS}`)
    }
    // Each sender takes its id and at least a one-byte range count.
    if (senders * (SENDER_ID_BYTES + 1) > bytes.length - dec.pos) {
      return reject(RejectCode.BadPayload, `snapshot lists ${senders} senders, more than its bytes hold`)
    }
    const coverage = new Map<string, SeqSet>()
    let ranges = 0
    for (let i = 0; i < senders; i++) {
      const sender = toHex(decoding.readUint8Array(dec, SENDER_ID_BYTES))
      // A second set for one sender would silently replace the first.
      if (coverage.has(sender)) return reject(RejectCode.BadPayload, `duplicate sender ${sender} in snapshot coverage`)
      const left = MAX_SNAPSHOT_RANGES - ranges
      let seqs: SeqSet
      try {
        seqs = SeqSet.decode(dec, left)
      } catch (error) {
        if (!(error instanceof SeqSetError)) throw error
        const budget = left < MAX_SEQ_RANGES ? ` (${left} of the snapshot's ${MAX_SNAPSHOT_RANGES} ranges left)` : ''
        return reject(RejectCode.BadPayload, `coverage of sender ${sender}${budget}: ${error.message}`)
      }
      ranges += seqs.rangeCount()
      coverage.set(sender, seqs)
    }
    const state = decoding.readVarUint8Array(dec)
    if (decoding.hasContent(dec)) return reject(RejectCode.BadPayload, `${bytes.length - dec.pos} trailing bytes after snapshot state`)
    return { ok: true, value: { coverage, state } }
  } catch {
    // lib0 throws on reading past the end or an overlong varuint; nothing else in here throws.
    return reject(RejectCode.BadPayload, 'snapshot is truncated')
  }
}

/** Decode a snapshot payload; `undefined` when malformed (see {@link decodeSnapshotChecked} for why). */
export function decodeSnapshot(bytes: Uint8Array): SnapshotPayload | undefined {
  const checked = decodeSnapshotChecked(bytes)
  return checked.ok ? checked.value : undefined
}
