/**
 * Applying an update and telling whether some of its content landed already deleted — inserted
 * into a map entry, list or text that this doc had deleted. That happens when the update was
 * written concurrently with a deletion (an edit of a memory another device forgot at the same
 * time): the doc shows nothing of it, yet the envelope that carried it still holds the text.
 */
import * as Y from 'yjs'

interface Range {
  client: number
  clock: number
  end: number
}

/**
 * Apply `update` to `doc` (with `origin`) and report whether content it carries was deleted by
 * this doc's state rather than by the update itself. Throws as `Y.applyUpdate` does.
 */
export function applyNotingLandedDeleted(doc: Y.Doc, update: Uint8Array, origin: unknown): boolean {
  let transaction: Y.Transaction | undefined
  doc.transact((tr) => {
    Y.applyUpdate(doc, update, origin)
    transaction = tr
  }, origin)
  // After the transaction: Yjs has integrated what it could and collected garbage, so content
  // whose parent was gone is a GC struct and content it deleted is a deleted item.
  const landed = transaction ? deadOnArrival(doc, transaction) : []
  if (landed.length === 0) return false
  // Only text the update carries alive counts: not what it deleted itself (the sender overwrote
  // its own fresh value in one batch), nor what it sent as already deleted.
  const { structs, ds } = Y.decodeUpdate(update)
  for (const struct of structs) {
    if (!(struct instanceof Y.Item) || struct.content instanceof Y.ContentDeleted) continue
    const { client, clock } = struct.id
    const end = clock + struct.length
    for (const range of landed) {
      if (range.client !== client || range.end <= clock || range.clock >= end) continue
      const from = Math.max(clock, range.clock)
      const to = Math.min(end, range.end)
      if (!covers(ds.clients.get(client) ?? [], from, to)) return true
    }
  }
  return false
}

/** Ranges the transaction added to the doc that are deleted or garbage-collected now. */
function deadOnArrival(doc: Y.Doc, transaction: Y.Transaction): Range[] {
  const out: Range[] = []
  for (const [client, after] of transaction.afterState) {
    const before = transaction.beforeState.get(client) ?? 0
    if (after <= before) continue
    const structs = doc.store.clients.get(client)
    if (!structs) continue
    for (let i = Y.findIndexSS(structs, before); i < structs.length; i++) {
      const struct = structs[i]!
      if (struct.id.clock >= after) break
      if (struct instanceof Y.GC || (struct instanceof Y.Item && struct.deleted)) {
        out.push({ client, clock: Math.max(struct.id.clock, before), end: struct.id.clock + struct.length })
      }
    }
  }
  return out
}

/** True when the delete items (unsorted, possibly overlapping) cover all of [clock, end). */
function covers(items: ReadonlyArray<{ clock: number; len: number }>, clock: number, end: number): boolean {
  const sorted = [...items].sort((a, b) => a.clock - b.clock)
  let reached = clock
  for (const item of sorted) {
    if (item.clock > reached) break
    reached = Math.max(reached, item.clock + item.len)
    if (reached >= end) return true
  }
  return reached >= end
}

/**
 * True when `update` carries live content for an item `doc` has deleted — a snapshot sealed
 * without a deletion this doc applied (another device forgot a memory while the sealer had not
 * heard of it yet): the doc shows none of it, the envelope holds its text.
 */
export function carriesDeletedContent(doc: Y.Doc, update: Uint8Array): boolean {
  let decoded: ReturnType<typeof Y.decodeUpdate>
  try {
    decoded = Y.decodeUpdate(update)
  } catch {
    // A redundant snapshot's state is never applied, so nothing checked it decodes (found by the
    // fuzz campaign): a state that does not decode carries no text to erase.
    return false
  }
  const { structs, ds } = decoded
  for (const struct of structs) {
    if (!(struct instanceof Y.Item) || struct.content instanceof Y.ContentDeleted) continue
    const { client, clock } = struct.id
    const known = Y.getState(doc.store, client)
    if (known <= clock) continue
    if (covers(ds.clients.get(client) ?? [], clock, clock + struct.length)) continue
    const here = doc.store.clients.get(client)
    if (!here) continue
    // Every struct of ours overlapping the carried range: any deleted one means text carried
    // that is gone here.
    const end = Math.min(clock + struct.length, known)
    for (let i = Y.findIndexSS(here, clock); i < here.length && here[i]!.id.clock < end; i++) {
      const ours = here[i]!
      if (ours instanceof Y.GC || (ours instanceof Y.Item && ours.deleted)) return true
    }
  }
  return false
}
