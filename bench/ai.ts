/**
 * AI-context benchmark (issue 6), every figure next to its baseline in the same run.
 *
 * 1. Recall over N memories (default 100 000) with 384-dim embeddings, through the real
 *    `dev.memory.recall` (MiniSearch BM25+ index, flat unit-vector matrix, filters, reading the
 *    results from the inner doc) — p50/p99 for text, embedding and combined (RRF) queries.
 *    Baseline: a brute-force scan over a plain array of the same memories (text: count of query
 *    terms contained in each text; embedding: cosine against every raw vector; combined: both scans
 *    fused the same way), full sort, top 10.
 * 2. Streaming: token-to-screen latency PC → glasses — from `write(token)` on the PC to the token
 *    being readable in the turn on the glasses, via a `change` event — and sealed envelopes per
 *    1 000 tokens. Over the in-process loopback network in hub layout (it plays the relay; no real
 *    sockets). Baseline: the same stream sealed per token (`streamFlushDelayMs: 0`).
 *
 * Sizes: BENCH_AI_MEMORIES, BENCH_AI_QUERIES, BENCH_AI_TOKENS, BENCH_AI_TOKEN_GAP_MS.
 */
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { sealedLog } from '../src/crdt/sealed-log.js'
import { ContextSync, createAccount, loopbackNetwork, memoryStorage } from '../src/index.js'
import { fmt, percentile, printTable } from './table.js'

const MEMORIES = Number(process.env.BENCH_AI_MEMORIES ?? 100_000)
const QUERIES = Number(process.env.BENCH_AI_QUERIES ?? 100)
const TOKENS = Number(process.env.BENCH_AI_TOKENS ?? 1_000)
const TOKEN_GAP_MS = Number(process.env.BENCH_AI_TOKEN_GAP_MS ?? 2)
const DIM = 384
const CLUSTERS = 500
const LIMIT = 10

// ── data ──────────────────────────────────────────────────────────────────────

const rng = prng.create(42)
const VOCAB = Array.from({ length: 5000 }, (_, i) => {
  let w = ''
  let n = i + 7
  for (let k = 0; k < 2 + (i % 4); k++) {
    w += 'bcdfghjklmnprstvwz'[n % 18]! + 'aeiou'[(n >> 3) % 5]!
    n = Math.floor(n / 7) + k * 13
  }
  return `${w}${i % 10}`
})

/** Zipf-ish word pick: frequent words are common, the long tail is rare. */
function word(): string {
  const u = prng.real53(rng)
  return VOCAB[Math.min(VOCAB.length - 1, Math.floor(Math.pow(u, 3) * VOCAB.length))]!
}

function gaussian(): number {
  const u = Math.max(prng.real53(rng), 1e-12)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * prng.real53(rng))
}

const centroids = Array.from({ length: CLUSTERS }, () => Float32Array.from({ length: DIM }, gaussian))

function nearCentroid(c: number, noise: number): Float32Array {
  const base = centroids[c]!
  return Float32Array.from({ length: DIM }, (_, i) => base[i]! + noise * gaussian())
}

interface Plain {
  text: string
  lower: string
  vec: Float32Array
}

// ── baseline: brute-force scans ──────────────────────────────────────────────

function scanText(items: Plain[], query: string, n: number): number[] {
  const terms = query.toLowerCase().split(/\s+/).filter(Boolean)
  const scored: Array<[number, number]> = []
  items.forEach((item, i) => {
    let s = 0
    for (const t of terms) if (item.lower.includes(t)) s++
    if (s > 0) scored.push([i, s])
  })
  scored.sort((a, b) => b[1] - a[1])
  return scored.slice(0, n).map(([i]) => i)
}

function scanVector(items: Plain[], q: Float32Array, n: number): number[] {
  let qn = 0
  for (let i = 0; i < q.length; i++) qn += q[i]! * q[i]!
  qn = Math.sqrt(qn)
  const scored = items.map((item, idx) => {
    let dot = 0
    let nn = 0
    const v = item.vec
    for (let i = 0; i < v.length; i++) {
      dot += v[i]! * q[i]!
      nn += v[i]! * v[i]!
    }
    return [idx, dot / (Math.sqrt(nn) * qn)] as [number, number]
  })
  scored.sort((a, b) => b[1] - a[1])
  return scored.slice(0, n).map(([i]) => i)
}

function fuse(lists: number[][], n: number): number[] {
  const score = new Map<number, number>()
  for (const list of lists) list.forEach((id, rank) => score.set(id, (score.get(id) ?? 0) + 1 / (60 + rank + 1)))
  return [...score].sort((a, b) => b[1] - a[1]).slice(0, n).map(([i]) => i)
}

function time(fn: () => unknown): number {
  const start = performance.now()
  fn()
  return performance.now() - start
}

// ── 1. recall ────────────────────────────────────────────────────────────────

async function benchRecall(): Promise<void> {
  const account = await createAccount()
  // Offline device; compaction off while loading so setup does not re-seal a growing snapshot.
  const dev = await ContextSync.open({
    account,
    device: { kind: 'pc' },
    storage: memoryStorage(),
    sync: { compaction: { maxEntries: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER } },
  })
  const plain: Plain[] = []
  const loadStart = performance.now()
  const BATCH = 2000
  for (let start = 0; start < MEMORIES; start += BATCH) {
    const writes: Array<Promise<unknown>> = []
    for (let i = start; i < Math.min(MEMORIES, start + BATCH); i++) {
      const cluster = i % CLUSTERS
      const text = `${Array.from({ length: 8 + (i % 6) }, word).join(' ')} topic${cluster}`
      const vec = nearCentroid(cluster, 0.6)
      plain.push({ text, lower: text.toLowerCase(), vec })
      writes.push(dev.memory.remember({ text, tags: [`t${i % 20}`], embedding: vec, embeddingModel: 'bench-384' }))
    }
    await Promise.all(writes)
  }
  const loadMs = performance.now() - loadStart

  const queries = Array.from({ length: QUERIES }, (_, i) => {
    const cluster = (i * 37) % CLUSTERS
    return { text: `${word()} ${word()} topic${cluster}`, vec: nearCentroid(cluster, 0.6) }
  })
  // Warm up both paths (JIT), then measure.
  for (const q of queries.slice(0, 5)) {
    dev.memory.recall({ text: q.text, embedding: q.vec, limit: LIMIT })
    fuse([scanText(plain, q.text, 50), scanVector(plain, q.vec, 50)], LIMIT)
  }
  const runs: Record<string, number[]> = {}
  const measure = (name: string, fn: (q: (typeof queries)[number]) => unknown) => {
    runs[name] = queries.map((q) => time(() => fn(q)))
  }
  measure('text · recall', (q) => dev.memory.recall({ text: q.text, limit: LIMIT }))
  measure('text · brute-force scan', (q) => scanText(plain, q.text, LIMIT))
  measure('embedding · recall', (q) => dev.memory.recall({ embedding: q.vec, limit: LIMIT }))
  measure('embedding · brute-force scan', (q) => scanVector(plain, q.vec, LIMIT))
  measure('combined · recall (RRF)', (q) => dev.memory.recall({ text: q.text, embedding: q.vec, limit: LIMIT }))
  measure('combined · brute-force scans + RRF', (q) => fuse([scanText(plain, q.text, 50), scanVector(plain, q.vec, 50)], LIMIT))
  measure('combined + filters · recall', (q) => dev.memory.recall({ text: q.text, embedding: q.vec, tags: ['t3'], kind: 'fact', validAt: Date.now(), limit: LIMIT }))

  // Agreement with the exact scan (vector recall is exact: expect 100 %).
  let agree = 0
  for (const q of queries) {
    const ours = dev.memory.recall({ embedding: q.vec, limit: LIMIT }).map((m) => m.text)
    const exact = new Set(scanVector(plain, q.vec, LIMIT).map((i) => plain[i]!.text))
    agree += ours.filter((t) => exact.has(t)).length / LIMIT
  }

  const rows: string[][] = []
  const baseline = (name: string) => name.replace(/ · .*/, '')
  const baselines = new Map<string, number>()
  for (const [name, ms] of Object.entries(runs)) if (name.includes('brute')) baselines.set(baseline(name), percentile(ms, 50))
  for (const [name, ms] of Object.entries(runs)) {
    const p50 = percentile(ms, 50)
    const base = baselines.get(baseline(name).replace(' + filters', ''))
    rows.push([name, fmt(p50, 'ms'), fmt(percentile(ms, 99), 'ms'), name.includes('brute') || base === undefined ? '—' : fmt(base / p50, '× faster')])
  }
  printTable(
    `Recall over ${MEMORIES.toLocaleString('en')} memories (${DIM}-dim embeddings, limit ${LIMIT}, ${QUERIES} queries each; load ${fmt(loadMs / 1000, 's')})`,
    ['query', 'p50', 'p99', 'vs baseline p50'],
    rows,
  )
  console.log(`vector top-${LIMIT} agreement with the exact scan: ${fmt(100 * (agree / QUERIES), '%')}`)
  await dev.close()
}

// ── 2. streaming ─────────────────────────────────────────────────────────────

async function streamRun(streamFlushDelayMs: number | undefined): Promise<{ latencies: number[]; envelopes: number; frames: number }> {
  const account = await createAccount()
  const net = loopbackNetwork({ seed: 5, layout: 'hub' })
  const sync = streamFlushDelayMs === undefined ? {} : { streamFlushDelayMs }
  const pc = await ContextSync.open({ account, device: { kind: 'pc' }, storage: memoryStorage(), transports: [net.transport({ name: 'pc' })], sync })
  const glasses = await ContextSync.open({ account, device: { kind: 'glasses' }, storage: memoryStorage(), transports: [net.transport({ name: 'glasses' })], sync })
  const settle = async () => {
    for (let i = 0; i < 3; i++) {
      await Promise.all([pc.flush(), glasses.flush()])
      await net.settle()
    }
  }
  await settle()
  const s = glasses.sessions.start({ title: 'Stream' })
  await s.append({ role: 'user', text: 'Tell me a long story' })
  await settle()

  const tokens = Array.from({ length: TOKENS }, (_, i) => `${word()} `)
  const ends: number[] = []
  let total = 0
  for (const t of tokens) ends.push((total += t.length))
  const writtenAt = new Array<number>(TOKENS).fill(0)
  const latencies: number[] = []
  let seen = 0
  const onGlasses = glasses.sessions.open(s.id)
  const w = pc.sessions.open(s.id).stream({ role: 'assistant' })
  glasses.sessions.on('change', (e) => {
    if (e.origin !== 'remote' || !e.turnIds?.includes(w.id)) return
    const length = onGlasses.turn(w.id)?.text.length ?? 0
    const now = performance.now()
    while (seen < TOKENS && ends[seen]! <= length && writtenAt[seen]! > 0) latencies.push(now - writtenAt[seen++]!)
  })
  const log = sealedLog(pc.replica('personal')!.outer)
  let envelopes = 0
  const count = (event: Y.YArrayEvent<Uint8Array>, tr: Y.Transaction) => {
    if (tr.local) envelopes += event.changes.added.size
  }
  log.observe(count)
  const room = pc.roomId('personal')
  let frames = 0
  const offTap = net.on('message', (m) => {
    if (m.roomId === room && m.from === 'pc' && m.type === 'sync-update') frames++
  })
  for (let i = 0; i < TOKENS; i++) {
    writtenAt[i] = performance.now()
    w.write(tokens[i]!)
    await new Promise((r) => setTimeout(r, TOKEN_GAP_MS))
  }
  await w.end()
  await settle()
  log.unobserve(count)
  offTap()
  if (seen !== TOKENS) throw new Error(`glasses saw ${seen} of ${TOKENS} tokens`)
  await pc.close()
  await glasses.close()
  net.destroy()
  return { latencies, envelopes, frames }
}

async function benchStreaming(): Promise<void> {
  const rows: string[][] = []
  for (const [name, delay] of [
    ['one envelope per token (streamFlushDelayMs 0, baseline)', 0],
    ['20 ms stream window (default)', undefined],
  ] as const) {
    const { latencies, envelopes, frames } = await streamRun(delay)
    rows.push([
      name,
      fmt(percentile(latencies, 50), 'ms'),
      fmt(percentile(latencies, 99), 'ms'),
      fmt((envelopes * 1000) / TOKENS),
      fmt((frames * 1000) / TOKENS),
    ])
  }
  printTable(
    `Streaming PC → glasses, ${TOKENS} tokens one every ~${TOKEN_GAP_MS} ms (loopback hub standing in for the relay, in-process)`,
    ['sealing', 'token→screen p50', 'p99', 'envelopes / 1k tokens', 'frames sent / 1k tokens'],
    rows,
  )
}

/** Run the AI-context benchmark and print its tables. */
export async function benchAi(): Promise<void> {
  await benchStreaming()
  await benchRecall()
}

if (import.meta.url === `file://${process.argv[1]}`) await benchAi()
