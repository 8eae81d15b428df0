/**
 * The types of `dev.memory` (`memory.ts`): what an app passes in and gets back — inputs, queries,
 * recall hits, reconcile decisions, change events, export and import options and reports.
 *
 * @module
 */
import type { MemoryItem, MemoryKind } from '../crdt/memory.js'
import type { RejectCode as RejectCodeType } from '../crypto/codes.js'

/** Input of `memory.remember`. */
export interface RememberInput {
  text: string
  /** Default `'personal'`. */
  scope?: string
  /** Default `'fact'`. */
  kind?: MemoryKind
  tags?: string[]
  /** 0..1. */
  confidence?: number
  /** Epoch ms from which the fact holds in the world. */
  validFrom?: number
  /** Epoch ms from which it no longer holds. */
  validTo?: number
  /** Epoch ms after which the item disappears on every device (and is erased from sealed logs). */
  expiresAt?: number
  /** A vector of the text, from the host app's embedding model. Stored as float32. */
  embedding?: Float32Array | number[]
  /** The model that produced `embedding`; recall then compares only vectors of the same model. */
  embeddingModel?: string
  /** Link the memory to the conversation it came from (the device is always this one). */
  source?: { sessionId?: string; turnId?: string }
  /** Shorthand for `source.sessionId`. */
  sessionId?: string
  /** Shorthand for `source.turnId`. */
  turnId?: string
}

/** Input of `memory.supersede`: the new version. Omitted kind and tags are inherited. */
export type SupersedeInput = Omit<RememberInput, 'scope'>

/**
 * Fields `memory.update` may change. `null` removes an optional field; `undefined` (or
 * absent) leaves it as it is.
 */
export interface MemoryPatch {
  text?: string
  tags?: string[]
  kind?: MemoryKind
  confidence?: number | null
  validFrom?: number | null
  validTo?: number | null
  expiresAt?: number | null
  embedding?: Float32Array | number[] | null
  embeddingModel?: string | null
}

/** Filters of `memory.list`. */
export interface ListQuery {
  /** One scope; default every scope this device holds. */
  scope?: string
  /** Items carrying every one of these tags. */
  tags?: string[]
  kind?: MemoryKind
  /** Only items true in the world at this time (`validFrom ≤ validAt < validTo`). */
  validAt?: number
  /** Include versions replaced by `supersede` (hidden by default). */
  includeSuperseded?: boolean
  /** Most results; default all (list) or 10 (recall). */
  limit?: number
}

/** Query of `memory.recall`. */
export interface RecallQuery extends ListQuery {
  /** Free text; ranked by full-text relevance (BM25+; prefixes and typos when exact terms find too little). */
  text?: string
  /** A query vector; ranked by cosine similarity against stored embeddings of the same dimension. */
  embedding?: Float32Array | number[]
  /** Compare only with embeddings of this model. */
  embeddingModel?: string
}

/** One recall result with how it ranked. */
export interface RecallHit {
  item: MemoryItem
  /**
   * Text only: the BM25+ score. Embedding only: the cosine similarity. Both: the reciprocal-rank-
   * fusion score `Σ 1/(60 + rank)`. Neither: 0 (newest first).
   */
  score: number
  /** Rank (1-based) and BM25+ score in the full-text list, when it was there. */
  text?: { rank: number; score: number }
  /** Rank (1-based) and cosine similarity in the vector list, when it was there. */
  vector?: { rank: number; similarity: number }
}

/** What the host's reconcile function sees of the new memory (the item it would add). */
export type ReconcileInput = Omit<MemoryItem, 'id' | 'createdAt' | 'updatedAt'>

/** A reconcile answer (mem0's ADD / UPDATE / DELETE→SUPERSEDE / NONE). */
export type ReconcileDecision =
  | { action: 'ADD' }
  | { action: 'UPDATE'; id: string; text?: string }
  | { action: 'SUPERSEDE'; id: string }
  | { action: 'NOOP'; id?: string }

/**
 * Decides how a new memory relates to similar existing ones — typically by asking the host's LLM.
 * The library never calls a model itself.
 */
export type ReconcileFn = (input: ReconcileInput, similar: RecallHit[]) => ReconcileDecision | Promise<ReconcileDecision>

/** Options of `memory.remember`. */
export interface RememberOptions {
  reconcile?: ReconcileFn
  /** How many similar memories (top-k by recall over text and embedding) to show it. Default 5. */
  candidates?: number
}

/** What `memory.remember` did when called with options. */
export interface RememberResult {
  action: ReconcileDecision['action']
  /** The added, updated or new superseding item; for NOOP the existing item named, if any. */
  item: MemoryItem | undefined
  /** UPDATE: the item before; SUPERSEDE: the replaced version. */
  previous?: MemoryItem
}

/** A change to one memory item. */
export interface MemoryChange {
  type: 'added' | 'updated' | 'removed'
  id: string
  scope: string
  /** The item after the change (absent for `removed`). */
  item?: MemoryItem
  /** `local` for writes on this device, `remote` for changes that arrived by sync. */
  origin: 'local' | 'remote'
}

/** Events of `MemoryApi`. */
export interface MemoryEvents {
  change: (event: MemoryChange) => void
}

/** Options of `memory.export`. */
export interface ExportOptions {
  scope: string
  /** Include versions replaced by `supersede`. Default true. */
  includeHistory?: boolean
}

/** A signed JSONL export: iterate its lines (each ends with `\n`), or collect them with `text()`. */
export interface MemoryExport extends AsyncIterable<string> {
  /** The whole file. */
  text(): Promise<string>
}

/**
 * Options of `memory.import`. Files of this device's own account are always trusted;
 * a file of any other account is refused whole (`WrongAccount`) unless named in `trust` or
 * `accountId`.
 */
export interface ImportOptions {
  /** Import into this scope instead of the one each memory names. */
  scope?: string
  /**
   * Accept only files of this account (`WrongAccount` for every line of any other). Naming an
   * account here trusts it, as `trust: [accountId]` does.
   */
  accountId?: string
  /**
   * Other accounts whose files to accept (account ids, 32 lowercase hex characters). Their
   * memories are marked with `source.accountId`, and may not claim this account or its devices,
   * nor link to memories already here (WIRE.md "Memory export").
   */
  trust?: string[]
  /**
   * Also accept `kind: 'instruction'` memories from trusted other accounts (refused with
   * `NotGranted` otherwise). Default false: an instruction steers the assistant.
   */
  allowInstructions?: boolean
}

/** What `memory.import` did. */
export interface ImportReport {
  /** The account the file was exported from (when its header verified). */
  accountId?: string
  /** The device that signed it. */
  signer?: string
  imported: number
  /** Already present (same id) or already expired. */
  skipped: number
  /** Lines refused, with their 1-based line number and `RejectCode`. */
  rejected: Array<{ line: number; code: RejectCodeType; reason: string }>
}
