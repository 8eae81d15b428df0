/**
 * A binary min-heap ordered by a caller's `before`: the event queues of the loopback network and
 * the virtual clock (both run the earliest event next, ties broken by the caller's keys).
 *
 * @module
 */

/** A binary min-heap: `push` and `pop` in O(log n), `peek` in O(1). */
export class MinHeap<T> {
  private readonly items: T[] = []

  /** @param before whether `a` must come out before `b` (a strict order). */
  constructor(private readonly before: (a: T, b: T) => boolean) {}

  /** How many items the heap holds. */
  get size(): number {
    return this.items.length
  }

  /** The first item, left in place. */
  peek(): T | undefined {
    return this.items[0]
  }

  /** Every item, in no particular order (a copy). */
  toArray(): T[] {
    return [...this.items]
  }

  /** Remove every item. */
  clear(): void {
    this.items.length = 0
  }

  /** Add an item. */
  push(item: T): void {
    const heap = this.items
    heap.push(item)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.before(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }

  /** Remove and return the first item. */
  pop(): T | undefined {
    const heap = this.items
    const top = heap[0]
    const last = heap.pop()
    if (heap.length === 0 || last === undefined) return top
    heap[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let min = i
      if (l < heap.length && this.before(heap[l]!, heap[min]!)) min = l
      if (r < heap.length && this.before(heap[r]!, heap[min]!)) min = r
      if (min === i) break
      ;[heap[i], heap[min]] = [heap[min]!, heap[i]!]
      i = min
    }
    return top
  }
}
