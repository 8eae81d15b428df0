/**
 * Persists one replica through a {@link StorageAdapter}, so data at rest is ciphertext too.
 * Layout under `['replica', roomId]` (WIRE.md "Device store layout"):
 * - `log/<12-digit counter>` — outer-doc (sealed log) updates, appended as they happen (coalesced
 *   per tick), replaced by one full-state chunk when {@link LogStore.compact} runs;
 * - `state/<12-digit counter>` — the replica checkpoint (sealed at rest): what this device has
 *   applied, written with every full-state rewrite;
 * - `meta` — the replica's small bookkeeping (seq reservation).
 *
 * **No deletion reaches storage without a checkpoint.** Anyone in a room can delete sealed-log
 * entries with a plain Yjs delete, so an update that deletes anything is never stored as a chunk
 * of its own: it is held in memory and stored only inside the next full-state rewrite, which is
 * always written *after* a fresh checkpoint. So after any crash the store yields everything the
 * device had applied: the checkpoint, plus the chunks appended since.
 *
 * Crash safety: compaction writes the checkpoint, then the merged chunk, and only then removes
 * what they replace, so a crash in between leaves duplicates (absorbed by CRDT idempotence),
 * never a loss.
 *
 * @module
 */
import * as Y from 'yjs'
import type { StorageAdapter, StorageKey } from '../adapters/storage.js'
import { StorageError } from '../adapters/storage.js'
import { mergeUpdatesBounded } from './merge.js'

/** Transaction origin used when applying stored updates, so they are not saved again. */
export const STORAGE_ORIGIN = Symbol('contextsync/storage')

const COUNTER_DIGITS = 12
const MAX_DEFERRED_BYTES = 1024 * 1024

interface Waiter {
  resolve: () => void
  reject: (error: unknown) => void
}

/** Options of {@link LogStore}. */
export interface LogStoreOptions {
  /**
   * The sealed checkpoint to store with every full-state rewrite (see the module docs). Without
   * it, deletions are stored with rewrites unguarded (tools and tests that keep no inner state).
   */
  checkpoint?: () => Uint8Array
  /** Merge stored chunks into one after this many appends. Default 128. */
  mergeAfter?: number
  /** Called when a save fails; the bytes stay queued and are retried. */
  onError?: (error: StorageError) => void
  /** First retry delay after a failed save (doubles up to 30 s). Default 250 ms. */
  retryDelayMs?: number
}

/** Keeps an outer doc and its stored chunks in step. */
export class LogStore {
  private counter = 0
  private storedChunks: string[] = []
  private stateCounter = 0
  private storedStates: string[] = []
  private queue: Uint8Array[] = []
  /** Updates that delete something: stored only inside the next full-state rewrite. */
  private deferred: Uint8Array[] = []
  private deferredBytes = 0
  private waiters: Waiter[] = []
  private scheduled = false
  private saving: Promise<void> = Promise.resolve()
  private retryDelay: number
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private closed = false
  private readonly prefix: StorageKey
  private readonly onUpdate = (update: Uint8Array, origin: unknown, _doc: Y.Doc, transaction: Y.Transaction): void => {
    if (origin === STORAGE_ORIGIN || this.closed) return
    if (transaction.deleteSet.clients.size > 0) {
      this.deferred.push(update)
      this.deferredBytes += update.length
      // Bounded: a flood of deletions is folded into a rewrite instead of piling up in memory.
      if (this.deferredBytes > MAX_DEFERRED_BYTES) void this.compact()
      return
    }
    this.queue.push(update)
    this.schedule()
  }

  constructor(
    private readonly storage: StorageAdapter,
    roomId: string,
    private readonly doc: Y.Doc,
    private readonly options: LogStoreOptions = {},
  ) {
    this.prefix = ['replica', roomId]
    this.retryDelay = options.retryDelayMs ?? 250
  }

  /** Load every stored chunk into the doc (one transaction) and start recording updates. */
  async load(): Promise<void> {
    const chunks = await this.storage.loadRange([...this.prefix, 'log'])
    try {
      Y.transact(
        this.doc,
        () => {
          for (const chunk of chunks) {
            try {
              Y.applyUpdate(this.doc, chunk.data, STORAGE_ORIGIN)
            } catch (cause) {
              throw new StorageError('corrupt', `stored sealed-log chunk ${chunk.key.join('/')} does not parse`, { cause })
            }
          }
        },
        STORAGE_ORIGIN,
      )
    } catch (cause) {
      if (cause instanceof StorageError) throw cause
      // Yjs can read a damaged chunk and fail only while it cleans up the transaction, after
      // every chunk was applied (found by the fuzz campaign): a damaged store all the same.
      throw new StorageError('corrupt', `stored sealed-log chunks under ${this.prefix.join('/')}/log do not load together: one is damaged`, { cause })
    }
    this.storedChunks = chunks.map((c) => c.key[c.key.length - 1]!)
    const last = this.storedChunks[this.storedChunks.length - 1]
    this.counter = last ? Number(last) + 1 : 0
    this.doc.on('update', this.onUpdate)
  }

  /**
   * The stored checkpoints, newest first (normally one; two after a crash in the middle of a
   * rewrite). Read before {@link load} applies the log, or after; they are independent.
   */
  async loadCheckpoints(): Promise<Uint8Array[]> {
    const chunks = await this.storage.loadRange([...this.prefix, 'state'])
    this.storedStates = chunks.map((c) => c.key[c.key.length - 1]!)
    const last = this.storedStates[this.storedStates.length - 1]
    this.stateCounter = last ? Number(last) + 1 : 0
    return chunks.map((c) => c.data).reverse()
  }

  /** Read the replica's meta chunk. */
  loadMeta(): Promise<Uint8Array | undefined> {
    return this.storage.load([...this.prefix, 'meta'])
  }

  /** Write the replica's meta chunk (durably, before resolving). */
  saveMeta(bytes: Uint8Array): Promise<void> {
    return this.storage.save([...this.prefix, 'meta'], bytes)
  }

  /** Resolves when every update recorded so far is durably stored; rejects if that save failed. */
  whenSaved(): Promise<void> {
    if (this.queue.length === 0 && !this.scheduled) return this.saving
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }))
  }

  /**
   * Replace all stored chunks by one chunk holding the doc's full (GC'd) state. A fresh checkpoint
   * is written first when the rewrite stores deletions (someone else's, held back until now), or
   * when `checkpoint` asks for one (the replica's own compaction: the inner doc changed, e.g. text
   * was forgotten). A plain merge of chunks needs none: every deletion already stored came with one.
   */
  compact(options: { checkpoint?: boolean } = {}): Promise<void> {
    // The full state covers whatever is queued: cancel a pending flush so the compaction takes the
    // queue itself instead of the same bytes being stored again as a chunk of their own.
    this.scheduled = false
    this.saving = this.saving.then(async () => {
      if (this.closed) return
      // Everything queued is contained in the full state, so it can be dropped from the queue.
      const { updates, waiters } = this.takeQueue()
      const deferred = this.deferred
      this.deferred = []
      this.deferredBytes = 0
      // Encoded together, so the checkpoint covers every entry whose deletion the state records.
      const wanted = options.checkpoint === true || deferred.length > 0
      const checkpoint = wanted ? this.options.checkpoint?.() : undefined
      const state = Y.encodeStateAsUpdate(this.doc)
      const stateKey = checkpoint ? this.nextStateKey() : undefined
      const key = this.nextKey()
      try {
        if (checkpoint && stateKey) await this.storage.save(stateKey, checkpoint)
        await this.storage.save(key, state)
      } catch (error) {
        this.deferred.unshift(...deferred)
        this.deferredBytes += deferred.reduce((n, u) => n + u.length, 0)
        this.fail(error, waiters, updates)
        return
      }
      const old = this.storedChunks
      this.storedChunks = [key[key.length - 1]!]
      const oldStates = stateKey ? this.storedStates : []
      if (stateKey) this.storedStates = [stateKey[stateKey.length - 1]!]
      for (const w of waiters) w.resolve()
      for (const name of old) await this.storage.remove([...this.prefix, 'log', name])
      for (const name of oldStates) await this.storage.remove([...this.prefix, 'state', name])
    })
    return this.saving
  }

  /** True while deletions wait for the next full-state rewrite (diagnostics, tests). */
  get deletionsPending(): boolean {
    return this.deferred.length > 0
  }

  /** Number of chunks currently stored (tests and diagnostics). */
  get chunkCount(): number {
    return this.storedChunks.length
  }

  /** Stop recording; waits for saves in flight. Deletions still pending are stored by a last rewrite. */
  async close(): Promise<void> {
    this.doc.off('update', this.onUpdate)
    if (this.deferred.length > 0) void this.compact()
    else if (this.queue.length > 0 || this.scheduled) {
      this.scheduled = false
      this.flush()
    }
    await this.saving.catch(() => undefined)
    this.closed = true
    if (this.retryTimer) clearTimeout(this.retryTimer)
    for (const w of this.waiters) w.reject(new StorageError('closed', 'sealed log store closed before the write was stored'))
    this.waiters = []
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    queueMicrotask(() => {
      if (!this.scheduled) return
      this.scheduled = false
      this.flush()
    })
  }

  private takeQueue(): { updates: Uint8Array[]; waiters: Waiter[] } {
    const taken = { updates: this.queue, waiters: this.waiters }
    this.queue = []
    this.waiters = []
    return taken
  }

  private flush(): void {
    const { updates, waiters } = this.takeQueue()
    if (updates.length === 0) {
      for (const w of waiters) w.resolve()
      return
    }
    this.saving = this.saving.then(async () => {
      if (this.closed) return
      const merged = mergeUpdatesBounded(updates)
      const key = this.nextKey()
      try {
        await this.storage.save(key, merged)
      } catch (error) {
        this.fail(error, waiters, [merged])
        return
      }
      this.retryDelay = this.options.retryDelayMs ?? 250
      this.storedChunks.push(key[key.length - 1]!)
      for (const w of waiters) w.resolve()
      if (this.storedChunks.length > (this.options.mergeAfter ?? 128)) void this.compact()
    })
  }

  /** A save failed: report, keep the bytes queued for a retry, reject the writers waiting on it. */
  private fail(error: unknown, waiters: Waiter[], updates: Uint8Array[]): void {
    const storageError =
      error instanceof StorageError ? error : new StorageError('io', 'storage write failed', { cause: error })
    this.queue.unshift(...updates)
    for (const w of waiters) w.reject(storageError)
    this.options.onError?.(storageError)
    if (this.closed || storageError.code === 'closed') return
    if (this.retryTimer) return
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      if (this.queue.length > 0) this.flush()
    }, this.retryDelay)
    this.retryDelay = Math.min(this.retryDelay * 2, 30_000)
  }

  private nextKey(): StorageKey {
    return [...this.prefix, 'log', String(this.counter++).padStart(COUNTER_DIGITS, '0')]
  }

  private nextStateKey(): StorageKey {
    return [...this.prefix, 'state', String(this.stateCounter++).padStart(COUNTER_DIGITS, '0')]
  }
}
