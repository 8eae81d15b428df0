/**
 * Public registry statements this device relies on, kept with its registry checkpoint (WIRE.md
 * "Device store layout"), and put back when someone deletes them from the registry room.
 *
 * The registry room's public map lives next to the sealed log in the outer doc, so anyone in the
 * room — the relay included — can delete its entries with a plain Yjs delete. A member's own
 * lockboxes live *only* there: losing them would lock it out of every scope after a restart. So
 * every public statement the registry verified is kept locally, restored before the public map is
 * read on load, and re-published (statements are root-signed, so any device may put one back)
 * when a deletion removes one — reported as `Erased` (14) with `source: 'statement'`.
 *
 * ```
 * u8 version = 1 · varuint n · (varstring key · varbytes statement)ⁿ
 * ```
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import type * as Y from 'yjs'
import { unref } from '../util/timers.js'

const KEPT_VERSION = 1

/** Encode kept statements (key → root-signed statement bytes). */
export function encodeKeptStatements(statements: Map<string, Uint8Array>): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, KEPT_VERSION)
  encoding.writeVarUint(enc, statements.size)
  for (const [key, bytes] of statements) {
    encoding.writeVarString(enc, key)
    encoding.writeVarUint8Array(enc, bytes)
  }
  return encoding.toUint8Array(enc)
}

/**
 * Decode what {@link encodeKeptStatements} wrote; an empty list when the bytes do not parse (the
 * statements are verified again on ingest either way).
 */
export function decodeKeptStatements(bytes: Uint8Array | undefined): Array<[string, Uint8Array]> {
  if (!bytes || bytes.length === 0) return []
  try {
    const dec = decoding.createDecoder(bytes)
    if (decoding.readUint8(dec) !== KEPT_VERSION) return []
    const count = decoding.readVarUint(dec)
    if (count > bytes.length) return []
    const out: Array<[string, Uint8Array]> = []
    for (let i = 0; i < count; i++) out.push([decoding.readVarString(dec), decoding.readVarUint8Array(dec).slice()])
    return decoding.hasContent(dec) ? [] : out
  } catch {
    return []
  }
}

/** Options of {@link watchPublicDeletions}. */
export interface PublicDeletionWatch {
  /** The kept statement for `key`, if this device verified one. */
  kept(key: string): Uint8Array | undefined
  /** Report how many kept statements were deleted (they are being put back). */
  erased(count: number): void
  /** How long to wait before putting them back. */
  delayMs: number
  /** Origin of this device's own writes to the map (ignored). */
  ownOrigin: unknown
}

/**
 * Watch the public map for deletions of statements this device kept, and put them back after
 * `delayMs` (unless someone else did). Returns a function that stops watching.
 */
export function watchPublicDeletions(map: Y.Map<Uint8Array>, options: PublicDeletionWatch): () => void {
  const pending = new Set<string>()
  let timer: ReturnType<typeof setTimeout> | undefined
  const restore = (): void => {
    timer = undefined
    const missing = [...pending].filter((key) => !map.has(key) && options.kept(key) !== undefined)
    pending.clear()
    if (missing.length === 0) return
    options.erased(missing.length)
    map.doc?.transact(() => {
      for (const key of missing) map.set(key, options.kept(key)!)
    }, options.ownOrigin)
  }
  const observer = (event: Y.YMapEvent<Uint8Array>, transaction: Y.Transaction): void => {
    if (transaction.origin === options.ownOrigin) return
    for (const [key, change] of event.changes.keys) {
      if (change.action === 'delete' && options.kept(key) !== undefined) pending.add(key)
    }
    if (pending.size > 0 && !timer) {
      timer = setTimeout(restore, options.delayMs)
      unref(timer)
    }
  }
  map.observe(observer)
  return () => {
    map.unobserve(observer)
    if (timer) clearTimeout(timer)
  }
}
