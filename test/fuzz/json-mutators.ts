/**
 * Structure-aware mutation of JSON text (memory export lines, awareness states): a field deleted,
 * retyped, set to an extreme number or a huge / odd string, an unknown field added, a key
 * duplicated, an array grown past its bound, a value nested thousands of levels deep. Deep
 * nesting is written as text: building it as an object would overflow `JSON.stringify` here,
 * and the point is what the parser's consumers do with it.
 *
 * @module
 */
import { chance, int, pick, weighted, type Rng } from './rng.js'

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }

const DEEP = '\u0001deep\u0001'

const ODD_STRINGS = ['', ' ', '\u0000', '\ud800', '\udfff\ud800', '"', '\\', '\n', '__proto__', 'constructor', 'toString', 'a'.repeat(201), '💥']
const ODD_NUMBERS = [0, -0, -1, 0.5, 1.5, 1e308, -1e308, 2 ** 53, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, 2 ** 31, 4096, 4097, 65, 1e-300]

function randomValue(gen: Rng, depth = 0): Json {
  return weighted<() => Json>(gen, [
    [2, () => null],
    [2, () => chance(gen, 0.5)],
    [4, () => pick(gen, ODD_NUMBERS)],
    [4, () => pick(gen, ODD_STRINGS)],
    [2, () => 'x'.repeat(pick(gen, [100_000, 100_001, 200_000, 1_048_577]))],
    [2, () => (depth > 2 ? [] : Array.from({ length: int(gen, 0, 4) }, () => randomValue(gen, depth + 1)))],
    [2, () => (depth > 2 ? {} : { [pick(gen, ODD_STRINGS)]: randomValue(gen, depth + 1) })],
    [2, () => DEEP],
  ])()
}

/** Every container and key path in `value`, so a mutation can land anywhere. */
function paths(value: Json, prefix: Array<string | number> = [], out: Array<Array<string | number>> = []): Array<Array<string | number>> {
  out.push(prefix)
  if (Array.isArray(value)) value.forEach((v, i) => paths(v, [...prefix, i], out))
  else if (value !== null && typeof value === 'object') for (const [k, v] of Object.entries(value)) paths(v, [...prefix, k], out)
  return out
}

function parentOf(root: Json, path: Array<string | number>): { parent: Json; key: string | number } | undefined {
  if (path.length === 0) return undefined
  let node: Json = root
  for (const step of path.slice(0, -1)) node = (node as Record<string | number, Json>)[step as never] as Json
  return { parent: node, key: path[path.length - 1]! }
}

function deepText(gen: Rng): string {
  const depth = pick(gen, [65, 1000, 10_000, 100_000])
  return chance(gen, 0.5) ? `${'['.repeat(depth)}0${']'.repeat(depth)}` : `${'{"a":'.repeat(depth)}0${'}'.repeat(depth)}`
}

/** Serialise, replacing the deep-nesting placeholder (at most once, to keep inputs bounded). */
export function toText(gen: Rng, value: Json): string {
  const text = JSON.stringify(value)
  const marker = JSON.stringify(DEEP)
  const at = text.indexOf(marker)
  if (at < 0) return text
  return text.slice(0, at) + deepText(gen) + text.slice(at + marker.length).split(marker).join('0')
}

/** One to three structural mutations of a parsed JSON object (in place on a copy). */
export function mutateJson(gen: Rng, input: unknown): Json {
  const root = structuredClone(input) as Json
  const rounds = chance(gen, 0.7) ? 1 : int(gen, 2, 3)
  for (let i = 0; i < rounds; i++) {
    const path = pick(gen, paths(root))
    const at = parentOf(root, path)
    const op = weighted<string>(gen, [
      [3, 'delete'],
      [5, 'retype'],
      [2, 'add'],
      [2, 'grow'],
      [1, 'deep'],
    ])
    if (op === 'add' || !at) {
      const target = at ? (at.parent as Record<string, Json>)[at.key as never] : root
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) target[pick(gen, ['extra', 'n', 'memory', 'sig', 'e', ...ODD_STRINGS])] = randomValue(gen)
      continue
    }
    const parent = at.parent as Record<string | number, Json>
    if (op === 'delete') {
      if (Array.isArray(parent)) parent.splice(at.key as number, 1)
      else delete parent[at.key]
    } else if (op === 'retype') {
      parent[at.key] = randomValue(gen)
    } else if (op === 'grow') {
      const current = parent[at.key]
      // Copies of a small value only: 4097 copies of a 1 MiB string would be a 4 GiB line.
      const small = current === null || typeof current === 'number' || typeof current === 'boolean' || (typeof current === 'string' && current.length <= 64)
      parent[at.key] = Array.isArray(current)
        ? [...current, ...Array.from({ length: pick(gen, [1, 64, 65, 4096, 4097]) }, (_, k) => `t${k}`)]
        : Array.from({ length: pick(gen, [0, 1, 65, 4097]) }, () => (small ? current : 0))
    } else {
      parent[at.key] = DEEP
    }
  }
  return root
}

/** Text-level JSON damage: a duplicated key, a stray token, cut or doubled text. */
export function mutateJsonText(gen: Rng, text: string): string {
  const at = int(gen, 0, text.length)
  return weighted<() => string>(gen, [
    [3, () => text.replace(/"([a-zA-Z]+)":/, (m) => `${m}${pick(gen, ['null', '0', '"x"', '{}'])},${m}`)],
    [2, () => text.slice(0, at) + pick(gen, [',', '}', ']', '"', ':', '\\u', '\u2028', 'NaN', '-', '1e999']) + text.slice(at)],
    [2, () => text.slice(0, at)],
    [1, () => text + text],
    [1, () => ` \t${text}\r`],
  ])()
}
