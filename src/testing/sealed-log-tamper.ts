/**
 * Tampering with a sealed log the way a relay or a member device can: plain Yjs operations on an
 * outer doc (the `log` array of envelopes, WIRE.md "Sealed log", and — in the registry room — the
 * `public` map of statements). No key is needed for any of them, which is the point: everything
 * here is within reach of whoever holds the outer doc (THREAT_MODEL.md, "The relay").
 *
 * The functions work on any outer doc — a tampering relay's server copy
 * (`createTamperingRelay().room(id).doc`), the loopback hub's copy (`net.relayDoc(id)`), or a
 * device's own replica — and each runs in one Yjs transaction whose origin names the operation
 * ({@link TamperOrigin}), so observers can tell a tampering change from a sync.
 *
 * @module
 */
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import { sealedLog } from '../crdt/sealed-log.js'
import { publicStatementsMap } from '../crdt/registry.js'
import { parseEnvelope, type ParsedEnvelope } from '../crypto/envelope.js'
import { ContextSyncError } from '../errors.js'

/** Transaction origins of the tamper operations, one per kind of operation. */
export const TamperOrigin = {
  /** {@link deleteEntries}, {@link deleteRange}. */
  delete: Symbol('contextsync/tamper/delete'),
  /** {@link truncate}. */
  truncate: Symbol('contextsync/tamper/truncate'),
  /** {@link wipe}. */
  wipe: Symbol('contextsync/tamper/wipe'),
  /** {@link injectEntries}. */
  inject: Symbol('contextsync/tamper/inject'),
  /** {@link replayEntries}. */
  replay: Symbol('contextsync/tamper/replay'),
  /** {@link reorderEntries}. */
  reorder: Symbol('contextsync/tamper/reorder'),
  /** {@link moveEntries} (both the deletion and the insertion). */
  move: Symbol('contextsync/tamper/move'),
  /** {@link deletePublicStatements}, {@link setPublicStatement}. */
  statements: Symbol('contextsync/tamper/statements'),
} as const

/** Thrown when a tamper operation is called with arguments that make no sense (a bad index; code `invalid-argument`). */
export class TamperError extends ContextSyncError {
  override readonly name = 'TamperError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-argument', message, options)
  }
}

/** Envelope bytes with their structure, as far as {@link parseEnvelope} can read it. */
export interface EnvelopeInfo {
  /** A copy of the bytes (safe to keep after the entry is deleted and garbage-collected). */
  bytes: Uint8Array
  /** The parsed header, or `undefined` when the bytes are not a structurally valid envelope. */
  header: ParsedEnvelope | undefined
}

/** One entry of a sealed log. */
export interface SealedLogEntry extends EnvelopeInfo {
  /** Position in the `log` array at the time it was listed. */
  index: number
}

/** One entry of the registry room's public statement map. */
export interface PublicStatement {
  key: string
  /** A copy of the statement bytes. */
  bytes: Uint8Array
}

/** Describe envelope bytes (never throws; junk gets `header: undefined`). */
export function describeEnvelope(bytes: Uint8Array): EnvelopeInfo {
  const copy = bytes.slice()
  const parsed = parseEnvelope(copy)
  return { bytes: copy, header: parsed.ok ? parsed.value : undefined }
}

/** Every entry of the doc's sealed log, in array order. */
export function listEntries(doc: Y.Doc): SealedLogEntry[] {
  return sealedLog(doc)
    .toArray()
    .map((bytes, index) => ({ index, ...describeEnvelope(bytes) }))
}

/** Delete every entry `match` selects, in one transaction. Returns the deleted entries. */
export function deleteEntries(doc: Y.Doc, match: (entry: SealedLogEntry) => boolean): SealedLogEntry[] {
  return deleteWhere(doc, match, TamperOrigin.delete)
}

/** Delete entries `[start, end)` (end defaults to the end of the log). Returns the deleted entries. */
export function deleteRange(doc: Y.Doc, start: number, end?: number): SealedLogEntry[] {
  const length = sealedLog(doc).length
  const stop = end ?? length
  if (!Number.isInteger(start) || !Number.isInteger(stop) || start < 0 || stop < start || stop > length) {
    throw new TamperError(`deleteRange(${start}, ${String(end)}) is outside a log of ${length} entries`)
  }
  return deleteWhere(doc, (entry) => entry.index >= start && entry.index < stop, TamperOrigin.delete)
}

/** Keep the first `length` entries and delete the rest. Returns the deleted entries. */
export function truncate(doc: Y.Doc, length: number): SealedLogEntry[] {
  if (!Number.isInteger(length) || length < 0) throw new TamperError(`truncate length must be an integer ≥ 0, got ${length}`)
  return deleteWhere(doc, (entry) => entry.index >= length, TamperOrigin.truncate)
}

/** What {@link wipe} removed. */
export interface WipeResult {
  entries: SealedLogEntry[]
  statements: PublicStatement[]
}

/**
 * Delete every sealed-log entry and every public statement (registry room), in one transaction:
 * a relay that throws everything away while its clients watch.
 */
export function wipe(doc: Y.Doc): WipeResult {
  const entries = listEntries(doc)
  const statements = listPublicStatements(doc)
  Y.transact(
    doc,
    () => {
      const log = sealedLog(doc)
      if (log.length > 0) log.delete(0, log.length)
      const map = publicStatementsMap(doc)
      for (const { key } of statements) map.delete(key)
    },
    TamperOrigin.wipe,
  )
  return { entries, statements }
}

/**
 * Insert envelope bytes (forged, junk, or taken from elsewhere) at `at` (default: the end), in
 * array order, in one transaction.
 */
export function injectEntries(doc: Y.Doc, entries: readonly Uint8Array[], at?: number): void {
  insert(doc, entries, at, TamperOrigin.inject)
}

/**
 * Append previously captured envelope bytes again — after they were deleted (resurrection) or
 * while they are still there (duplicates) — in one transaction.
 */
export function replayEntries(doc: Y.Doc, entries: readonly Uint8Array[]): void {
  insert(doc, entries, undefined, TamperOrigin.replay)
}

/**
 * Delete every entry and insert the same bytes again in another order, drawn from `seed` with
 * `lib0/prng` (never the original order when the log holds two or more distinct positions).
 * Returns the permutation: `order[i]` is the old index of the entry now at `i`.
 */
export function reorderEntries(doc: Y.Doc, seed: number): number[] {
  const entries = listEntries(doc)
  const order = entries.map((_, i) => i)
  const random = prng.create(seed)
  for (let i = order.length - 1; i > 0; i--) {
    const j = prng.uint32(random, 0, i)
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  // A shuffle may come out as the identity; rotating by one still depends only on the seed.
  if (order.length > 1 && order.every((old, i) => old === i)) order.push(order.shift()!)
  Y.transact(
    doc,
    () => {
      const log = sealedLog(doc)
      log.delete(0, log.length)
      log.insert(
        0,
        order.map((old) => entries[old]!.bytes),
      )
    },
    TamperOrigin.reorder,
  )
  return order
}

/**
 * Move the entries `match` selects from one outer doc to the end of another (e.g. from one
 * room's log into another room's): deleted in `from`, appended in `to`. Returns the moved entries.
 */
export function moveEntries(from: Y.Doc, to: Y.Doc, match: (entry: SealedLogEntry) => boolean): SealedLogEntry[] {
  const moved = deleteWhere(from, match, TamperOrigin.move)
  insert(
    to,
    moved.map((entry) => entry.bytes),
    undefined,
    TamperOrigin.move,
  )
  return moved
}

/** Every statement in the registry room's public map (empty in other rooms). */
export function listPublicStatements(doc: Y.Doc): PublicStatement[] {
  const out: PublicStatement[] = []
  for (const [key, bytes] of publicStatementsMap(doc).entries()) {
    if (bytes instanceof Uint8Array) out.push({ key, bytes: bytes.slice() })
  }
  return out
}

/** Delete the public statements `match` selects (e.g. a lockbox, a pass), in one transaction. */
export function deletePublicStatements(doc: Y.Doc, match: (statement: PublicStatement) => boolean): PublicStatement[] {
  const doomed = listPublicStatements(doc).filter(match)
  Y.transact(
    doc,
    () => {
      const map = publicStatementsMap(doc)
      for (const { key } of doomed) map.delete(key)
    },
    TamperOrigin.statements,
  )
  return doomed
}

/** Write (or overwrite) one public statement — e.g. put back an old pass or revocation. */
export function setPublicStatement(doc: Y.Doc, key: string, bytes: Uint8Array): void {
  Y.transact(doc, () => publicStatementsMap(doc).set(key, bytes.slice()), TamperOrigin.statements)
}

function deleteWhere(doc: Y.Doc, match: (entry: SealedLogEntry) => boolean, origin: symbol): SealedLogEntry[] {
  const doomed = listEntries(doc).filter(match)
  if (doomed.length === 0) return doomed
  Y.transact(
    doc,
    () => {
      const log = sealedLog(doc)
      // Back to front, one delete per run of adjacent indices, so earlier indices stay valid.
      let i = doomed.length - 1
      while (i >= 0) {
        let start = doomed[i]!.index
        const end = start + 1
        while (i > 0 && doomed[i - 1]!.index === start - 1) {
          i--
          start--
        }
        log.delete(start, end - start)
        i--
      }
    },
    origin,
  )
  return doomed
}

function insert(doc: Y.Doc, entries: readonly Uint8Array[], at: number | undefined, origin: symbol): void {
  for (const bytes of entries) {
    if (!(bytes instanceof Uint8Array)) throw new TamperError('sealed-log entries must be Uint8Array')
  }
  const log = sealedLog(doc)
  const index = at ?? log.length
  if (!Number.isInteger(index) || index < 0 || index > log.length) {
    throw new TamperError(`cannot insert at ${index} into a log of ${log.length} entries`)
  }
  if (entries.length === 0) return
  Y.transact(
    doc,
    () =>
      log.insert(
        index,
        entries.map((bytes) => bytes.slice()),
      ),
    origin,
  )
}
