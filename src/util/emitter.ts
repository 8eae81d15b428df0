/**
 * A tiny typed event emitter: an `Events` interface maps kebab-case event names to a listener
 * taking one payload object (the automerge-repo / lib0 `ObservableV2` convention). `on` returns
 * an unsubscribe function. A throwing listener is reported through `onListenerError` rather than
 * breaking the emitter or the sync engine that emits.
 *
 * @module
 */

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Listener = (payload: any) => void

/** A typed event emitter; `E` maps event names to listener signatures. */
export class Emitter<E extends { [K in keyof E]: Listener }> {
  private readonly listeners = new Map<keyof E, Set<Listener>>()

  /** @param onListenerError called when a listener throws; defaults to `console.error`. */
  constructor(private readonly onListenerError: (error: unknown) => void = defaultListenerError) {}

  /** Subscribe to `event`; returns a function that unsubscribes. */
  on<K extends keyof E>(event: K, listener: E[K]): () => void {
    let set = this.listeners.get(event)
    if (!set) this.listeners.set(event, (set = new Set()))
    set.add(listener)
    return () => this.off(event, listener)
  }

  /** Subscribe for one emission only. */
  once<K extends keyof E>(event: K, listener: E[K]): () => void {
    const off = this.on(event, ((payload: unknown) => {
      off()
      listener(payload)
    }) as E[K])
    return off
  }

  /** Unsubscribe a listener added with {@link on}. */
  off<K extends keyof E>(event: K, listener: E[K]): void {
    this.listeners.get(event)?.delete(listener)
  }

  /** Call every listener of `event` with `payload`. */
  emit<K extends keyof E>(event: K, payload: Parameters<E[K]>[0]): void {
    const set = this.listeners.get(event)
    if (!set) return
    for (const listener of [...set]) {
      try {
        listener(payload)
      } catch (error) {
        this.onListenerError(error)
      }
    }
  }

  /** Number of listeners for `event` (for tests and leak checks). */
  listenerCount(event: keyof E): number {
    return this.listeners.get(event)?.size ?? 0
  }

  /** Drop every listener. */
  clear(): void {
    this.listeners.clear()
  }
}

function defaultListenerError(error: unknown): void {
  console.error('contextsync: an event listener threw', error)
}
