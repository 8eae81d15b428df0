/**
 * AI-context benchmark, every figure next to its baseline in the same run.
 *
 * 1. Recall over N memories (default 100 000) with 384-dim embeddings, through the real
 *    `dev.memory.recall` (MiniSearch BM25+ index, flat unit-vector matrix, filters, reading the
 *    results from the inner doc) — p50/p99 for text, embedding and combined (RRF) queries.
 *    Baseline: a brute-force scan over a plain array of the same memories (text: count of query
 *    terms contained in each text; embedding: cosine against every raw vector; combined: both scans
 *    fused the same way), full sort, top 10.
 * 2. Streaming: token-to-screen latency PC → glasses — from `write(token)` on the PC to the token
 *    being readable in the turn on the glasses, via a `change` event — and sealed envelopes per
 *    1 000 tokens, through a relay on 127.0.0.1 (real sockets; relay, PC and glasses in this
 *    process). Baselines: stock y-websocket clients streaming into a plain Y.Text (one insert per
 *    token) through the same relay code without auth, and the E2EE stream sealed per token
 *    (`streamFlushDelayMs: 0`).
 *
 * Sizes: BENCH_AI_MEMORIES, BENCH_AI_QUERIES, BENCH_AI_TOKENS, BENCH_AI_TOKEN_GAP_MS;
 * BENCH_AI_ONLY=stream|recall runs one part; BENCH_AI_DEBUG=1 prints the slowest text queries.
 */
import * as Y from 'yjs'
import * as prng from 'lib0/prng'
import { sealedLog } from '../src/crdt/sealed-log.js'
import { WebsocketProvider } from 'y-websocket'
import { ContextSync, createAccount, memoryStorage, type Transport } from '../src/index.js'
import { websocketTransport } from '../src/adapters/websocket.js'
import { startRelay, until, WS } from './relay-common.js'
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
  // BENCH_AI_DEBUG=1: which text queries were slowest (to see when pruning cannot apply).
  if (process.env.BENCH_AI_DEBUG) {
    const slow = runs['text · recall']!.map((ms, i) => [ms, queries[i]!.text] as const).sort((a, b) => b[0] - a[0]).slice(0, 5)
    console.log('slowest text queries:', slow.map(([ms, t]) => `${ms.toFixed(1)} ms "${t}"`).join('; '))
  }
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

interface StreamResult {
  latencies: number[]
  /** Sealed envelopes (E2EE) or Yjs updates (plain) the writer produced for the stream. */
  envelopes: number
  /** Messages the relay received during the stream (both devices, sync and awareness). */
  relayFrames: number
  /** Stream duration from the first write to the last token on screen. */
  ms: number
}

/** Token texts and where each ends in the concatenated turn text. */
function streamTokens(): { tokens: string[]; ends: number[] } {
  const tokens = Array.from({ length: TOKENS }, () => `${word()} `)
  const ends: number[] = []
  let total = 0
  for (const t of tokens) ends.push((total += t.length))
  return { tokens, ends }
}

/**
 * Write the tokens one every TOKEN_GAP_MS; `visible()` reports the receiver's text length at each
 * of its change events, which stamps every token whose end is now on screen.
 */
async function runStream(
  write: (token: string) => void,
  end: () => Promise<void>,
  onVisible: (listener: (length: number) => void) => void,
): Promise<{ latencies: number[]; ms: number }> {
  const { tokens, ends } = streamTokens()
  const writtenAt = new Array<number>(TOKENS).fill(0)
  const latencies: number[] = []
  let seen = 0
  let lastSeenAt = 0
  onVisible((length) => {
    const now = performance.now()
    while (seen < TOKENS && ends[seen]! <= length && writtenAt[seen]! > 0) latencies.push(now - writtenAt[seen++]!)
    lastSeenAt = now
  })
  const start = performance.now()
  for (let i = 0; i < TOKENS; i++) {
    writtenAt[i] = performance.now()
    write(tokens[i]!)
    await new Promise((r) => setTimeout(r, TOKEN_GAP_MS))
  }
  await end()
  await until(() => seen === TOKENS, 10_000, `all ${TOKENS} tokens on the receiver (saw ${seen})`)
  return { latencies, ms: lastSeenAt - start }
}

/** Baseline: stock y-websocket clients, one Y.Text insert per token, through a relay without auth. */
async function plainStream(): Promise<StreamResult> {
  const server = await startRelay('none')
  const room = `plainstream${Date.now()}.session`
  const options = { WebSocketPolyfill: WS, disableBc: true, resyncInterval: -1 }
  const pcDoc = new Y.Doc()
  const glassesDoc = new Y.Doc()
  const pc = new WebsocketProvider(server.relay.url, room, pcDoc, options)
  const glasses = new WebsocketProvider(server.relay.url, room, glassesDoc, options)
  try {
    await until(() => pc.synced && glasses.synced, 10_000, 'plain providers to sync')
    const text = pcDoc.getText('turn')
    let envelopes = 0
    pcDoc.on('update', () => envelopes++)
    const frames0 = server.relay.metrics().messagesIn
    const run = await runStream(
      (token) => pcDoc.transact(() => text.insert(text.length, token)),
      async () => {},
      (listener) => glassesDoc.getText('turn').observe(() => listener(glassesDoc.getText('turn').length)),
    )
    return { ...run, envelopes, relayFrames: server.relay.metrics().messagesIn - frames0 }
  } finally {
    pc.destroy()
    glasses.destroy()
    await server.close()
  }
}

/** PC streams an assistant turn into a session the glasses started, both through the relay. */
async function e2eeStream(streamFlushDelayMs: number | undefined): Promise<StreamResult> {
  const server = await startRelay(undefined)
  const account = await createAccount()
  const sync = streamFlushDelayMs === undefined ? {} : { streamFlushDelayMs }
  const transports: Transport[] = []
  const open = async (kind: 'pc' | 'glasses') => {
    const transport = websocketTransport({ url: server.relay.url, WebSocketPolyfill: WS })
    transports.push(transport)
    return ContextSync.open({ account, device: { kind }, storage: memoryStorage(), transports: [transport], sync })
  }
  const pc = await open('pc')
  const glasses = await open('glasses')
  try {
    const s = glasses.sessions.start({ title: 'Stream' })
    await s.append({ role: 'user', text: 'Tell me a long story' })
    await until(() => pc.sessions.list().length === 1, 10_000, 'the session to reach the pc')
    const log = sealedLog(pc.replica('personal')!.outer)
    let envelopes = 0
    const count = (event: Y.YArrayEvent<Uint8Array>, tr: Y.Transaction) => {
      if (tr.local) envelopes += event.changes.added.size
    }
    log.observe(count)
    const frames0 = server.relay.metrics().messagesIn
    const onGlasses = glasses.sessions.open(s.id)
    const w = pc.sessions.open(s.id).stream({ role: 'assistant' })
    const run = await runStream(
      (token) => w.write(token),
      async () => {
        await w.end()
      },
      (listener) =>
        glasses.sessions.on('change', (e) => {
          if (e.origin === 'remote' && e.turnIds?.includes(w.id)) listener(onGlasses.turn(w.id)?.text.length ?? 0)
        }),
    )
    log.unobserve(count)
    return { ...run, envelopes, relayFrames: server.relay.metrics().messagesIn - frames0 }
  } finally {
    await pc.close()
    await glasses.close()
    for (const t of transports) t.close()
    await server.close()
  }
}

async function benchStreaming(): Promise<void> {
  const rows: string[][] = []
  const subjects: Array<[string, () => Promise<StreamResult>]> = [
    ['plain y-websocket, one Y.Text insert per token (baseline)', plainStream],
    ['E2EE, one envelope per token (streamFlushDelayMs 0)', () => e2eeStream(0)],
    ['E2EE, 20 ms stream window (default)', () => e2eeStream(undefined)],
  ]
  let baseP99 = 0
  for (const [name, run] of subjects) {
    const { latencies, envelopes, relayFrames, ms } = await run()
    const p99 = percentile(latencies, 99)
    if (baseP99 === 0) baseP99 = p99
    const windows = ms / 20
    rows.push([
      name,
      fmt(percentile(latencies, 50), 'ms'),
      fmt(p99, 'ms'),
      fmt(p99 / baseP99, '×'),
      fmt((envelopes * 1000) / TOKENS),
      fmt(envelopes / windows),
      fmt((relayFrames * 1000) / TOKENS),
      name.includes('default') ? `${p99 <= 50 ? 'met' : 'missed'}, ${envelopes / windows <= 1 ? 'met' : 'missed'}` : '',
    ])
  }
  printTable(
    `Streaming PC → glasses through a relay on 127.0.0.1 (real sockets, SQLite relay store), ${TOKENS} tokens one every ~${TOKEN_GAP_MS} ms; latency = write(token) on the PC → token readable on the glasses — targets p99 ≤ 50 ms, ≤ 1 envelope per 20 ms window`,
    ['subject', 'token→screen p50', 'p99', 'p99 vs plain', 'envelopes / 1k tokens', 'envelopes / 20 ms window', 'relay frames in / 1k tokens', 'targets'],
    rows,
  )
}

/** Run the AI-context benchmark and print its tables. */
export async function benchAi(): Promise<void> {
  const only = process.env.BENCH_AI_ONLY
  if (only !== 'recall') await benchStreaming()
  if (only !== 'stream') await benchRecall()
}

if (import.meta.url === `file://${process.argv[1]}`) await benchAi()
