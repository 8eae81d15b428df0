/**
 * The campaign's model: what the simulated person did, and so what must hold afterwards.
 *
 * Every write carries a unique *marker* (`cs<seed>n<k>q`, ASCII, so it can be searched for in
 * decrypted bytes). For each write the model keeps where it ended in the writer's inner doc (Yjs
 * client and clock) and the writer's state vector just before it, which gives causality without
 * trusting any device: write B *saw* write A when B's state vector before B covers A's end.
 *
 * ## What "must hold" means, precisely
 *
 * - **Acknowledged**: the promise of the write (`remember`, `update`, `supersede`, `append`; a
 *   stream's chunks and a session's title with the promise that ended / first appended to it)
 *   resolved. Nothing else counts.
 * - **Required** (check "acknowledged"): an acknowledged write must be present on every honest
 *   device that holds its scope at the end, unless
 *   1. its memory was forgotten (any `forget` naming its id, by anyone, acknowledged or not — a
 *      concurrent forget may win);
 *   2. its writer was later removed from the scope (revoked, or the scope narrowed away from its
 *      kind) and the removing owner had not integrated the write when it removed the writer —
 *      the revocation's cutoff is what the owner had applied (WIRE.md "Signed statements",
 *      THREAT_MODEL.md "Known limits": such envelopes are dropped); writes issued after a
 *      removal of their writer are never required;
 *   3. the device is not honest (revoked), or does not hold the scope at the end (narrowed away).
 *   A memory's text may also have been overwritten: the text a device shows must be one that was
 *   written to that memory, and not one that a required write was issued after seeing.
 * - **Forgotten** (check "forgotten"): a *binding* acknowledged `forget` makes forgotten every
 *   marker written to the forgotten ids that the forgetting device had integrated when it called
 *   `forget` (its compaction covers exactly what it applied, WIRE.md "Sealed log"). A forget is
 *   binding unless its device was later removed from the scope and the removing owner still held
 *   the memory at that moment (the forget's envelopes may then be refused as past the cutoff).
 * - **Post-removal** (check "revoked-decrypts"): a marker written in a removed scope by a device
 *   other than the removed one, issued while the writer already knew of the removal (its
 *   registry showed the revocation, or that the device no longer holds the scope). A device that
 *   did not know yet (partitioned) writes under the keys it has; that is not a leak it could avoid.
 *
 * Narrowing only ever drops member kinds, and the model keeps the dropped kinds per scope
 * globally, so every later definition drops at least as much as every earlier one: a removal is
 * never undone by a concurrent definition (the newest `definedAt` wins, WIRE.md).
 *
 * @module
 */
import * as Y from 'yjs'

/** The simulated devices: two owners and two members. */
export type DeviceName = 'phone' | 'pc' | 'car' | 'glasses'

/** Every device name, owners first. */
export const DEVICE_NAMES: readonly DeviceName[] = ['phone', 'pc', 'car', 'glasses']

/** The registry room's scope name in the model (the library's `REGISTRY_SCOPE`). */
export const REGISTRY = '@registry'

/** Where a write ended in its writer's inner doc. */
export interface YjsMark {
  client: number
  clock: number
}

/** What a write wrote. */
export type WriteKind = 'remember' | 'update' | 'supersede' | 'title' | 'turn' | 'chunk'

/** One write the simulated person made, with a unique marker in its text. */
export interface WriteRecord {
  n: number
  marker: string
  kind: WriteKind
  device: DeviceName
  scope: string
  /** The memory it created or changed (memory writes). */
  memoryId?: string
  /** The session it wrote to (title, turn, chunk). */
  sessionId?: string
  step: number
  /** End of the write in the writer's inner doc. */
  mark: YjsMark
  /** The writer's inner state vector before the write. */
  before: Map<number, number>
  acked: boolean
  /** The write's promise settled (resolved or rejected). */
  settled: boolean
  /** Removals of its writer that may drop it (see the module docs, "Required" 2). */
  droppedBy: Set<number>
  /** Removals its writer knew of when it wrote (see "Post-removal"). */
  knew: Set<number>
}

/** One `memory.forget` call. */
export interface ForgetRecord {
  n: number
  device: DeviceName
  scope: string
  ids: string[]
  step: number
  /** The forgetting device's inner state vector before the forget. */
  before: Map<number, number>
  acked: boolean
  settled: boolean
  /** See the module docs ("Forgotten"). */
  binding: boolean
}

/** A device losing access: revoked (every scope it held and the registry) or narrowed out of one scope. */
export interface Removal {
  id: number
  kind: 'revoke' | 'narrow'
  target: DeviceName
  targetId: string
  by: DeviceName
  /** Scope names (the registry as {@link REGISTRY}). */
  scopes: string[]
  step: number
  acked: boolean
  /**
   * Per device, per room: the highest seq that device had sealed there when it first knew of the
   * removal. Its envelopes with a higher seq were sealed knowing (never for rooms absent here).
   */
  knownAt: Map<DeviceName, Map<string, number>>
}

/** True when state vector `sv` covers the end of a write. */
export function integrated(sv: Map<number, number>, mark: YjsMark): boolean {
  return (sv.get(mark.client) ?? 0) >= mark.clock
}

/** A doc's state vector as a map. */
export function stateVector(doc: Y.Doc): Map<number, number> {
  return Y.decodeStateVector(Y.encodeStateVector(doc))
}

/** Where the doc's own client is now (the end of what it just wrote). */
export function markOf(doc: Y.Doc): YjsMark {
  return { client: doc.clientID, clock: Y.getState(doc.store, doc.clientID) }
}

/** Markers found in bytes (decrypted envelope content, checkpoint state, raw store bytes). */
export function markersIn(bytes: Uint8Array): string[] {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1').match(MARKER) ?? []
}

const MARKER = /cs\d+n\d+q/g

/** Text writes on memories (what can be a memory's `text`). */
const TEXT_WRITES: ReadonlySet<WriteKind> = new Set(['remember', 'update', 'supersede'])

/** The model of one seed's run. */
export class Model {
  readonly writes: WriteRecord[] = []
  readonly forgets: ForgetRecord[] = []
  readonly removals: Removal[] = []
  /** Member kinds dropped from each scope so far (only grows). */
  readonly narrowed = new Map<string, Set<string>>()
  private readonly markers = new Map<string, WriteRecord>()
  private counter = 0

  constructor(readonly seed: number) {}

  /** A fresh marker. */
  marker(): string {
    return `cs${this.seed}n${++this.counter}q`
  }

  /** Record a write; returns it (its promise handlers set `acked`/`settled`). */
  addWrite(input: Omit<WriteRecord, 'n' | 'acked' | 'settled' | 'droppedBy' | 'knew'>, knew: Set<number>): WriteRecord {
    const write: WriteRecord = { ...input, n: this.writes.length + 1, acked: false, settled: false, droppedBy: new Set(), knew }
    // A writer already removed from the scope (it may not know yet) writes nothing anyone must keep.
    for (const removal of this.removalsOf(write.device, write.scope)) write.droppedBy.add(removal.id)
    this.writes.push(write)
    this.markers.set(write.marker, write)
    return write
  }

  /** Record a forget. */
  addForget(input: Omit<ForgetRecord, 'n' | 'acked' | 'settled' | 'binding'>): ForgetRecord {
    const forget: ForgetRecord = { ...input, n: this.forgets.length + 1, acked: false, settled: false, binding: true }
    if (this.removalsOf(forget.device, forget.scope).length > 0) forget.binding = false
    this.forgets.push(forget)
    return forget
  }

  /**
   * Record a removal before the owner performs it, deciding which of the target's writes and
   * forgets it may drop from what the removing owner has integrated (`ownerState(scope)`: its
   * inner doc of that scope, `undefined` when it holds none).
   */
  addRemoval(input: Omit<Removal, 'id' | 'acked' | 'knownAt'>, ownerState: (scope: string) => Y.Doc | undefined): Removal {
    const removal: Removal = { ...input, id: this.removals.length + 1, acked: false, knownAt: new Map() }
    for (const scope of removal.scopes) {
      const doc = ownerState(scope)
      const sv = doc ? stateVector(doc) : new Map<number, number>()
      for (const write of this.writes) {
        if (write.device === removal.target && write.scope === scope && !integrated(sv, write.mark)) write.droppedBy.add(removal.id)
      }
      for (const forget of this.forgets) {
        if (forget.device !== removal.target || forget.scope !== scope) continue
        const memories = doc?.getMap('memories')
        if (!doc || forget.ids.some((id) => memories?.has(id))) forget.binding = false
      }
    }
    this.removals.push(removal)
    return removal
  }

  /** Removals of `device` that cover `scope`. */
  removalsOf(device: DeviceName, scope: string): Removal[] {
    return this.removals.filter((r) => r.target === device && r.scopes.includes(scope))
  }

  /** True when `device` was revoked (a revocation was recorded, performed or not). */
  revoked(device: DeviceName): boolean {
    return this.removals.some((r) => r.kind === 'revoke' && r.target === device)
  }

  /** Ids named by any forget. */
  forgottenIds(): Set<string> {
    return new Set(this.forgets.flatMap((f) => f.ids))
  }

  /** Whether an acknowledged write must be present (module docs, "Required" 1–2). */
  required(write: WriteRecord): boolean {
    if (!write.acked || write.droppedBy.size > 0) return false
    return write.memoryId === undefined || !this.forgottenIds().has(write.memoryId)
  }

  /** Text writes to one memory. */
  textWritesOf(memoryId: string): WriteRecord[] {
    return this.writes.filter((w) => w.memoryId === memoryId && TEXT_WRITES.has(w.kind))
  }

  /** The write that created a memory (remember or supersede), if it was ours. */
  creationOf(memoryId: string): WriteRecord | undefined {
    return this.writes.find((w) => w.memoryId === memoryId && (w.kind === 'remember' || w.kind === 'supersede'))
  }

  /** The write whose marker is `marker`. */
  byMarker(marker: string): WriteRecord | undefined {
    return this.markers.get(marker)
  }

  /** Markers forgotten for good (module docs, "Forgotten"), with the forget that did it. */
  forgottenMarkers(): Map<string, ForgetRecord> {
    const out = new Map<string, ForgetRecord>()
    for (const forget of this.forgets) {
      if (!forget.acked || !forget.binding) continue
      for (const id of forget.ids) {
        for (const write of this.textWritesOf(id)) if (integrated(forget.before, write.mark)) out.set(write.marker, forget)
      }
    }
    return out
  }

  /** Markers written in a removed scope by others, knowing of the removal. */
  postRemovalMarkers(removal: Removal): Map<string, WriteRecord> {
    const out = new Map<string, WriteRecord>()
    for (const write of this.writes) {
      if (write.device !== removal.target && removal.scopes.includes(write.scope) && write.knew.has(removal.id)) out.set(write.marker, write)
    }
    return out
  }
}
