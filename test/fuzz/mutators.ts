/**
 * Byte-level mutators of genuine samples: bit flips, interesting bytes, insertion, deletion,
 * truncation, field duplication, splicing with another sample, and varuint-aware ones — a lib0
 * varuint (WIRE.md: every count and length is one) replaced by a huge value (2^32, 2^53, …), a
 * neighbour of its own value (an off-by-one length), or an overlong / endless encoding.
 *
 * Structure-aware mutation sits in the targets: they mutate an inner layer (a body, a plaintext,
 * a JSON object) and wrap it again with the library's own encoders and the campaign's keys, so the
 * mutated bytes get past the signature or AEAD and reach the parser behind it.
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import { bytes, chance, int, pick, weighted, type Rng } from './rng.js'

/** Inputs never grow past this (a mutator that would is cut back). */
export const MAX_INPUT_BYTES = 256 * 1024

/** Values a length or count field is inflated to: bounds ± 1, 2^31, 2^32, 2^53 and past it. */
export const HUGE_VALUES: readonly number[] = [
  0, 1, 2, 63, 64, 65, 127, 128, 200, 255, 256, 1023, 1024, 1025, 4095, 4096, 4097, 65_535, 65_536, 65_537,
  262_144, 262_145, 1_048_576, 2 ** 24, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 40, 2 ** 52,
  Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER, 2 ** 53, 2 ** 55, 2 ** 56 - 1,
]

const INTERESTING_BYTES = [0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0x81, 0xfe, 0xff, 0x0a, 0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d]

/** lib0 varuint encoding of any non-negative number, including ones past 2^53 (as lib0 writes them). */
export function varuint(value: number): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarUint(enc, value)
  return encoding.toUint8Array(enc)
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.length
  const out = new Uint8Array(Math.min(length, MAX_INPUT_BYTES))
  let o = 0
  for (const p of parts) {
    if (o >= out.length) break
    const take = Math.min(p.length, out.length - o)
    out.set(p.subarray(0, take), o)
    o += take
  }
  return out
}

/** A position, half the time in the first 48 bytes, where headers and counts live. */
function position(gen: Rng, length: number, inclusiveEnd = false): number {
  const max = inclusiveEnd ? length : length - 1
  if (max <= 0) return 0
  return chance(gen, 0.5) ? int(gen, 0, Math.min(max, 47)) : int(gen, 0, max)
}

/** Where the varuint starting at `pos` ends (exclusive), at most 10 bytes on. */
function varuintEnd(data: Uint8Array, pos: number): number {
  let end = pos
  while (end < data.length && end - pos < 10 && data[end]! >= 0x80) end++
  return Math.min(end + 1, data.length)
}

function readVaruintAt(data: Uint8Array, pos: number, end: number): number {
  let value = 0
  let mult = 1
  for (let i = pos; i < end; i++) {
    value += (data[i]! & 0x7f) * mult
    mult *= 128
  }
  return value
}

/** One mutation of `data`; `pool` gives splicing partners. */
type Mutator = (gen: Rng, data: Uint8Array, pool: readonly Uint8Array[]) => Uint8Array

const flipBit: Mutator = (gen, data) => {
  if (data.length === 0) return bytes(gen, 1)
  const out = data.slice()
  out[position(gen, out.length)]! ^= 1 << int(gen, 0, 7)
  return out
}

const setByte: Mutator = (gen, data) => {
  if (data.length === 0) return Uint8Array.of(pick(gen, INTERESTING_BYTES))
  const out = data.slice()
  out[position(gen, out.length)] = chance(gen, 0.7) ? pick(gen, INTERESTING_BYTES) : int(gen, 0, 255)
  return out
}

const insertBytes: Mutator = (gen, data) => {
  const at = position(gen, data.length, true)
  const n = chance(gen, 0.8) ? int(gen, 1, 8) : int(gen, 9, 512)
  const filler = chance(gen, 0.5) ? bytes(gen, n) : new Uint8Array(n).fill(pick(gen, INTERESTING_BYTES))
  return concat(data.subarray(0, at), filler, data.subarray(at))
}

const deleteRange: Mutator = (gen, data) => {
  if (data.length === 0) return data
  const at = position(gen, data.length)
  const n = chance(gen, 0.7) ? int(gen, 1, 4) : int(gen, 1, Math.max(1, data.length - at))
  return concat(data.subarray(0, at), data.subarray(Math.min(data.length, at + n)))
}

const truncate: Mutator = (gen, data) => {
  if (data.length === 0) return data
  // Cut near the end (a lost tail) or anywhere (a cut-off header).
  const at = chance(gen, 0.5) ? int(gen, Math.max(0, data.length - 80), data.length - 1) : int(gen, 0, data.length - 1)
  return data.slice(0, at)
}

/** Field duplication: a range copied right after itself (a repeated field or record). */
const duplicateRange: Mutator = (gen, data) => {
  if (data.length === 0) return data
  const start = position(gen, data.length)
  const end = int(gen, start + 1, Math.min(data.length, start + (chance(gen, 0.7) ? 40 : 4096)))
  const copies = chance(gen, 0.8) ? 1 : int(gen, 2, 64)
  const chunk = data.subarray(start, end)
  const parts: Uint8Array[] = [data.subarray(0, end)]
  for (let i = 0; i < copies; i++) parts.push(chunk)
  parts.push(data.subarray(end))
  return concat(...parts)
}

const splice: Mutator = (gen, data, pool) => {
  const other = pool.length > 0 ? pick(gen, pool) : bytes(gen, 32)
  const a = int(gen, 0, data.length)
  const b = int(gen, 0, other.length)
  return chance(gen, 0.5) ? concat(data.subarray(0, a), other.subarray(b)) : concat(other.subarray(0, b), data.subarray(a))
}

/** A varuint (or what starts like one) replaced by a huge, bound-adjacent or off-by-one value. */
const inflateVaruint: Mutator = (gen, data) => {
  if (data.length === 0) return varuint(pick(gen, HUGE_VALUES))
  const at = position(gen, data.length)
  const end = varuintEnd(data, at)
  const current = readVaruintAt(data, at, end)
  const value = weighted<number>(gen, [
    [6, pick(gen, HUGE_VALUES)],
    [2, current + 1],
    [2, Math.max(0, current - 1)],
    [1, current * 2 + 1],
    [1, current + int(gen, 2, 4096)],
  ])
  return concat(data.subarray(0, at), varuint(value), data.subarray(end))
}

/** A varuint re-encoded overlong (non-canonical zero padding) or as endless continuation bytes. */
const overlongVaruint: Mutator = (gen, data) => {
  const at = position(gen, data.length, true)
  const end = data.length === 0 ? 0 : varuintEnd(data, at)
  let replacement: Uint8Array
  if (chance(gen, 0.5)) {
    const canonical = varuint(data.length === 0 ? 0 : readVaruintAt(data, at, end))
    const pad = int(gen, 1, 8)
    replacement = new Uint8Array(canonical.length + pad)
    replacement.set(canonical)
    replacement[canonical.length - 1]! |= 0x80
    for (let i = canonical.length; i < replacement.length - 1; i++) replacement[i] = 0x80
    replacement[replacement.length - 1] = 0x00
  } else {
    replacement = new Uint8Array(int(gen, 9, 16)).fill(0xff)
  }
  return concat(data.subarray(0, at), replacement, data.subarray(end))
}

const randomizeRange: Mutator = (gen, data) => {
  if (data.length === 0) return bytes(gen, int(gen, 1, 16))
  const out = data.slice()
  const at = position(gen, out.length)
  const n = int(gen, 1, Math.min(32, out.length - at))
  out.set(bytes(gen, n), at)
  return out
}

const swapRanges: Mutator = (gen, data) => {
  if (data.length < 4) return data
  const n = int(gen, 1, Math.min(32, data.length >> 1))
  const a = int(gen, 0, data.length - 2 * n)
  const b = int(gen, a + n, data.length - n)
  const out = data.slice()
  out.set(data.subarray(b, b + n), a)
  out.set(data.subarray(a, a + n), b)
  return out
}

const MUTATORS: ReadonlyArray<readonly [number, Mutator]> = [
  [10, flipBit],
  [8, setByte],
  [5, insertBytes],
  [5, deleteRange],
  [6, truncate],
  [4, duplicateRange],
  [4, splice],
  [9, inflateVaruint],
  [3, overlongVaruint],
  [3, randomizeRange],
  [2, swapRanges],
]

/** One to four stacked mutations of `sample` (mostly one: small distances from a genuine input go deepest). */
export function mutate(gen: Rng, sample: Uint8Array, pool: readonly Uint8Array[] = []): Uint8Array {
  const rounds = weighted<number>(gen, [
    [6, 1],
    [3, 2],
    [1, int(gen, 3, 4)],
  ])
  let data = sample
  for (let i = 0; i < rounds; i++) data = weighted(gen, MUTATORS)(gen, data, pool)
  return data
}

/** Plain random bytes: mostly short, sometimes up to 4 KiB, sometimes led by a plausible version byte. */
export function randomInput(gen: Rng, leading: readonly number[] = []): Uint8Array {
  const length = chance(gen, 0.85) ? int(gen, 0, 96) : int(gen, 97, 4096)
  const out = bytes(gen, length)
  if (length > 0 && leading.length > 0 && chance(gen, 0.6)) out[0] = pick(gen, leading)
  return out
}
