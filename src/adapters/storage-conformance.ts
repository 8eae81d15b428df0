/**
 * The shared conformance suite every {@link StorageAdapter} runs (published as
 * `contextsync/testing`). It checks what code above storage relies on, so a new backend is one
 * file plus a three-line test. Uses vitest's globals-free API; isomorphic (runs in Node and in a
 * browser test runner alike).
 *
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  compareStorageKeys,
  keyHasPrefix,
  type StorageAdapter,
  type StorageChunk,
  type StorageErrorCode,
  type StorageKey,
} from './storage.js'

/** What the `setup` callback of {@link runStorageAdapterTests} returns for each test. */
export interface StorageAdapterTestContext {
  /** A fresh, empty adapter. */
  adapter: StorageAdapter
  /** Called after the adapter has been closed (if it can be); remove temp files here. */
  teardown?: () => Promise<void>
}

/**
 * Registers the storage conformance suite with vitest. `setup` runs before every test and must
 * return a fresh, empty adapter (a new temp file, a new database name).
 *
 * @example
 * ```ts
 * import { runStorageAdapterTests } from 'contextsync/testing'
 * import { memoryStorage } from 'contextsync'
 * runStorageAdapterTests(async () => ({ adapter: memoryStorage() }), 'memoryStorage')
 * ```
 */
export function runStorageAdapterTests(
  setup: () => Promise<StorageAdapterTestContext>,
  name = 'storage adapter',
): void {
  describe(`${name} — StorageAdapter conformance`, () => {
    let adapter: StorageAdapter
    let teardown: (() => Promise<void>) | undefined

    beforeEach(async () => {
      const context = await setup()
      adapter = context.adapter
      teardown = context.teardown
    })

    afterEach(async () => {
      // close() is idempotent by contract, so tests that closed already are fine here.
      await adapter.close?.()
      await teardown?.()
    })

    it('load of a missing key resolves to undefined', async () => {
      expect(await adapter.load(['missing'])).toBeUndefined()
      await adapter.save(['a', 'b'], bytes(1))
      // Neither a prefix of a stored key nor an extension of it is that key.
      expect(await adapter.load(['a'])).toBeUndefined()
      expect(await adapter.load(['a', 'b', 'c'])).toBeUndefined()
      expect(await adapter.load(['a', 'bb'])).toBeUndefined()
      expect(await adapter.loadRange(['missing'])).toEqual([])
    })

    it('save then load returns the same bytes as a plain Uint8Array', async () => {
      const data = pattern(1000, 7)
      await adapter.save(['replica', 'r1', 'log', '0001'], data)
      const loaded = await adapter.load(['replica', 'r1', 'log', '0001'])
      expectBytes(loaded, data)
      // Not a Node Buffer or another subclass: callers may rely on plain Uint8Array behaviour.
      expect(Object.getPrototypeOf(loaded)).toBe(Uint8Array.prototype)
    })

    it('saves only the bytes of a view, not its whole underlying buffer', async () => {
      const backing = pattern(64, 3)
      const view = backing.subarray(5, 17)
      await adapter.save(['view'], view)
      expectBytes(await adapter.load(['view']), pattern(64, 3).subarray(5, 17))
      const [chunk] = await adapter.loadRange(['view'])
      expectBytes(chunk?.data, pattern(64, 3).subarray(5, 17))
    })

    it('save replaces the chunk stored under the same key', async () => {
      await adapter.save(['k'], pattern(100, 1))
      await adapter.save(['k'], pattern(10, 2))
      expectBytes(await adapter.load(['k']), pattern(10, 2))
      const all = await adapter.loadRange([])
      expect(all.map((c) => c.key)).toEqual([['k']])
    })

    it('remove deletes one key only, and removing a missing key resolves', async () => {
      await adapter.save(['a'], bytes(1))
      await adapter.save(['a', 'b'], bytes(2))
      await adapter.save(['ab'], bytes(3))
      await adapter.remove(['a'])
      expect(await adapter.load(['a'])).toBeUndefined()
      expectBytes(await adapter.load(['a', 'b']), bytes(2))
      expectBytes(await adapter.load(['ab']), bytes(3))
      await expect(adapter.remove(['a'])).resolves.toBeUndefined()
      await expect(adapter.remove(['never', 'there'])).resolves.toBeUndefined()
    })

    it('empty values are stored and returned as empty arrays, not as missing', async () => {
      await adapter.save(['empty'], new Uint8Array(0))
      const loaded = await adapter.load(['empty'])
      expect(loaded).toBeInstanceOf(Uint8Array)
      expect(loaded?.byteLength).toBe(0)
      const range = await adapter.loadRange(['empty'])
      expect(range).toHaveLength(1)
      expect(range[0]?.data.byteLength).toBe(0)
    })

    it('loadRange matches whole segments and orders by compareStorageKeys', async () => {
      const keys = trickyKeys()
      await Promise.all(keys.map((key, i) => adapter.save(key, valueFor(i))))
      const prefixes: StorageKey[] = [
        [],
        ['a'],
        ['a', 'b'],
        ['ab'],
        ['a/b'],
        ['a', '\u0000'],
        ['a', 'b', 'c'],
        ['a\u0000'],
        ['b'],
        ['nothing-here'],
      ]
      for (const prefix of prefixes) {
        const expected = keys
          .map((key, i) => ({ key, data: valueFor(i) }))
          .filter((c) => keyHasPrefix(c.key, prefix))
          .sort((x, y) => compareStorageKeys(x.key, y.key))
        const actual = await adapter.loadRange(prefix)
        expect(actual.map((c) => c.key), `keys under ${JSON.stringify(prefix)}`).toEqual(expected.map((c) => c.key))
        expectChunks(actual, expected)
      }
      // The fixture must really exercise segment-wise matching, or the loop above proves little.
      expect((await adapter.loadRange(['a'])).some((c) => c.key[0] === 'ab')).toBe(false)
      expect(keys.some((k) => k[0] === 'ab')).toBe(true)
    })

    it('removeRange removes exactly the keys under the prefix', async () => {
      const keys = trickyKeys()
      await Promise.all(keys.map((key, i) => adapter.save(key, valueFor(i))))
      await adapter.removeRange(['a'])
      const survivors = keys
        .map((key, i) => ({ key, data: valueFor(i) }))
        .filter((c) => !keyHasPrefix(c.key, ['a']))
        .sort((x, y) => compareStorageKeys(x.key, y.key))
      expect(survivors.length).toBeGreaterThan(5)
      const remaining = await adapter.loadRange([])
      expect(remaining.map((c) => c.key)).toEqual(survivors.map((c) => c.key))
      expectChunks(remaining, survivors)
      expect(await adapter.load(['a'])).toBeUndefined()
      expect(await adapter.load(['a', 'b', 'c'])).toBeUndefined()
      await expect(adapter.removeRange(['nothing-here'])).resolves.toBeUndefined()
      await adapter.removeRange([])
      expect(await adapter.loadRange([])).toEqual([])
    })

    it('keys with separators, escapes and unicode are distinct and round-trip', async () => {
      const keys = trickyKeys()
      // Distinct values per key: a collision (e.g. ['a/b'] stored as ['a','b']) shows as a mismatch.
      for (const [i, key] of keys.entries()) await adapter.save(key, valueFor(i))
      for (const [i, key] of keys.entries()) expectBytes(await adapter.load(key), valueFor(i), JSON.stringify(key))
      const all = await adapter.loadRange([])
      expect(all).toHaveLength(keys.length)
      // Keys come back exactly as given: no normalisation, no escaping left behind.
      expect(all.map((c) => c.key)).toEqual([...keys].sort(compareStorageKeys))
    })

    it('stores and returns a value of several MiB intact', async () => {
      const big = pattern(4 * 1024 * 1024 + 3, 11)
      await adapter.save(['big'], big)
      expectBytes(await adapter.load(['big']), big)
      const [chunk] = await adapter.loadRange(['big'])
      expectBytes(chunk?.data, big)
    })

    it('persists thousands of concurrent saves (Promise.all)', async () => {
      const n = 2_000
      const keyOf = (i: number): StorageKey => ['many', String(i).padStart(5, '0')]
      await Promise.all(Array.from({ length: n }, (_, i) => adapter.save(keyOf(i), valueFor(i))))
      const all = await adapter.loadRange(['many'])
      expect(all).toHaveLength(n)
      expectChunks(
        all,
        Array.from({ length: n }, (_, i) => ({ key: keyOf(i), data: valueFor(i) })),
      )
      expectBytes(await adapter.load(keyOf(1234)), valueFor(1234))
    })

    it('applies calls in the order they are issued, even without awaiting', async () => {
      const results = await Promise.all([
        adapter.save(['k'], bytes(1)),
        adapter.save(['k'], bytes(2)),
        adapter.load(['k']),
        adapter.save(['gone'], bytes(3)),
        adapter.remove(['gone']),
        adapter.save(['p', 'x'], bytes(4)),
        adapter.removeRange(['p']),
        adapter.save(['p', 'y'], bytes(5)),
        adapter.loadRange(['p']),
      ])
      expectBytes(results[2] as Uint8Array | undefined, bytes(2))
      expect((results[8] as StorageChunk[]).map((c) => c.key)).toEqual([['p', 'y']])
      expectBytes(await adapter.load(['k']), bytes(2))
      expect(await adapter.load(['gone'])).toBeUndefined()
      expect(await adapter.load(['p', 'x'])).toBeUndefined()
    })

    it('hands out copies: mutating returned or saved arrays does not change the store', async () => {
      const input = pattern(32, 5)
      await adapter.save(['c'], input)
      input.fill(0)
      expectBytes(await adapter.load(['c']), pattern(32, 5))

      const loaded = await adapter.load(['c'])
      loaded?.fill(1)
      expectBytes(await adapter.load(['c']), pattern(32, 5))

      const [chunk] = await adapter.loadRange(['c'])
      chunk?.data.fill(2)
      chunk?.key.splice(0, 1, 'mutated')
      expectBytes(await adapter.load(['c']), pattern(32, 5))
      expect((await adapter.loadRange([])).map((c) => c.key)).toEqual([['c']])

      // The caller's key array may also be reused after the call.
      const key = ['reused']
      const saving = adapter.save(key, bytes(9))
      key[0] = 'changed'
      await saving
      expectBytes(await adapter.load(['reused']), bytes(9))
      expect(await adapter.load(['changed'])).toBeUndefined()
    })

    it("rejects invalid keys with code 'invalid-key' and writes nothing", async () => {
      const bad: unknown[] = [[], [''], ['a', ''], 'a', ['a', 1], [null], undefined, [['a']]]
      for (const key of bad) {
        await expectStorageError(adapter.save(key as StorageKey, bytes(1)), 'invalid-key')
        await expectStorageError(adapter.load(key as StorageKey), 'invalid-key')
        await expectStorageError(adapter.remove(key as StorageKey), 'invalid-key')
      }
      for (const prefix of [[''], ['a', ''], 'a', [1], undefined]) {
        await expectStorageError(adapter.loadRange(prefix as StorageKey), 'invalid-key')
        await expectStorageError(adapter.removeRange(prefix as StorageKey), 'invalid-key')
      }
      await expect(adapter.save(['v'], 'not bytes' as unknown as Uint8Array)).rejects.toThrow()
      await expect(adapter.save(['v'], [1, 2] as unknown as Uint8Array)).rejects.toThrow()
      expect(await adapter.loadRange([])).toEqual([])
    })

    it("after close every call rejects with code 'closed'; close again resolves", async () => {
      if (!adapter.close) return // close is optional; an adapter without it has nothing to release
      await adapter.save(['before'], bytes(1))
      // A write issued before close() is settled, not dropped.
      const pending = adapter.save(['pending'], bytes(2))
      await adapter.close()
      await expect(pending).resolves.toBeUndefined()
      await expectStorageError(adapter.load(['before']), 'closed')
      await expectStorageError(adapter.save(['after'], bytes(1)), 'closed')
      await expectStorageError(adapter.remove(['before']), 'closed')
      await expectStorageError(adapter.loadRange([]), 'closed')
      await expectStorageError(adapter.removeRange([]), 'closed')
      await expect(adapter.close()).resolves.toBeUndefined()
    })
  })
}

/**
 * Keys that break naive encodings: separators inside segments, escape characters, NUL and other
 * control characters, prefixes of each other at the segment and at the character level, astral
 * characters (which sort differently in UTF-8 and UTF-16), NFC vs NFD, unpaired surrogates.
 */
function trickyKeys(): StorageKey[] {
  return [
    ['a'],
    ['a', 'b'],
    ['a', 'b', 'c'],
    ['a', 'bc'],
    ['a', 'b\u0000'],
    ['a', '\u0000'],
    ['a', '\u0000b'],
    ['a', '\u0001'],
    ['a', 'c'],
    ['a', '\uffff'],
    ['a', '\u{1F600}'],
    ['a', '\ud800'],
    ['a', '\udc00x'],
    ['ab'],
    ['ab', 'x'],
    ['a\u0000'],
    ['a\u0000', 'b'],
    ['a\u0001'],
    ['a/b'],
    ['a/b', 'c'],
    ['a:b'],
    ['a.b'],
    ['a%2Fb'],
    ['a%'],
    ['a\\b'],
    ['a b'],
    ['a"b'],
    ['/'],
    ['%'],
    ['.'],
    ['..'],
    ['b'],
    ['\u00fc'],
    ['u\u0308'],
    ['\u{1F600}', '\u{1F601}'],
    ['\uffff'],
    ['\u65e5\u672c'],
    ['x'.repeat(1000)],
  ]
}

function bytes(...values: number[]): Uint8Array {
  return new Uint8Array(values)
}

/** Deterministic non-repeating-looking bytes; `seed` makes different values differ everywhere. */
function pattern(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = (seed * 0x9e3779b1) | 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

/** A distinct value per index whose length also varies (0 included). */
function valueFor(i: number): Uint8Array {
  return pattern(i % 7 === 0 ? 0 : (i % 50) + 4, i + 1000)
}

function expectBytes(actual: Uint8Array | undefined, expected: Uint8Array, label = ''): void {
  expect(actual, `${label} missing`).toBeInstanceOf(Uint8Array)
  if (!actual) return
  expect(actual.byteLength, `${label} length`).toBe(expected.byteLength)
  // A first-mismatch index keeps failures readable for multi-MiB values.
  let mismatch = -1
  for (let i = 0; i < expected.byteLength; i++) {
    if (actual[i] !== expected[i]) {
      mismatch = i
      break
    }
  }
  expect(mismatch, `${label} first differing byte`).toBe(-1)
}

function expectChunks(actual: StorageChunk[], expected: StorageChunk[]): void {
  expect(actual).toHaveLength(expected.length)
  for (const [i, e] of expected.entries()) {
    const a = actual[i]
    expect(a?.key).toEqual(e.key)
    expectBytes(a?.data, e.data, JSON.stringify(e.key))
  }
}

async function expectStorageError(promise: Promise<unknown>, code: StorageErrorCode): Promise<void> {
  // Compare name and code rather than instanceof, so an adapter bundled with its own copy of
  // StorageError still conforms.
  await expect(promise).rejects.toMatchObject({ name: 'StorageError', code })
}
