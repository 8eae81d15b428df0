/**
 * The seqs this device seals under, reserved in blocks in its own store before any is used, so
 * that a crash never makes it seal two envelopes with the same seq (receivers would refuse the
 * second as a replay, 10). The reservation is one small record (WIRE.md "Device store layout"):
 * a version byte and the highest seq reserved.
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import * as decoding from 'lib0/decoding'

/** How many seqs one reservation write covers. */
export const SEQ_BLOCK = 1024

const META_VERSION = 1

/**
 * Highest seq reservation a meta record may hold: one that leaves 2^32 seqs, so no seq this
 * device seals is ever past `Number.MAX_SAFE_INTEGER` (receivers refuse those, 1).
 */
const MAX_RESERVED_SEQ = Number.MAX_SAFE_INTEGER - 2 ** 32

/** Next seq to seal under and the durable block reserved ahead of it. */
export class SeqReservation {
  private nextSeq = 1
  private reservedUpTo = 0
  private reserving: Promise<void> | undefined

  /** `save` durably stores a reservation record (the replica's meta record). */
  constructor(private readonly save: (record: Uint8Array) => Promise<void>) {}

  /**
   * Take the stored record (none: nothing was reserved). Returns false when it is damaged: it
   * then says nothing about which seqs were reserved, and {@link start} skips a whole block.
   */
  restore(record: Uint8Array | undefined): boolean {
    const reserved = record ? decodeReservation(record) : 0
    if (reserved === undefined) return false
    this.reservedUpTo = reserved
    return true
  }

  /**
   * Continue after everything applied and everything reserved before a restart: `ownMax` is the
   * highest own seq this device applied; `damaged` what {@link restore} found.
   */
  start(ownMax: number, damaged: boolean): void {
    this.nextSeq = Math.max(ownMax, this.reservedUpTo) + 1 + (damaged ? SEQ_BLOCK : 0)
    this.reservedUpTo = this.nextSeq - 1
  }

  /** True when the next seq is reserved, so one envelope can be sealed without waiting. */
  get ready(): boolean {
    return this.reservedUpTo >= this.nextSeq
  }

  /** True when the next `count` seqs are reserved (a snapshot sealed in several parts). */
  hasReserved(count: number): boolean {
    return this.reservedUpTo >= this.nextSeq + count - 1
  }

  /** The next seq; the caller made sure it is reserved ({@link ready} or {@link reserve}). */
  take(): number {
    return this.nextSeq++
  }

  /**
   * Persist a new block of seqs unless at least `count` are still reserved — by default two: an
   * update and the snapshot a compaction may seal right after it; a snapshot in parts asks for
   * one per part.
   */
  reserve(count = 2): Promise<void> {
    if (this.hasReserved(count)) return Promise.resolve()
    this.reserving ??= (async () => {
      const upTo = this.nextSeq + Math.max(SEQ_BLOCK, count)
      await this.save(encodeReservation(upTo))
      this.reservedUpTo = upTo
    })().finally(() => {
      this.reserving = undefined
    })
    return this.reserving
  }
}

/** The record for a reservation up to `reservedUpTo`. */
export function encodeReservation(reservedUpTo: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, META_VERSION)
  encoding.writeVarUint(enc, reservedUpTo)
  return encoding.toUint8Array(enc)
}

/** The reservation a record holds; `undefined` when the record is damaged (wrong version, truncated, trailing bytes, out of range). */
export function decodeReservation(bytes: Uint8Array): number | undefined {
  try {
    const dec = decoding.createDecoder(bytes)
    if (decoding.readUint8(dec) !== META_VERSION) return undefined
    const reserved = decoding.readVarUint(dec)
    if (decoding.hasContent(dec) || !Number.isSafeInteger(reserved) || reserved > MAX_RESERVED_SEQ) return undefined
    return reserved
  } catch {
    return undefined
  }
}
