/**
 * Which sealed-log entries a Yjs update inserts, read from the update alone (with the doc it will
 * be applied to for origins already there). The tampering relay uses it to capture and withhold
 * envelopes by sender; tests use it to see what a relay forwarded.
 *
 * @module
 */
import * as Y from 'yjs'
import { PUBLIC_STATEMENTS_KEY } from '../crdt/registry.js'
import { SEALED_LOG_KEY, sealedLog } from '../crdt/sealed-log.js'
import { describeEnvelope, type EnvelopeInfo } from './sealed-log-tamper.js'

/** Where an item of an outer doc lives. */
type Place = 'log' | 'public' | 'other'

/**
 * The sealed-log entries an update inserts. Binary content is either a log entry or a public
 * statement (the only two shared types of an outer doc, WIRE.md "Sealed log"); an update encodes
 * the parent only for items without a left or right origin, so the others are placed through
 * their origins — in `doc` when already there, else among the update's own items.
 * What cannot be placed counts as an entry when it parses as an envelope.
 */
export function envelopesInUpdate(update: Uint8Array, doc: Y.Doc): EnvelopeInfo[] {
  let structs: Array<Y.Item | Y.GC | Y.Skip>
  try {
    structs = Y.decodeUpdate(update).structs
  } catch {
    return []
  }
  const items = structs.filter((s): s is Y.Item => s instanceof Y.Item)
  if (!items.some((item) => item.content instanceof Y.ContentBinary)) return []
  const byClient = new Map<number, Y.Item[]>()
  for (const item of items) {
    let list = byClient.get(item.id.client)
    if (!list) byClient.set(item.id.client, (list = []))
    list.push(item)
  }
  for (const list of byClient.values()) list.sort((a, b) => a.id.clock - b.id.clock)
  const places = new Map<Y.Item, Place>()
  const locate = (id: Y.ID): Place | undefined => {
    const integrated = integratedItem(doc, id)
    if (integrated) return placeInDoc(doc, integrated)
    const local = findItem(byClient.get(id.client), id.clock)
    return local ? places.get(local) : undefined
  }
  const place = (item: Y.Item): Place | undefined => {
    const integrated = integratedItem(doc, item.id)
    if (integrated) return placeInDoc(doc, integrated)
    if (item.parentSub !== null) return 'public'
    if (typeof item.parent === 'string') {
      return item.parent === SEALED_LOG_KEY ? 'log' : item.parent === PUBLIC_STATEMENTS_KEY ? 'public' : 'other'
    }
    if (item.parent !== null) return 'other'
    for (const ref of [item.origin, item.rightOrigin]) {
      const found = ref ? locate(ref) : undefined
      if (found) return found
    }
    return undefined
  }
  // Origins may point at items of the same update placed later in this order: repeat until stable.
  let unplaced = items
  for (;;) {
    const next: Y.Item[] = []
    for (const item of unplaced) {
      const found = place(item)
      if (found) places.set(item, found)
      else next.push(item)
    }
    if (next.length === 0 || next.length === unplaced.length) break
    unplaced = next
  }
  const out: EnvelopeInfo[] = []
  for (const item of items) {
    if (!(item.content instanceof Y.ContentBinary)) continue
    const where = places.get(item)
    const info = describeEnvelope(item.content.content)
    if (where === 'log' || (where === undefined && info.header !== undefined)) out.push(info)
  }
  return out
}

function integratedItem(doc: Y.Doc, id: Y.ID): Y.Item | undefined {
  const structs = doc.store.clients.get(id.client)
  if (!structs || id.clock >= Y.getState(doc.store, id.client)) return undefined
  try {
    const struct = structs[Y.findIndexSS(structs, id.clock)]
    return struct instanceof Y.Item ? struct : undefined
  } catch {
    return undefined
  }
}

function placeInDoc(doc: Y.Doc, item: Y.Item): Place {
  if (item.parentSub !== null) return 'public'
  // Typed first: a root Yjs created untyped (from an update) gets its items re-parented then.
  const log = sealedLog(doc)
  return item.parent === log ? 'log' : 'other'
}

function findItem(list: Y.Item[] | undefined, clock: number): Y.Item | undefined {
  if (!list) return undefined
  let lo = 0
  let hi = list.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const item = list[mid]!
    if (clock < item.id.clock) hi = mid - 1
    else if (clock >= item.id.clock + item.length) lo = mid + 1
    else return item
  }
  return undefined
}
