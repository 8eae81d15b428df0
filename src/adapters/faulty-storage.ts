/**
 * A test helper that wraps any {@link StorageAdapter} and makes chosen calls fail on demand, so
 * code above storage (replicas, the facade) can be tested against a full disk or a flaky device.
 * Isomorphic.
 *
 * @module
 */
import { StorageError, type StorageAdapter, type StorageErrorCode } from './storage.js'
import { ValidationError } from '../errors.js'

/** The adapter methods a fault can be armed for. */
export type FaultyOperation = 'load' | 'save' | 'remove' | 'loadRange' | 'removeRange'

/** Options of {@link FaultyStorage.failNext}. */
export interface FailNextOptions {
  /** How many matching calls fail; default 1. */
  count?: number
  /** Which methods the fault applies to; default `['save']`. */
  operations?: readonly FaultyOperation[]
}

/** A {@link StorageAdapter} with switches for injected failures; see {@link faultyStorage}. */
export interface FaultyStorage extends StorageAdapter {
  /**
   * Arms a fault: the next `count` calls of the listed `operations` reject with
   * `new StorageError(code, …)` without reaching the wrapped adapter, so nothing is written.
   * Faults armed earlier are consumed first.
   */
  failNext(code: StorageErrorCode, options?: FailNextOptions): void
  /** Disarms every pending fault. */
  reset(): void
  /** How many injected failures are still armed. */
  readonly armed: number
  /** How many calls have failed by injection so far. */
  readonly injected: number
  /** Closes this wrapper and the wrapped adapter (if it can be closed). */
  close(): Promise<void>
}

interface Fault {
  code: StorageErrorCode
  remaining: number
  operations: ReadonlySet<FaultyOperation>
}

/**
 * Wraps `inner` so that failures can be injected; with nothing armed it behaves exactly like
 * `inner` (and passes the same conformance suite).
 *
 * @example
 * ```ts
 * const storage = faultyStorage(memoryStorage())
 * storage.failNext('quota-exceeded', { count: 2 })
 * await storage.save(['a'], bytes) // rejects: StorageError code 'quota-exceeded'
 * ```
 */
export function faultyStorage(inner: StorageAdapter): FaultyStorage {
  let faults: Fault[] = []
  let injected = 0
  let closed = false

  // Runs before delegating; throwing here becomes the returned promise's rejection.
  const gate = (op: FaultyOperation): void => {
    if (closed) throw new StorageError('closed', `faultyStorage: ${op} after close()`)
    const fault = faults.find((f) => f.operations.has(op))
    if (!fault) return
    fault.remaining--
    if (fault.remaining <= 0) faults = faults.filter((f) => f !== fault)
    injected++
    throw new StorageError(fault.code, `faultyStorage: injected ${fault.code} failure in ${op}`)
  }

  return {
    ...(inner.durable !== undefined && { durable: inner.durable }),
    async load(key) {
      gate('load')
      return inner.load(key)
    },
    async save(key, data) {
      gate('save')
      return inner.save(key, data)
    },
    async remove(key) {
      gate('remove')
      return inner.remove(key)
    },
    async loadRange(prefix) {
      gate('loadRange')
      return inner.loadRange(prefix)
    },
    async removeRange(prefix) {
      gate('removeRange')
      return inner.removeRange(prefix)
    },
    async close() {
      if (closed) return
      closed = true
      await inner.close?.()
    },
    failNext(code, options = {}) {
      const count = options.count ?? 1
      if (!Number.isInteger(count) || count < 1) throw new ValidationError(`failNext: count must be a positive integer, got ${count}`)
      faults.push({ code, remaining: count, operations: new Set(options.operations ?? ['save']) })
    },
    reset() {
      faults = []
    },
    get armed() {
      return faults.reduce((sum, f) => sum + f.remaining, 0)
    },
    get injected() {
      return injected
    },
  }
}
