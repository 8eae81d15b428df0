/**
 * Seeded randomness for the fuzz campaign. Every input has its own generator, derived from the
 * campaign seed, the target's name and the input's index, so an input can be regenerated from
 * those three alone (`--replay`) whatever ran before it, in whichever worker.
 *
 * @module
 */
import * as prng from 'lib0/prng'
import { hash } from '../../src/crypto/primitives.js'
import { utf8 } from '../../src/util/bytes.js'

/** A lib0 PRNG (Xoroshiro128+). */
export type Rng = prng.PRNG

/** 32-bit FNV-1a of a string: the target name's share of an input seed. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h
}

/** A murmur3-style finaliser: spreads every input bit over the output. */
function mix(h: number): number {
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b) >>> 0
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35) >>> 0
  h ^= h >>> 16
  return h >>> 0
}

/**
 * The 32-bit seed of input `index` of `target` in a campaign seeded with `seed`. Never 0: lib0's
 * xorshift32 seeding turns 0 into a generator of zeros.
 */
export function inputSeed(seed: number, target: string, index: number): number {
  const h = mix(mix(seed >>> 0) ^ fnv1a(target) ^ mix((index >>> 0) + Math.floor(index / 2 ** 32) * 0x9e3779b9))
  return h === 0 ? 1 : h
}

/** The generator of one input. */
export function inputRng(seed: number, target: string, index: number): Rng {
  return prng.create(inputSeed(seed, target, index))
}

/** A generator for a target's set-up (its corpus of genuine samples). */
export function setupRng(seed: number, target: string): Rng {
  return prng.create(inputSeed(seed, `setup/${target}`, 0))
}

/**
 * `length` bytes derived from the campaign seed and a label (BLAKE2b), for key seeds: the keys
 * of a campaign are the same in every worker and on replay, so a re-signed input still verifies.
 */
export function seededBytes(seed: number, label: string, length = 32): Uint8Array {
  return hash(utf8(`contextsync/fuzz/${seed >>> 0}/${label}`), length)
}

/** An integer in `[min, max]`. */
export function int(gen: Rng, min: number, max: number): number {
  return prng.uint53(gen, min, max)
}

/** True with probability `p`. */
export function chance(gen: Rng, p: number): boolean {
  return prng.real53(gen) < p
}

/** One element of a non-empty array. */
export function pick<T>(gen: Rng, items: readonly T[]): T {
  return items[prng.uint32(gen, 0, items.length - 1)]!
}

/** Random bytes. */
export function bytes(gen: Rng, length: number): Uint8Array {
  return prng.uint8Array(gen, length)
}

/** One of `choices` by weight. */
export function weighted<T>(gen: Rng, choices: ReadonlyArray<readonly [number, T]>): T {
  let total = 0
  for (const [w] of choices) total += w
  let r = prng.real53(gen) * total
  for (const [w, value] of choices) {
    if ((r -= w) < 0) return value
  }
  return choices[choices.length - 1]![1]
}
