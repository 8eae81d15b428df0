/**
 * Persists one sealed log (outer doc) through a {@link StorageAdapter}, so data at rest is
 * ciphertext too. Layout under `['replica', roomId]`:
 * - `['replica', roomId, 'log', <12-digit counter>]` — outer-doc updates, appended as they happen
 *   (coalesced per tick), replaced by one full-state chunk when {@link LogStore.compact} runs;
 * - `['replica', roomId, 'meta']` — the replica's small bookkeeping (seq reservation).
 *
 * Crash safety: compaction writes the merged chunk before removing the chunks it replaces, so a
 * crash in between leaves duplicates (absorbed by CRDT idempotence), never a loss.
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

interface Waiter {
  resolve: () => void
  reject: (error: unknown) => void
}

/** Options of {@link LogStore}. */
export interface LogStoreOptions {
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
  private queue: Uint8Array[] = []
  private waiters: Waiter[] = []
  private scheduled = false
  private saving: Promise<void> = Promise.resolve()
  private retryDelay: number
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private closed = false
  private readonly prefix: StorageKey
  private readonly onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === STORAGE_ORIGIN || this.closed) return
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
    this.storedChunks = chunks.map((c) => c.key[c.key.length - 1]!)
    const last = this.storedChunks[this.storedChunks.length - 1]
    this.counter = last ? Number(last) + 1 : 0
    this.doc.on('update', this.onUpdate)
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

  /** Replace all stored chunks by one chunk holding the doc's full (GC'd) state. */
  compact(): Promise<void> {
    // The full state covers whatever is queued: cancel a pending flush so the compaction takes the
    // queue itself instead of the same bytes being stored again as a chunk of their own.
    this.scheduled = false
    this.saving = this.saving.then(async () => {
      if (this.closed) return
      // Everything queued is contained in the full state, so it can be dropped from the queue.
      const { updates, waiters } = this.takeQueue()
      const key = this.nextKey()
      try {
        await this.storage.save(key, Y.encodeStateAsUpdate(this.doc))
      } catch (error) {
        this.fail(error, waiters, updates)
        return
      }
      const old = this.storedChunks
      this.storedChunks = [key[key.length - 1]!]
      for (const w of waiters) w.resolve()
      for (const name of old) await this.storage.remove([...this.prefix, 'log', name])
    })
    return this.saving
  }

  /** Number of chunks currently stored (tests and diagnostics). */
  get chunkCount(): number {
    return this.storedChunks.length
  }

  /** Stop recording; waits for saves in flight. */
  async close(): Promise<void> {
    this.doc.off('update', this.onUpdate)
    if (this.queue.length > 0 || this.scheduled) {
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
}
