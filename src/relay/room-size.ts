/**
 * How much an update's deletions shrink a room, without merging it (README.md "The relay",
 * storage quotas).
 *
 * The relay counts a room by its merged size. Applying an update adds at most the update's own
 * bytes; its delete set removes content already in the room, which a merge then drops (the room
 * doc garbage-collects deleted items). Looking those items up costs a binary search per deleted
 * range in the room's struct store — proportional to the update, not to the room — so the quota
 * can be checked on every update without re-encoding the room (which made writes near the quota
 * cost the whole room each, THREAT_MODEL.md).
 *
 * @module
 */
import * as Y from 'yjs'

/** Bytes an item's content takes in an encoded update, roughly: exact for binary entries. */
function contentBytes(item: Y.Item): number {
  const content = item.content
  if (content instanceof Y.ContentBinary) return content.content.byteLength
  if (content instanceof Y.ContentString) return content.str.length
  if (content instanceof Y.ContentDeleted) return 0
  // Other content (JSON, embeds, types) is rare in a sealed log; count one byte per element.
  return item.length
}

/**
 * Bytes of live (not yet deleted) content in `doc` that the delete set of `update` removes.
 * Deletions of items the room does not hold yet count nothing. Throws if `update` does not decode
 * (the relay validated it before).
 */
export function bytesDeletedBy(doc: Y.Doc, update: Uint8Array): number {
  const { ds } = Y.decodeUpdate(update)
  let freed = 0
  for (const [client, ranges] of ds.clients) {
    const structs = doc.store.clients.get(client)
    const last = structs?.[structs.length - 1]
    if (!structs || !last) continue
    const known = last.id.clock + last.length
    for (const { clock, len } of ranges) {
      if (clock >= known) continue
      const end = clock + len
      for (let i = Y.findIndexSS(structs, clock); i < structs.length; i++) {
        const struct = structs[i]!
        const start = struct.id.clock
        if (start >= end) break
        if (!(struct instanceof Y.Item) || struct.deleted) continue
        // A range may cover part of a multi-element item: count that part.
        const overlap = Math.min(end, start + struct.length) - Math.max(clock, start)
        freed += overlap >= struct.length ? contentBytes(struct) : Math.ceil((contentBytes(struct) * overlap) / struct.length)
      }
    }
  }
  return freed
}
