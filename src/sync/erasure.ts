/**
 * Telling an honest compaction from an erasure (WIRE.md "Sealed log", erasure and repair).
 *
 * Both are plain Yjs deletes of sealed-log entries, and neither is authenticated: anyone in the
 * room can issue one. A device never loses what it applied either way (its checkpoint is the
 * authority), but other devices — and new ones — learn only what the log still yields. So when
 * entries this device applied are deleted by someone else, it checks whether a snapshot it
 * applied, still in the log, *contains* each of them: the snapshot's state vector reaches at least
 * the end of every Yjs client range the entry carries. An honest compaction pushes such a snapshot
 * in the same transaction; an erasure does not. The claim is checked on the bytes themselves, not
 * taken from the snapshot's coverage list, so a forged coverage claim cannot pass for one.
 *
 * Deletions without such a snapshot are checked again after a short delay (a relay may deliver a
 * compaction's delete before its snapshot), then reported so the replica can republish.
 *
 * @module
 */
import * as Y from 'yjs'
import { unref } from '../util/timers.js'

/** Per Yjs client, the clock just past the last struct (a state vector or an update's end). */
export type Extent = Map<number, number>

/** True when state vector `outer` reaches every end in `inner`. */
export function extentContains(outer: Extent, inner: Extent): boolean {
  for (const [client, end] of inner) if ((outer.get(client) ?? 0) < end) return false
  return true
}

/** The extent of a Yjs v1 update (its structs' ends per client); `undefined` when it does not parse. */
export function updateExtent(update: Uint8Array): Extent | undefined {
  try {
    return Y.parseUpdateMeta(update).to
  } catch {
    return undefined
  }
}

/**
 * Per client, the clock range `[start, end)` a snapshot state holds: from 0 for a whole state,
 * from where the part begins for one part of a state sealed in several (`compactor.ts`).
 */
export interface StateRange {
  start: Extent
  end: Extent
}

/** The {@link StateRange} of a snapshot state; `undefined` when it does not parse. */
export function stateRange(state: Uint8Array): StateRange | undefined {
  try {
    const { from, to } = Y.parseUpdateMeta(state)
    return { start: from, end: to }
  } catch {
    return undefined
  }
}

/**
 * How far the snapshots in a log hold each client's content together: per client, the end of the
 * run of ranges that starts at clock 0 — one whole snapshot, or the parts of one, or both.
 */
export function reachOf(ranges: StateRange[]): Extent {
  const byClient = new Map<number, Array<[number, number]>>()
  for (const { start, end } of ranges) {
    for (const [client, to] of end) {
      const list = byClient.get(client) ?? []
      list.push([start.get(client) ?? 0, to])
      byClient.set(client, list)
    }
  }
  const reach: Extent = new Map()
  for (const [client, list] of byClient) {
    list.sort((a, b) => a[0] - b[0])
    let end = 0
    for (const [from, to] of list) {
      if (from > end) break
      end = Math.max(end, to)
    }
    if (end > 0) reach.set(client, end)
  }
  return reach
}

/**
 * The envelope bytes of sealed-log entries a transaction deleted. Call it from `afterTransaction`:
 * Yjs drops deleted content only after that event.
 */
export function deletedLogEntries(transaction: Y.Transaction, log: Y.Array<Uint8Array>): Uint8Array[] {
  const out: Uint8Array[] = []
  Y.iterateDeletedStructs(transaction, transaction.deleteSet, (struct) => {
    if (!(struct instanceof Y.Item) || struct.parent !== log) return
    for (const content of struct.content.getContent()) if (content instanceof Uint8Array) out.push(content)
  })
  return out
}

/** What an {@link ErasureWatch} needs from its replica. */
export interface ErasureWatchHost {
  /** The extent of an entry this device applied (readable while its content is), or `undefined`. */
  extentOf(bytes: Uint8Array): Extent | undefined
  /** The state vectors of the snapshots this device applied that are still in the log. */
  snapshotExtents(): Extent[]
  /**
   * Entries stayed deleted without a snapshot that contains them. `copies` holds their bytes
   * (copied before Yjs dropped them) as far as the copy budget allowed; `count` is how many.
   */
  erased(event: { count: number; copies: Uint8Array[] }): void
}

interface Suspect {
  extent: Extent | undefined
  copy: Uint8Array | undefined
}

/** Bytes of erased envelopes kept for republishing by a replica that cannot seal snapshots. */
const COPY_BUDGET_BYTES = 4 * 1024 * 1024

/** Watches deletions of applied entries and reports the ones no snapshot accounts for. */
export class ErasureWatch {
  private suspects: Suspect[] = []
  private copiedBytes = 0
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly host: ErasureWatchHost,
    private readonly delayMs: number,
  ) {}

  /** Entries this device applied were deleted by someone else (call from `afterTransaction`). */
  deleted(entries: Uint8Array[]): void {
    const snapshots = this.host.snapshotExtents()
    for (const bytes of entries) {
      const extent = this.host.extentOf(bytes)
      if (extent && snapshots.some((s) => extentContains(s, extent))) continue
      let copy: Uint8Array | undefined
      if (this.copiedBytes + bytes.length <= COPY_BUDGET_BYTES) {
        copy = bytes.slice()
        this.copiedBytes += bytes.length
      }
      this.suspects.push({ extent, copy })
    }
    if (this.suspects.length > 0 && !this.timer) {
      this.timer = setTimeout(() => this.check(), this.delayMs)
      unref(this.timer)
    }
  }

  /** True while deletions wait for their second check. */
  get pending(): boolean {
    return this.suspects.length > 0
  }

  /** Check the suspects against the snapshots in the log now; report what is still unaccounted. */
  check(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    const snapshots = this.host.snapshotExtents()
    const unaccounted = this.suspects.filter((s) => !s.extent || !snapshots.some((sv) => extentContains(sv, s.extent!)))
    this.suspects = []
    this.copiedBytes = 0
    if (unaccounted.length === 0) return
    const copies = unaccounted.flatMap((s) => (s.copy ? [s.copy] : []))
    this.host.erased({ count: unaccounted.length, copies })
  }

  /** Stop; nothing more is reported. */
  close(): void {
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.suspects = []
  }
}
