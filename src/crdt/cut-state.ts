/**
 * A doc's state as several Yjs updates under a byte budget, cut between items.
 *
 * `Y.encodeStateAsUpdate` writes everything a peer lacks as one update; past a few MiB that one
 * update is too large for a frame a relay or a Bluetooth link accepts, or for one envelope. Yjs has
 * no API to write part of a client's clock range, but its struct store holds each client's items
 * in clock order and every item writes itself (`struct.write`), so this module walks the store
 * and writes whole items into updates of at most the budget — an ordinary v1 update each (struct
 * groups, then an empty delete set) — followed by one update with the rest: the delete set and
 * whatever is pending, exactly what `encodeStateAsUpdate` would add. Applied in any order, the
 * pieces give the same doc as the single update (updates commute; a piece whose items build on
 * another's waits as pending until it arrives). In a sealed log every envelope is its own item
 * (`ContentBinary` items never merge), so there the cut points are whole envelopes. One item
 * larger than the budget goes alone in its own piece: no budget cuts it.
 *
 * Plain Yjs, no crypto, no I/O.
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'

/** Bytes a piece spends beyond its items: client count, struct count, client id, clock, delete set. */
const PIECE_OVERHEAD = 24

/** A doc's state (or part of it) as pieces. */
export interface CutState {
  /** Yjs v1 updates in order; the last holds the delete set and pending structs (maybe nothing else). */
  updates: Uint8Array[]
  /**
   * Per update, whether a smaller budget would cut it further: false for a piece holding a single
   * item and for the last one, which no budget shrinks.
   */
  splittable: boolean[]
  /** Encoded size of the largest item written. */
  largestItemBytes: number
}

/**
 * What `doc` has beyond `stateVector` (default: everything), as pieces of at most `maxBytes`
 * each unless one item alone is larger.
 */
export function cutState(doc: Y.Doc, maxBytes: number, stateVector?: Uint8Array): CutState {
  const known = stateVector ? Y.decodeStateVector(stateVector) : new Map<number, number>()
  const ranges = new Map<number, number>()
  for (const [client, structs] of doc.store.clients) {
    const from = known.get(client) ?? 0
    if (structs.length > 0 && Y.getState(doc.store, client) > from) ranges.set(client, from)
  }
  // What a state vector cannot select by clock: the whole delete set, and structs still pending.
  return cut(doc, ranges, maxBytes, () => Y.encodeStateAsUpdate(doc, Y.encodeStateVector(doc)))
}

/**
 * `update`, a transaction `doc` has just applied (its `update` event), as pieces: the doc's items
 * of the update's clock ranges, then the update's delete set.
 */
export function cutTransaction(doc: Y.Doc, update: Uint8Array, maxBytes: number): CutState {
  const { from } = Y.parseUpdateMeta(update)
  const ranges = new Map<number, number>()
  for (const [client, clock] of from) if (Y.getState(doc.store, client) > clock) ranges.set(client, clock)
  // Every struct of the update is in the doc now, so diffing against the doc's state keeps only
  // the update's delete set (and whatever of it the doc holds as pending).
  return cut(doc, ranges, maxBytes, () => Y.diffUpdate(update, Y.encodeStateVector(doc)))
}

/** A run of one client's structs, written in clock order, that goes into one piece. */
interface Run {
  client: number
  clock: number
  count: number
  body: encoding.Encoder
}

/** A run header: struct count, client id and first clock, each a varuint (at most). */
const RUN_HEADER_BYTES = 16

/**
 * Collects runs until the budget is spent, then writes them as one update. Structs are written
 * straight into their run's body (one encoder per run, not per struct); the one that takes a
 * piece past the budget is moved to the next piece.
 */
class PieceBuilder {
  private runs: Run[] = []
  private bytes = 0
  private items = 0
  private readonly writer = new Y.UpdateEncoderV1()
  readonly updates: Uint8Array[] = []
  readonly splittable: boolean[] = []
  largestItemBytes = 0

  constructor(private readonly budget: number) {}

  add(client: number, clock: number, struct: Y.Item | Y.GC | Y.Skip, offset: number): void {
    let run = this.runs[this.runs.length - 1]
    const fresh = !run || run.client !== client
    if (fresh) {
      run = { client, clock, count: 0, body: encoding.createEncoder() }
      this.runs.push(run)
      this.bytes += RUN_HEADER_BYTES
    }
    const before = encoding.length(run!.body)
    this.writer.restEncoder = run!.body
    struct.write(this.writer, offset)
    const size = encoding.length(run!.body) - before
    this.largestItemBytes = Math.max(this.largestItemBytes, size)
    if (this.items > 0 && this.bytes + size > this.budget) return this.spill(run!, client, clock, before, size)
    run!.count += 1
    this.bytes += size
    this.items += 1
  }

  /** The struct just written (from `before` in `run`'s body) starts the next piece. */
  private spill(run: Run, client: number, clock: number, before: number, size: number): void {
    const written = encoding.toUint8Array(run.body)
    if (run.count === 0) {
      this.runs.pop()
    } else {
      run.body = encoding.createEncoder()
      encoding.writeUint8Array(run.body, written.subarray(0, before))
    }
    this.flush()
    const next: Run = { client, clock, count: 1, body: encoding.createEncoder() }
    encoding.writeUint8Array(next.body, written.subarray(before))
    this.runs.push(next)
    this.bytes = RUN_HEADER_BYTES + size
    this.items = 1
  }

  flush(): void {
    if (this.items === 0) return
    const encoder = new Y.UpdateEncoderV1()
    encoding.writeVarUint(encoder.restEncoder, this.runs.length)
    for (const run of this.runs) {
      encoding.writeVarUint(encoder.restEncoder, run.count)
      encoder.writeClient(run.client)
      encoding.writeVarUint(encoder.restEncoder, run.clock)
      encoding.writeUint8Array(encoder.restEncoder, encoding.toUint8Array(run.body))
    }
    // An empty delete set: the deletions travel in the last piece.
    encoding.writeVarUint(encoder.restEncoder, 0)
    this.updates.push(encoder.toUint8Array())
    this.splittable.push(this.items > 1)
    this.runs = []
    this.bytes = 0
    this.items = 0
  }
}

/**
 * Write each client's structs from its clock in `ranges` on, in whole items, into updates of at
 * most the budget; then the `rest` update. Clients go highest id first, as Yjs writes them.
 */
function cut(doc: Y.Doc, ranges: Map<number, number>, maxBytes: number, rest: () => Uint8Array): CutState {
  const builder = new PieceBuilder(Math.max(1, maxBytes - PIECE_OVERHEAD))
  for (const [client, from] of [...ranges].sort((a, b) => b[0] - a[0])) {
    const structs = doc.store.clients.get(client) ?? []
    const start = Math.max(from, structs[0]?.id.clock ?? 0)
    for (let i = Y.findIndexSS(structs, start); i < structs.length; i++) {
      const struct = structs[i]!
      // Only the first struct can begin before `start` (the receiver has part of it).
      const offset = Math.max(0, start - struct.id.clock)
      builder.add(client, struct.id.clock + offset, struct, offset)
    }
  }
  builder.flush()
  return { updates: [...builder.updates, rest()], splittable: [...builder.splittable, false], largestItemBytes: builder.largestItemBytes }
}
