/**
 * The two libsodium builds behind `SodiumBackend` — `libsodium-wrappers` (WebAssembly, browsers)
 * and `sodium-native` (Node) — must be interchangeable: a device must never accept an envelope
 * that another device of the same account refuses, and every deterministic primitive must give
 * the same bytes on both. This file checks that on a corpus of ordinary and adversarial inputs.
 *
 * The adversarial Ed25519 signatures (small-order and mixed-order points, non-canonical encodings
 * and scalars) are built with the BigInt model in ./helpers/ed25519-edge.ts.
 *
 * The corpus is generated from a seeded PRNG: `CONTEXTSYNC_SEED=<uint32> npx vitest run
 * test/crypto/backends.test.ts` replays (or varies) it.
 */
import { createHash } from 'node:crypto'
import libsodium from 'libsodium-wrappers'
import * as prng from 'lib0/prng'
import { describe, expect, it } from 'vitest'
import type { SodiumBackend } from '../../src/crypto/sodium.js'
import { loadNativeBackend } from '../../src/crypto/sodium-native.js'
import { wasmBackend } from '../../src/crypto/sodium-wasm.js'
import * as ed from '../helpers/ed25519-edge.js'

// ---------------------------------------------------------------------------------------------
// Seeded randomness
// ---------------------------------------------------------------------------------------------

const DEFAULT_SEED = 0x5eed_c0de

function parseSeed(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_SEED
  const value = Number(raw)
  if (!Number.isSafeInteger(value)) throw new Error(`CONTEXTSYNC_SEED must be an integer, got ${JSON.stringify(raw)}`)
  return value >>> 0
}

const SEED = parseSeed(process.env.CONTEXTSYNC_SEED)
console.log(`crypto-backends: seed ${SEED} (replay or vary with CONTEXTSYNC_SEED=<uint32>)`)

/** lib0's seeded PRNG with the few helpers the corpus needs — test inputs only, never keys. */
class Rng {
  private readonly gen: prng.PRNG
  constructor(seed: number) {
    this.gen = prng.create(seed)
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return prng.uint32(this.gen, 0, n - 1)
  }
  bytes(length: number): Uint8Array {
    return prng.uint8Array(this.gen, length)
  }
  /** A scalar uniform enough in [0, L). */
  scalar(): bigint {
    return ed.mod(ed.bytesToNumberLE(this.bytes(64)), ed.L)
  }
  pick<T>(items: readonly T[]): T {
    const item = items[this.int(items.length)]
    if (item === undefined) throw new Error('pick from an empty list')
    return item
  }
  /** `count` distinct integers in [0, n), in random order. */
  sample(n: number, count: number): number[] {
    const chosen = new Set<number>()
    while (chosen.size < Math.min(n, count)) chosen.add(this.int(n))
    return [...chosen]
  }
}

// ---------------------------------------------------------------------------------------------
// The two builds. sodium-native is an optional dependency of the package, but it is installed in
// this repository and in CI: if it does not load, this file must fail, not quietly test wasm
// against itself.
// ---------------------------------------------------------------------------------------------

await libsodium.ready
const wasm = wasmBackend(libsodium)
const loadedNative = await loadNativeBackend(wasm)
if (loadedNative.backend === undefined) {
  throw new Error(`sodium-native failed to load, so the builds cannot be compared: ${loadedNative.reason}`)
}
const native: SodiumBackend = loadedNative.backend
const BUILDS = [wasm, native] as const

// ---------------------------------------------------------------------------------------------
// Byte helpers
// ---------------------------------------------------------------------------------------------

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i])
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.length
  }
  return out
}

function flipBit(bytes: Uint8Array, bit: number): Uint8Array {
  const out = bytes.slice()
  out[bit >> 3] = (out[bit >> 3] ?? 0) ^ (1 << (bit & 7))
  return out
}

function withS(signature: Uint8Array, s: bigint): Uint8Array {
  return concat(signature.subarray(0, 32), ed.numberToBytesLE(s, 32))
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text)
}

// ---------------------------------------------------------------------------------------------
// The Ed25519 corpus
// ---------------------------------------------------------------------------------------------

const Category = {
  valid: 'valid',
  flipSignature: 'bit flip in signature',
  flipMessage: 'bit flip in message',
  flipPublicKey: 'bit flip in public key',
  sNotReduced: 'S ≥ L',
  smallOrderA: 'small-order A',
  smallOrderR: 'small-order R',
  mixedOrderA: 'mixed-order A',
  mixedOrderR: 'mixed-order R, prime-order A',
  mixedOrderAR: 'mixed-order R and A',
  nonCanonicalA: 'non-canonical A',
  nonCanonicalR: 'non-canonical R',
  wrongLength: 'wrong length',
  emptyMessage: 'empty message',
} as const
type Category = (typeof Category)[keyof typeof Category]

interface SignatureCase {
  readonly category: Category
  readonly label: string
  readonly signature: Uint8Array
  readonly message: Uint8Array
  readonly publicKey: Uint8Array
  /** What libsodium's strict rules demand, where they are known in advance. */
  readonly expected?: boolean
  /** For hand-built signatures: whether [S]B = R + [k]A holds on the decoded points. */
  readonly cofactorless?: boolean
}

/** Index i of a small-order point, where `ed.TORSION[i] = i·T₈`. */
function torsionIndex(point: ed.Point): number {
  const index = ed.TORSION.findIndex((t) => ed.equals(t, point))
  if (index < 0) throw new Error('not a torsion point')
  return index
}

/** A torsion point by index (mod 8). */
function torsion(index: number): ed.Point {
  const point = ed.TORSION[((index % 8) + 8) % 8]
  if (point === undefined) throw new Error('torsion index')
  return point
}

/** k mod 8: all that matters for k·T when T is a torsion point (k·TORSION[i] = TORSION[k·i mod 8]). */
function kMod8(nonceBytes: Uint8Array, publicKeyBytes: Uint8Array, message: Uint8Array): number {
  return Number(ed.mod(ed.bytesToNumberLE(ed.sha512(nonceBytes, publicKeyBytes, message)), ed.L) % 8n)
}

/**
 * A message for which the torsion parts line up as wanted: the cofactorless equation holds
 * exactly when torsionR + k·torsionA = identity, i.e. (ρ + k·α) ≡ 0 (mod 8) for torsion indices
 * α (of A) and ρ (of R). Only k depends on the message, so this is a cheap hash-only search; the
 * chosen signature is then rebuilt in full by ed.buildEdgeSignature, which checks the equation
 * on the points and must agree with this prediction.
 */
function findMessage(rng: Rng, nonceBytes: Uint8Array, publicKeyBytes: Uint8Array, alpha: number, rho: number, wantHolds: boolean): Uint8Array {
  for (let attempt = 0; attempt < 500; attempt++) {
    const message = rng.bytes(1 + rng.int(48))
    const holds = (rho + kMod8(nonceBytes, publicKeyBytes, message) * alpha) % 8 === 0
    if (holds === wantHolds) return message
  }
  throw new Error(`no message found for α=${alpha} ρ=${rho} holds=${wantHolds}`)
}

function buildChecked(input: ed.EdgeSignatureInput, predicted: boolean, label: string): ed.EdgeSignature {
  const built = ed.buildEdgeSignature(input)
  if (built.cofactorless !== predicted) throw new Error(`corpus bug: ${label} cofactorless=${built.cofactorless}, predicted ${predicted}`)
  return built
}

function buildCorpus(rng: Rng): SignatureCase[] {
  const cases: SignatureCase[] = []
  const push = (c: SignatureCase): void => {
    cases.push(c)
  }

  // Valid signatures from random seeds; messages are non-empty so that bits can be flipped.
  const honest: { signature: Uint8Array; message: Uint8Array; publicKey: Uint8Array }[] = []
  for (let i = 0; i < 24; i++) {
    const keys = wasm.signSeedKeypair(rng.bytes(32))
    const message = rng.bytes(1 + rng.int(256))
    const signature = wasm.signDetached(message, keys.secretKey)
    honest.push({ signature, message, publicKey: keys.publicKey })
    push({ category: Category.valid, label: `valid #${i}`, signature, message, publicKey: keys.publicKey, expected: true })
  }
  const honestAt = (i: number): (typeof honest)[number] => {
    const h = honest[i % honest.length]
    if (h === undefined) throw new Error('no honest signature')
    return h
  }

  // Single bit flips. Always included: the sign bit of R (255), the top bit of S (511), and the
  // sign bit of A (255, which turns A into −A); the rest are sampled.
  for (let i = 0; i < 4; i++) {
    const h = honestAt(i)
    for (const bit of new Set([255, 511, ...rng.sample(512, 16)])) {
      push({ category: Category.flipSignature, label: `sig #${i} bit ${bit}`, signature: flipBit(h.signature, bit), message: h.message, publicKey: h.publicKey, expected: false })
    }
    for (const bit of rng.sample(h.message.length * 8, 8)) {
      push({ category: Category.flipMessage, label: `msg #${i} bit ${bit}`, signature: h.signature, message: flipBit(h.message, bit), publicKey: h.publicKey, expected: false })
    }
    for (const bit of new Set([255, ...rng.sample(256, 16)])) {
      push({ category: Category.flipPublicKey, label: `pk #${i} bit ${bit}`, signature: h.signature, message: h.message, publicKey: flipBit(h.publicKey, bit), expected: false })
    }
  }

  // S ≥ L. S + L is the classic malleability: [S+L]B = [S]B, so a verifier without the S < L
  // check (or with libsodium's ED25519_COMPAT top-3-bits check only) would accept it.
  for (let i = 0; i < 8; i++) {
    const h = honestAt(i)
    const s = ed.bytesToNumberLE(h.signature.subarray(32))
    const maxMultiple = ((1n << 256n) - 1n - s) / ed.L
    const variants: [string, bigint][] = [
      ['S+L', s + ed.L],
      ['S+2L', s + 2n * ed.L],
      [`S+${maxMultiple}L`, s + maxMultiple * ed.L],
      ['S with the top 3 bits set', s | (7n << 253n)],
    ]
    for (const [name, value] of variants) {
      push({ category: Category.sNotReduced, label: `#${i} ${name}`, signature: withS(h.signature, value), message: h.message, publicKey: h.publicKey, expected: false })
    }
  }
  {
    const h = honestAt(0)
    push({ category: Category.sNotReduced, label: 'S = L', signature: withS(h.signature, ed.L), message: h.message, publicKey: h.publicKey, expected: false })
    push({ category: Category.sNotReduced, label: 'S = 2^256−1', signature: withS(h.signature, (1n << 256n) - 1n), message: h.message, publicKey: h.publicKey, expected: false })
  }

  // Small-order A (all 14 encodings of the 8 torsion points, non-canonical ones included) with
  // S = 0 and R = −k·A, so that the cofactorless equation [0]B = R + [k]A holds. R is itself a
  // torsion point; k depends on R's bytes, so R's index ρ is fixed first (inside the subgroup A
  // generates, else no k fits) and the message searched for.
  for (const encoding of ed.smallOrderEncodings()) {
    const alpha = torsionIndex(encoding.point)
    for (let n = 0; n < 2; n++) {
      const rho = (alpha * rng.int(8)) % 8
      const nonceBytes = ed.encodePoint(torsion(rho))
      const message = findMessage(rng, nonceBytes, encoding.bytes, alpha, rho, true)
      const label = `A = ${encoding.label}, R = T${rho}, S = 0 #${n}`
      const built = buildChecked({ message, a: 0n, torsionA: encoding.point, publicKeyBytes: encoding.bytes, r: 0n, torsionR: torsion(rho) }, true, label)
      push({ category: Category.smallOrderA, label, signature: built.signature, message, publicKey: built.publicKey, expected: false, cofactorless: true })
    }
  }

  // Small-order R (all 14 encodings) with S = k·a, so [S]B − [k]A = −[k]·torsionA must equal R.
  // For R = identity a prime-order A works (any k); otherwise A = a·B + T_α with α odd (order 8,
  // so every ρ is reachable) and the message is searched for.
  for (const encoding of ed.smallOrderEncodings()) {
    const rho = torsionIndex(encoding.point)
    for (let n = 0; n < 2; n++) {
      const a = rng.scalar()
      const alpha = rho === 0 ? 0 : rng.pick([1, 3, 5, 7])
      const publicKeyBytes = ed.encodePoint(ed.add(ed.multiply(ed.BASE, a), torsion(alpha)))
      const message = findMessage(rng, encoding.bytes, publicKeyBytes, alpha, rho, true)
      const label = `R = ${encoding.label}, A = aB + T${alpha} #${n}`
      const built = buildChecked({ message, a, torsionA: torsion(alpha), r: 0n, torsionR: encoding.point, nonceBytes: encoding.bytes }, true, label)
      push({ category: Category.smallOrderR, label, signature: built.signature, message, publicKey: built.publicKey, expected: false, cofactorless: true })
    }
  }

  // Mixed-order A = a·B + T with an honest nonce R = r·B and S = r + k·a: [S]B − [k]A = R − [k]T,
  // so the cofactorless equation holds exactly when k·T = identity. For each order of T, half the
  // messages are chosen so that it holds and half so that it fails: the category always has both.
  for (const alphas of [[1, 3, 5, 7], [2, 6], [4]]) {
    for (let n = 0; n < 12; n++) {
      const wantHolds = n % 2 === 0
      const a = rng.scalar()
      const r = rng.scalar()
      const alpha = rng.pick(alphas)
      const publicKeyBytes = ed.encodePoint(ed.add(ed.multiply(ed.BASE, a), torsion(alpha)))
      const nonceBytes = ed.encodePoint(ed.multiply(ed.BASE, r))
      const message = findMessage(rng, nonceBytes, publicKeyBytes, alpha, 0, wantHolds)
      const label = `A = aB + T${alpha} (order ${ed.smallOrder(torsion(alpha))}), k·T ${wantHolds ? '=' : '≠'} 0 #${n}`
      const built = buildChecked({ message, a, torsionA: torsion(alpha), r }, wantHolds, label)
      push({ category: Category.mixedOrderA, label, signature: built.signature, message, publicKey: built.publicKey, cofactorless: built.cofactorless })
    }
  }

  // Mixed-order R = r·B + T with a prime-order A: [S]B − [k]A = r·B ≠ R, never valid.
  for (let rho = 1; rho < 8; rho++) {
    for (let n = 0; n < 2; n++) {
      const message = rng.bytes(1 + rng.int(64))
      const label = `R = rB + T${rho} (order ${ed.smallOrder(torsion(rho))}) #${n}`
      const built = buildChecked({ message, a: rng.scalar(), r: rng.scalar(), torsionR: torsion(rho) }, false, label)
      push({ category: Category.mixedOrderR, label, signature: built.signature, message, publicKey: built.publicKey, expected: false, cofactorless: false })
    }
  }

  // Mixed-order R = r·B + T_ρ and A = a·B + T_α: holds exactly when ρ + k·α ≡ 0 (mod 8). Such an
  // R has no small order and a canonical encoding, so nothing but the equation can refuse it.
  for (let n = 0; n < 12; n++) {
    const wantHolds = n % 2 === 0
    const a = rng.scalar()
    const r = rng.scalar()
    const alpha = 1 + rng.int(7)
    // ρ ≠ 0; when the equation must hold, ρ must lie in the subgroup that T_α generates.
    let rho = 0
    while (rho === 0) rho = wantHolds ? (alpha * rng.int(8)) % 8 : 1 + rng.int(7)
    const publicKeyBytes = ed.encodePoint(ed.add(ed.multiply(ed.BASE, a), torsion(alpha)))
    const nonceBytes = ed.encodePoint(ed.add(ed.multiply(ed.BASE, r), torsion(rho)))
    const message = findMessage(rng, nonceBytes, publicKeyBytes, alpha, rho, wantHolds)
    const label = `A = aB + T${alpha}, R = rB + T${rho}, ${wantHolds ? 'holds' : 'fails'} #${n}`
    const built = buildChecked({ message, a, torsionA: torsion(alpha), r, torsionR: torsion(rho) }, wantHolds, label)
    push({ category: Category.mixedOrderAR, label, signature: built.signature, message, publicKey: built.publicKey, cofactorless: built.cofactorless })
  }

  // Non-canonical (y + p) encodings of large-order points, as A and as R, in otherwise honest
  // signatures. (Non-canonical encodings of small-order points, where the equation can be made
  // to hold, are in the small-order categories above. For these, no discrete log is known, so
  // the equation cannot be made to hold; the encoding must be refused on its own.)
  ed.largeOrderNonCanonicalEncodings().forEach((encoding, i) => {
    const h = honestAt(i)
    push({ category: Category.nonCanonicalA, label: `A = ${encoding.label}`, signature: h.signature, message: h.message, publicKey: encoding.bytes, expected: false })
    push({ category: Category.nonCanonicalR, label: `R = ${encoding.label}`, signature: concat(encoding.bytes, h.signature.subarray(32)), message: h.message, publicKey: h.publicKey, expected: false })
  })

  // Wrong lengths (refused by both; neither may throw) and the empty message (valid).
  {
    const h = honestAt(0)
    const wrong: [string, Uint8Array, Uint8Array][] = [
      ['signature of 0 bytes', new Uint8Array(0), h.publicKey],
      ['signature of 63 bytes', h.signature.subarray(0, 63), h.publicKey],
      ['signature of 65 bytes (valid + 0x00)', concat(h.signature, new Uint8Array(1)), h.publicKey],
      ['signature of 128 bytes (valid twice)', concat(h.signature, h.signature), h.publicKey],
      ['public key of 0 bytes', h.signature, new Uint8Array(0)],
      ['public key of 31 bytes', h.signature, h.publicKey.subarray(0, 31)],
      ['public key of 33 bytes (valid + 0x00)', h.signature, concat(h.publicKey, new Uint8Array(1))],
      ['all-zero signature', new Uint8Array(64), h.publicKey],
    ]
    for (const [label, signature, publicKey] of wrong) {
      push({ category: Category.wrongLength, label, signature, message: h.message, publicKey, expected: false })
    }
    for (let i = 0; i < 3; i++) {
      const keys = wasm.signSeedKeypair(rng.bytes(32))
      const signature = wasm.signDetached(new Uint8Array(0), keys.secretKey)
      push({ category: Category.emptyMessage, label: `empty message #${i}`, signature, message: new Uint8Array(0), publicKey: keys.publicKey, expected: true })
      push({ category: Category.emptyMessage, label: `empty message, signature of "x" #${i}`, signature: wasm.signDetached(utf8('x'), keys.secretKey), message: new Uint8Array(0), publicKey: keys.publicKey, expected: false })
    }
  }
  return cases
}

interface Verdict {
  readonly testCase: SignatureCase
  readonly wasm: boolean
  readonly native: boolean
}

const corpusStarted = performance.now()
const corpus = buildCorpus(new Rng(SEED))
const verdicts: Verdict[] = corpus.map((testCase) => ({
  testCase,
  wasm: wasm.verifyDetached(testCase.signature, testCase.message, testCase.publicKey),
  native: native.verifyDetached(testCase.signature, testCase.message, testCase.publicKey),
}))
const corpusMs = performance.now() - corpusStarted

function verdictsOf(category: Category): Verdict[] {
  return verdicts.filter((v) => v.testCase.category === category)
}

describe('Ed25519: the wasm and native builds accept and refuse the same signatures', () => {
  it('the BigInt model reproduces libsodium signing bit for bit (validates the edge-case arithmetic)', () => {
    const rng = new Rng(SEED ^ 0x0b16_1e75)
    const mismatches: string[] = []
    for (let i = 0; i < 6; i++) {
      const seed = rng.bytes(32)
      const message = rng.bytes(i === 0 ? 0 : rng.int(300))
      const mine = ed.signRfc8032(seed, message)
      for (const build of BUILDS) {
        const keys = build.signSeedKeypair(seed)
        if (!sameBytes(mine.publicKey, keys.publicKey)) mismatches.push(`${build.name} public key #${i}`)
        if (!sameBytes(mine.signature, build.signDetached(message, keys.secretKey))) mismatches.push(`${build.name} signature #${i}`)
      }
    }
    expect(mismatches).toEqual([])
    expect(ed.encodePoint(ed.BASE)).toEqual(Uint8Array.from([0x58, ...new Array<number>(31).fill(0x66)]))
    expect(ed.isIdentity(ed.multiply(ed.BASE, ed.L))).toBe(true)
  })

  it('the model finds the 8 torsion points with the expected orders, and 14 small-order encodings', () => {
    expect(ed.TORSION.map((t) => ed.smallOrder(t))).toEqual([1, 8, 4, 8, 2, 8, 4, 8])
    expect(ed.TORSION.every((t) => ed.isOnCurve(t))).toBe(true)
    // Torsion points are distinct and closed under addition: T_i + T_j = T_(i+j mod 8).
    for (let i = 0; i < 8; i++) {
      for (let j = 0; j < 8; j++) expect(ed.equals(ed.add(torsion(i), torsion(j)), torsion(i + j))).toBe(true)
    }
    const encodings = ed.smallOrderEncodings()
    expect(encodings).toHaveLength(14)
    expect(encodings.filter((e) => e.canonical)).toHaveLength(8)
    // The order-2 point is (0, −1) and the order-4 points are (±√−1, 0).
    expect(ed.toAffine(torsion(4))).toEqual({ x: 0n, y: ed.P - 1n })
    expect(ed.toAffine(torsion(2)).y).toBe(0n)
    // Large-order y+p encodings really are of large order (no discrete log known).
    expect(ed.largeOrderNonCanonicalEncodings().every((e) => !e.canonical && ed.smallOrder(e.point) === undefined)).toBe(true)
  })

  it('agree on every case of the corpus', () => {
    const disagreements = verdicts
      .filter((v) => v.wasm !== v.native)
      .map((v) => `${v.testCase.category}: ${v.testCase.label} (wasm ${v.wasm}, native ${v.native})`)
    expect(disagreements).toEqual([])

    // A readable summary for the log (public test data only; no key material).
    const summary = Object.values(Category).map((category) => {
      const of = verdictsOf(category)
      return { category, cases: of.length, accepted: of.filter((v) => v.wasm && v.native).length, refused: of.filter((v) => !v.wasm && !v.native).length }
    })
    console.log(`crypto-backends: ${verdicts.length} signature cases built and verified in ${corpusMs.toFixed(0)} ms`)
    console.table(summary)
  })

  it("gives libsodium's known outcome where the rule is known", () => {
    // Known: valid → accepted; bit flips, S ≥ L, small-order A or R, non-canonical A or R, wrong
    // lengths → refused. Both builds are checked, so a disagreement also shows up here.
    const mismatches = verdicts
      .filter((v) => v.testCase.expected !== undefined && (v.wasm !== v.testCase.expected || v.native !== v.testCase.expected))
      .map((v) => `${v.testCase.category}: ${v.testCase.label} (expected ${v.testCase.expected}, wasm ${v.wasm}, native ${v.native})`)
    expect(mismatches).toEqual([])
    for (const category of Object.values(Category)) expect(verdictsOf(category).length, category).toBeGreaterThan(0)
  })

  it('mixed-order keys and nonces: both outcomes occur, and libsodium accepts exactly when the cofactorless equation holds', () => {
    // libsodium refuses small-order A and R and non-canonical A, but does not check that A or R
    // lie in the prime-order subgroup, and compares R byte for byte with the encoding of
    // [S]B − [k]A (cofactorless). Established by running this corpus: mixed-order A and R are
    // accepted exactly when that equation holds.
    for (const category of [Category.mixedOrderA, Category.mixedOrderAR]) {
      const of = verdictsOf(category)
      const accepted = of.filter((v) => v.wasm && v.native).length
      const refused = of.filter((v) => !v.wasm && !v.native).length
      expect(accepted, `${category}: accepted`).toBeGreaterThan(0)
      expect(refused, `${category}: refused`).toBeGreaterThan(0)
      const notCofactorless = of
        .filter((v) => v.wasm !== v.testCase.cofactorless || v.native !== v.testCase.cofactorless)
        .map((v) => `${v.testCase.label} (cofactorless ${v.testCase.cofactorless}, wasm ${v.wasm}, native ${v.native})`)
      expect(notCofactorless, category).toEqual([])
    }
    // Each order of torsion component in A produced both outcomes.
    for (const order of [8, 4, 2]) {
      const of = verdictsOf(Category.mixedOrderA).filter((v) => v.testCase.label.includes(`(order ${order})`))
      expect(new Set(of.map((v) => v.native)), `order ${order}`).toEqual(new Set([true, false]))
    }
    // Small-order A and R are refused although the equation holds for every one of them.
    const smallOrder = [...verdictsOf(Category.smallOrderA), ...verdictsOf(Category.smallOrderR)]
    expect(smallOrder.every((v) => v.testCase.cofactorless === true && !v.wasm && !v.native)).toBe(true)
  })
})

// ---------------------------------------------------------------------------------------------
// Deterministic primitives
// ---------------------------------------------------------------------------------------------

describe('deterministic primitives give identical bytes on both builds', () => {
  const rng = new Rng(SEED ^ 0x00de_7e12)

  it('BLAKE2b generichash for every output length 1..64, unkeyed and keyed', () => {
    const inputs = [0, 1, 3, 64, 127, 128, 129, 1000].map((n) => rng.bytes(n))
    const keys: (Uint8Array | undefined)[] = [undefined, ...[1, 8, 15, 16, 32, 64].map((n) => rng.bytes(n))]
    const mismatches: string[] = []
    let compared = 0
    for (let length = 1; length <= 64; length++) {
      for (const key of keys) {
        for (const input of inputs) {
          const a = wasm.generichash(length, input, key)
          const b = native.generichash(length, input, key)
          compared++
          if (a.length !== length || !sameBytes(a, b)) mismatches.push(`length ${length}, key ${key?.length ?? 'none'}, input ${input.length}`)
        }
      }
    }
    expect(mismatches).toEqual([])
    expect(compared).toBe(64 * 7 * 8)
    // An independent anchor: unkeyed 64-byte BLAKE2b is also in OpenSSL (node:crypto).
    for (const input of inputs) {
      const reference = new Uint8Array(createHash('blake2b512').update(input).digest())
      expect(sameBytes(native.generichash(64, input, undefined), reference), `input ${input.length}`).toBe(true)
    }
  })

  it('signSeedKeypair, boxSeedKeypair and signDetached from the same seeds', () => {
    const seeds = [new Uint8Array(32), new Uint8Array(32).fill(0xff), ...Array.from({ length: 14 }, () => rng.bytes(32))]
    const mismatches: string[] = []
    seeds.forEach((seed, i) => {
      const signW = wasm.signSeedKeypair(seed)
      const signN = native.signSeedKeypair(seed)
      if (!sameBytes(signW.publicKey, signN.publicKey)) mismatches.push(`sign public key #${i}`)
      if (!sameBytes(signW.secretKey, signN.secretKey)) mismatches.push(`sign secret key #${i}`)
      const boxW = wasm.boxSeedKeypair(seed)
      const boxN = native.boxSeedKeypair(seed)
      if (!sameBytes(boxW.publicKey, boxN.publicKey)) mismatches.push(`box public key #${i}`)
      if (!sameBytes(boxW.secretKey, boxN.secretKey)) mismatches.push(`box secret key #${i}`)
      for (const size of [0, 1, 100, 5000]) {
        const message = rng.bytes(size)
        const sigW = wasm.signDetached(message, signW.secretKey)
        const sigN = native.signDetached(message, signN.secretKey)
        if (sigW.length !== 64 || !sameBytes(sigW, sigN)) mismatches.push(`signature #${i}, message ${size}`)
      }
    })
    expect(mismatches).toEqual([])
  })

  it('aeadEncrypt with the same nonce, key and additional data', () => {
    const mismatches: string[] = []
    for (let i = 0; i < 6; i++) {
      const key = rng.bytes(32)
      const nonce = rng.bytes(24)
      for (const size of [0, 1, 15, 16, 17, 64, 1000, 70_000]) {
        for (const adSize of [0, 5, 100]) {
          const plaintext = rng.bytes(size)
          const ad = rng.bytes(adSize)
          const a = wasm.aeadEncrypt(plaintext, ad, nonce, key)
          const b = native.aeadEncrypt(plaintext, ad, nonce, key)
          if (a.length !== size + 16 || !sameBytes(a, b)) mismatches.push(`#${i} plaintext ${size} ad ${adSize}`)
        }
      }
    }
    expect(mismatches).toEqual([])
  })
})

// ---------------------------------------------------------------------------------------------
// Cross-compatibility of the randomised and authenticating primitives
// ---------------------------------------------------------------------------------------------

describe('each build opens what the other sealed, and both refuse the same forgeries', () => {
  const rng = new Rng(SEED ^ 0x0c05_5c0b)
  const pairs = [
    [wasm, native],
    [native, wasm],
  ] as const

  it('AEAD: ciphertexts decrypt in the other build; tampering, wrong keys and short inputs give undefined in both', () => {
    const failures: string[] = []
    for (const [from, to] of pairs) {
      for (const size of [0, 1, 16, 100, 5000]) {
        const key = rng.bytes(32)
        const nonce = rng.bytes(24)
        const ad = rng.bytes(rng.int(40))
        const plaintext = rng.bytes(size)
        const ciphertext = from.aeadEncrypt(plaintext, ad, nonce, key)
        const where = `${from.name}→${to.name} plaintext ${size}`
        const opened = to.aeadDecrypt(ciphertext, ad, nonce, key)
        if (opened === undefined || !sameBytes(opened, plaintext)) failures.push(`${where}: does not decrypt`)

        const forgeries: [string, Uint8Array, Uint8Array, Uint8Array, Uint8Array][] = [
          ['flipped ciphertext bit', flipBit(ciphertext, rng.int(ciphertext.length * 8)), ad, nonce, key],
          ['flipped tag bit', flipBit(ciphertext, (ciphertext.length - 1 - rng.int(16)) * 8 + rng.int(8)), ad, nonce, key],
          ['extra byte appended', concat(ciphertext, new Uint8Array(1)), ad, nonce, key],
          ['last byte dropped', ciphertext.subarray(0, ciphertext.length - 1), ad, nonce, key],
          ['tampered additional data', ciphertext, concat(ad, new Uint8Array(1)), nonce, key],
          ['wrong key', ciphertext, ad, nonce, flipBit(key, rng.int(256))],
          ['wrong nonce', ciphertext, ad, flipBit(nonce, rng.int(192)), key],
          ['nonce of 23 bytes', ciphertext, ad, nonce.subarray(0, 23), key],
          ['key of 31 bytes', ciphertext, ad, nonce, key.subarray(0, 31)],
        ]
        for (let length = 0; length < 16; length++) forgeries.push([`ciphertext of ${length} bytes`, ciphertext.subarray(0, length), ad, nonce, key])
        for (const [what, c, a, n, k] of forgeries) {
          for (const build of BUILDS) {
            let result: Uint8Array | undefined | 'threw'
            try {
              result = build.aeadDecrypt(c, a, n, k)
            } catch {
              result = 'threw'
            }
            if (result !== undefined) failures.push(`${where}, ${what}: ${build.name} gave ${result === 'threw' ? 'an exception' : 'plaintext'}`)
          }
        }
      }
    }
    expect(failures).toEqual([])
  })

  it('sealed boxes: each build opens what the other sealed; altered, short or misaddressed boxes give undefined in both', () => {
    const failures: string[] = []
    for (const [from, to] of pairs) {
      for (const size of [0, 1, 32, 1000]) {
        const recipient = to.boxSeedKeypair(rng.bytes(32))
        const stranger = to.boxSeedKeypair(rng.bytes(32))
        const message = rng.bytes(size)
        const sealed = from.boxSeal(message, recipient.publicKey)
        const where = `${from.name}→${to.name} message ${size}`
        if (sealed.length !== size + 48) failures.push(`${where}: sealed length ${sealed.length}`)
        const opened = to.boxSealOpen(sealed, recipient.publicKey, recipient.secretKey)
        if (opened === undefined || !sameBytes(opened, message)) failures.push(`${where}: does not open`)

        const forgeries: [string, Uint8Array, Uint8Array, Uint8Array][] = [
          ['flipped bit in the ephemeral key', flipBit(sealed, rng.int(256)), recipient.publicKey, recipient.secretKey],
          ['flipped bit in the body or tag', flipBit(sealed, 256 + rng.int((sealed.length - 32) * 8)), recipient.publicKey, recipient.secretKey],
          ['extra byte appended', concat(sealed, new Uint8Array(1)), recipient.publicKey, recipient.secretKey],
          ['last byte dropped', sealed.subarray(0, sealed.length - 1), recipient.publicKey, recipient.secretKey],
          ['opened by another key pair', sealed, stranger.publicKey, stranger.secretKey],
          ["recipient's public key, stranger's secret key", sealed, recipient.publicKey, stranger.secretKey],
          ['public key of 31 bytes', sealed, recipient.publicKey.subarray(0, 31), recipient.secretKey],
          ['secret key of 31 bytes', sealed, recipient.publicKey, recipient.secretKey.subarray(0, 31)],
        ]
        for (const length of [0, 1, 16, 32, 47]) forgeries.push([`sealed box of ${length} bytes`, sealed.subarray(0, length), recipient.publicKey, recipient.secretKey])
        for (const [what, box, pk, sk] of forgeries) {
          for (const build of BUILDS) {
            let result: Uint8Array | undefined | 'threw'
            try {
              result = build.boxSealOpen(box, pk, sk)
            } catch {
              result = 'threw'
            }
            if (result !== undefined) failures.push(`${where}, ${what}: ${build.name} gave ${result === 'threw' ? 'an exception' : 'plaintext'}`)
          }
        }
      }
    }
    expect(failures).toEqual([])
  })

  it('memcmp: same answers for equal and different byte strings', () => {
    type Outcome = 'equal' | 'different' | 'threw'
    const outcome = (build: SodiumBackend, a: Uint8Array, b: Uint8Array): Outcome => {
      try {
        return build.memcmp(a, b) ? 'equal' : 'different'
      } catch {
        return 'threw'
      }
    }
    const failures: string[] = []
    for (const size of [0, 1, 32, 1000]) {
      const a = rng.bytes(size)
      const comparisons: [string, Uint8Array, Outcome][] = [[`equal, ${size} bytes`, a.slice(), 'equal']]
      for (const position of size === 0 ? [] : [0, size >> 1, size - 1]) {
        comparisons.push([`differing at byte ${position} of ${size}`, flipBit(a, position * 8 + rng.int(8)), 'different'])
      }
      for (const [what, b, want] of comparisons) {
        for (const build of BUILDS) {
          const got = outcome(build, a, b)
          if (got !== want) failures.push(`${what}: ${build.name} ${got}`)
        }
      }
    }
    // Different lengths: both builds answer "different" (libsodium-wrappers itself would throw).
    for (const [x, y] of [
      [rng.bytes(32), rng.bytes(31)],
      [new Uint8Array(0), new Uint8Array(1)],
      [new Uint8Array(32), new Uint8Array(33)],
    ] as const) {
      for (const build of BUILDS) {
        const got = outcome(build, x, y)
        if (got !== 'different') failures.push(`lengths ${x.length}/${y.length}: ${build.name} ${got}`)
      }
    }
    expect(failures).toEqual([])
  })
})

it('compares sodium-native with libsodium-wrappers, not one build with itself', () => {
  // The native adapter hands only BLAKE2b outputs and keys shorter than 16 bytes to its wasm
  // fallback; everything else above ran in sodium-native.
  expect([wasm.name, native.name]).toEqual(['wasm', 'native'])
})
