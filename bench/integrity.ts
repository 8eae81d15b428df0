/**
 * Integrity benchmark (`BENCH=integrity npm run bench`): the same probes on the baseline tree
 * (the commit before the integrity work, `BENCH_BASELINE`, default `707ed0e`; a git worktree made
 * by bench/baseline-tree.ts) and on the "after" tree (`BENCH_AFTER_ROOT`, default this tree), side
 * by side in one run:
 * - no regression: burst and single-write figures of two `ContextSync` devices on a loopback
 *   network (as `BENCH=core`'s facade row) and through a relay on 127.0.0.1 (as `BENCH=relay`);
 * - cost of local authority (WIRE.md "Device store layout", "Replica checkpoint"): bytes written
 *   to local storage per memory write on a writer and a receiver, and cold open of a store of
 *   100k memories.
 *
 * Every probe runs in a fresh child process (bench/integrity-probe.ts run with tsx), which
 * imports the library from the tree under test, so both trees run identical probe code and no
 * module state or JIT warmth carries from one tree to the other. Each probe runs `BENCH_RUNS`
 * times per tree, alternating the order run by run (baseline first, then after first, …) so drift
 * on this noisy machine weighs on both; tables give medians of the runs, every run, and
 * after/before (the `better` column says which way is an improvement). The after tree's `src/` is
 * copied once at the start (bench/baseline-tree.ts `freezeTree`; BENCH_AFTER_FREEZE=0 runs it in
 * place), since a working copy others merge into would otherwise change under a run; without the
 * copy the run checks the tree's `src/` hash before every probe and says which runs saw which.
 *
 * Env: BENCH_RUNS (3), BENCH_INTEGRITY_N (20000 burst writes), BENCH_INTEGRITY_SINGLE (1000 single
 * writes), BENCH_INTEGRITY_WARMUP (200 writes before each burst or single series),
 * BENCH_INTEGRITY_LOCAL (5000 awaited writes for local bytes), BENCH_INTEGRITY_COLD (100000
 * memories), BENCH_INTEGRITY_OPENS (3 measured opens per run), BENCH_INTEGRITY_PROBES (a comma
 * list of facade-burst, facade-single, relay-burst, relay-single, local-bytes, cold-open; default
 * all), BENCH_INTEGRITY_DIR (where the cold-open stores are built; default a temp dir, removed
 * afterwards), BENCH_BASELINE, BENCH_AFTER_ROOT, BENCH_AFTER_FREEZE (1); the relay options of bench/relay.ts
 * (BENCH_RELAY_STORAGE, BENCH_RELAY_MERGE_MS) apply to the relay probes.
 *
 * @module
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { afterTree, baselineTree, describeTree, freezeTree, srcHash, treeLine, type SourceTree } from './baseline-tree.js'
import { PROBES, type ProbeName } from './integrity-probe.js'
import { fmt, median, printTable } from './table.js'

const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))
const BURST = Number(process.env.BENCH_INTEGRITY_N ?? 20_000)
const SINGLE = Number(process.env.BENCH_INTEGRITY_SINGLE ?? 1_000)
const WARMUP = Number(process.env.BENCH_INTEGRITY_WARMUP ?? 200)
const LOCAL = Number(process.env.BENCH_INTEGRITY_LOCAL ?? 5_000)
const COLD = Number(process.env.BENCH_INTEGRITY_COLD ?? 100_000)
const OPENS = Math.max(1, Number(process.env.BENCH_INTEGRITY_OPENS ?? 3))
/** A probe that has not finished in this long is stuck (the full cold-open build takes ~1 min). */
const PROBE_TIMEOUT_MS = 30 * 60_000

type Side = 'baseline' | 'after'
type Trees = Record<Side, SourceTree>

/** Probes the user can select; `cold-open` includes its build. */
type Selectable = Exclude<ProbeName, 'cold-open-build'>

function selectedProbes(): Set<Selectable> {
  const all = PROBES.filter((p): p is Selectable => p !== 'cold-open-build')
  const raw = process.env.BENCH_INTEGRITY_PROBES
  if (raw === undefined || raw.trim() === '') return new Set(all)
  const picked = new Set<Selectable>()
  for (const name of raw.split(',').map((s) => s.trim())) {
    const probe = all.find((p) => p === name)
    if (!probe) throw new Error(`unknown BENCH_INTEGRITY_PROBES entry '${name}'; known: ${all.join(', ')}`)
    picked.add(probe)
  }
  return picked
}

/** Baseline first on even runs, after first on odd ones. */
function order(run: number): Side[] {
  return run % 2 === 0 ? ['baseline', 'after'] : ['after', 'baseline']
}

// ── running a probe ──────────────────────────────────────────────────────────

const probeFile = fileURLToPath(new URL('./integrity-probe.ts', import.meta.url))
/** tsx as a Node `--import` hook: one process per probe (the tsx CLI would add a second). */
const tsxLoader = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href

/** Run one probe on `tree` in a child process; resolves with its JSON line. */
function runProbe(side: Side, tree: SourceTree, probe: ProbeName, args: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    // cwd = the tree under test, so tsx compiles it with its own tsconfig.
    const child = spawn(process.execPath, ['--import', tsxLoader, probeFile, tree.root, probe, JSON.stringify(args)], {
      cwd: tree.root,
      env: process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      for (const line of chunk.split('\n')) if (line.trim() !== '') console.error(`  [${probe} ${side}] ${line}`)
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), PROBE_TIMEOUT_MS)
    child.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const last = stdout.trim().split('\n').pop() ?? ''
      if (code !== 0) {
        reject(new Error(`probe ${probe} on ${side} (${tree.root}) exited with ${code ?? signal}: ${stderr.trim().split('\n').slice(-5).join(' | ')}`))
        return
      }
      try {
        resolve(JSON.parse(last) as unknown)
      } catch {
        reject(new Error(`probe ${probe} on ${side} printed no JSON line: ${last.slice(0, 200)}`))
      }
    })
  })
}

// ── reading probe results (our own child's JSON, checked on every field read) ─

function field(value: unknown, path: string[]): unknown {
  let at = value
  for (const key of path) {
    if (typeof at !== 'object' || at === null || !(key in at)) throw new Error(`probe result has no ${path.join('.')}`)
    at = (at as Record<string, unknown>)[key]
  }
  return at
}

function num(value: unknown, ...path: string[]): number {
  const at = field(value, path)
  if (typeof at !== 'number') throw new Error(`probe result ${path.join('.')} is not a number`)
  return at
}

function str(value: unknown, ...path: string[]): string {
  const at = field(value, path)
  if (typeof at !== 'string') throw new Error(`probe result ${path.join('.')} is not a string`)
  return at
}

/** Keys of an object-valued field (byKind maps). */
function keysOf(value: unknown, ...path: string[]): string[] {
  const at = field(value, path)
  if (typeof at !== 'object' || at === null) throw new Error(`probe result ${path.join('.')} is not an object`)
  return Object.keys(at)
}

/** Every result of one probe, per side, in run order. */
type Results = Record<Side, unknown[]>

/** Everything the run's probes reported about themselves, to print once. */
const seen = { crypto: { baseline: new Set<string>(), after: new Set<string>() }, rejected: { baseline: 0, after: 0 } }

/** src/ hash of the after tree → the probe runs that saw it (only checked when not frozen). */
const afterVersions = new Map<string, string[]>()

function recordVersion(side: Side, tree: SourceTree, label: string): void {
  if (side !== 'after' || tree.frozenFrom) return
  const hash = srcHash(tree.root)
  afterVersions.set(hash, [...(afterVersions.get(hash) ?? []), label])
}

async function runAlternating(trees: Trees, probe: ProbeName, args: (side: Side) => Record<string, unknown>): Promise<Results> {
  const results: Results = { baseline: [], after: [] }
  for (let r = 0; r < RUNS; r++) {
    for (const side of order(r)) {
      recordVersion(side, trees[side], `${probe} #${r + 1}`)
      const result = await runProbe(side, trees[side], probe, args(side))
      note(side, result)
      results[side].push(result)
    }
  }
  return results
}

function note(side: Side, result: unknown): void {
  seen.crypto[side].add(str(result, 'crypto'))
  seen.rejected[side] += num(result, 'rejected')
}

// ── tables ───────────────────────────────────────────────────────────────────

/** `fmt`, but an exact zero (a key kind one tree never writes) reads as 0, not 0.000. */
function show(value: number, unit = ''): string {
  return value === 0 ? `0${unit ? ` ${unit}` : ''}` : fmt(value, unit)
}

interface Row {
  subject: string
  metric: string
  unit: string
  /** Which way is an improvement. */
  better: 'higher' | 'lower'
  /** This row's value in one run's result. */
  read: (result: unknown) => number
}

function printComparison(title: string, results: Record<string, Results>, rows: Array<Row & { probe: string }>): void {
  printTable(
    title,
    ['subject', 'metric', 'baseline', 'after', 'after/before', 'better', 'baseline runs', 'after runs'],
    rows.map((row) => {
      const runs = results[row.probe]!
      const base = runs.baseline.map(row.read)
      const after = runs.after.map(row.read)
      const ratio = median(after) / median(base)
      return [
        row.subject,
        row.metric,
        show(median(base), row.unit),
        show(median(after), row.unit),
        Number.isFinite(ratio) ? fmt(ratio, '×') : '—',
        row.better,
        base.map((v) => show(v)).join(' / '),
        after.map((v) => show(v)).join(' / '),
      ]
    }),
  )
}

// ── the suite ────────────────────────────────────────────────────────────────

/** Run the integrity before/after benchmark and print its tables. */
export async function benchIntegrity(): Promise<void> {
  const probes = selectedProbes()
  const live = afterTree()
  const freeze = process.env.BENCH_AFTER_FREEZE !== '0'
  const trees: Trees = { baseline: baselineTree(), after: freeze ? freezeTree(live) : live }
  console.log(`\nintegrity suite: ${RUNS} runs per tree, alternating; load average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores at start`)
  console.log(treeLine('baseline', trees.baseline))
  console.log(treeLine('after', trees.after))
  console.log(
    `sizes: burst ${BURST}, single ${SINGLE} (warm-up ${WARMUP} before each), local bytes ${LOCAL} awaited writes, cold open ${COLD} memories × ${OPENS} opens per run; ` +
      `relay store ${process.env.BENCH_RELAY_STORAGE === 'memory' ? 'memory' : 'SQLite'}`,
  )
  const results: Record<string, Results> = {}
  const timed = { n: BURST, warmup: WARMUP }
  for (const probe of ['facade-burst', 'relay-burst'] as const) {
    if (probes.has(probe)) results[probe] = await runAlternating(trees, probe, () => timed)
  }
  const singles = { n: SINGLE, warmup: WARMUP }
  for (const probe of ['facade-single', 'relay-single'] as const) {
    if (probes.has(probe)) results[probe] = await runAlternating(trees, probe, () => singles)
  }
  if (probes.has('local-bytes')) results['local-bytes'] = await runAlternating(trees, 'local-bytes', () => ({ n: LOCAL }))
  const cold = probes.has('cold-open') ? await benchColdOpen(trees) : undefined
  printNoRegression(results)
  if (results['local-bytes']) printLocalBytes(results['local-bytes'])
  if (cold) printColdOpen(cold)

  const crypto = (side: Side) => [...seen.crypto[side]].join('+') || '—'
  console.log(
    `\nlibsodium build: baseline ${crypto('baseline')}, after ${crypto('after')}; rejected events on probe devices: baseline ${seen.rejected.baseline}, after ${seen.rejected.after}; ` +
      `load average ${loadavg()[0]!.toFixed(2)} at the end`,
  )
  // main moves while others merge: say what the figures are of.
  const now = describeTree(live.root)
  if (now.srcHash !== live.srcHash) {
    const what = freeze ? `the figures are of the copy made at the start (src sha256 ${trees.after.srcHash.slice(0, 12)})` : 'figures may mix versions'
    console.log(`note: ${live.root} changed during the run — ${treeLine('now', now)}; ${what}`)
  }
  if (!freeze) {
    const versions = [...afterVersions].map(([hash, runs]) => `${hash.slice(0, 12)}: ${runs.join(', ')}`)
    if (afterVersions.size > 1) console.log(`WARNING: the after runs saw ${afterVersions.size} versions of src/ — ${versions.join('; ')}`)
  }
}

function printNoRegression(results: Record<string, Results>): void {
  const burstRows = (['facade-burst', 'relay-burst'] as const)
    .filter((probe) => results[probe])
    .flatMap((probe) => {
      const subject = probe === 'facade-burst' ? 'ContextSync facade (loopback)' : 'ContextSync through relay (127.0.0.1)'
      return [
        { probe, subject, metric: 'throughput', unit: 'w/s', better: 'higher' as const, read: (r: unknown) => num(r, 'writesPerSecond') },
        { probe, subject, metric: 'per write', unit: 'µs', better: 'lower' as const, read: (r: unknown) => (num(r, 'ms') * 1000) / num(r, 'n') },
      ]
    })
  if (burstRows.length > 0) {
    printComparison(
      `No regression — burst: ${BURST} memory.remember issued at once until the other device has all (after ${WARMUP} warm-up writes), two owner devices, median of ${RUNS} runs per tree`,
      results,
      burstRows,
    )
  }
  const singleRows = (['facade-single', 'relay-single'] as const)
    .filter((probe) => results[probe])
    .flatMap((probe) => {
      const subject = probe === 'facade-single' ? 'ContextSync facade (loopback)' : 'ContextSync through relay (127.0.0.1)'
      return [
        { probe, subject, metric: 'p50', unit: 'µs', better: 'lower' as const, read: (r: unknown) => num(r, 'p50Us') },
        { probe, subject, metric: 'p99', unit: 'µs', better: 'lower' as const, read: (r: unknown) => num(r, 'p99Us') },
        { probe, subject, metric: 'throughput', unit: 'w/s', better: 'higher' as const, read: (r: unknown) => num(r, 'writesPerSecond') },
      ]
    })
  if (singleRows.length > 0) {
    printComparison(
      `No regression — single writes: ${SINGLE} memory.remember one at a time, each timed until the other device has it (after ${WARMUP} warm-up), median of ${RUNS} runs' percentiles per tree`,
      results,
      singleRows,
    )
  }
}

function printLocalBytes(runs: Results): void {
  const rows: Array<Row & { probe: string }> = []
  for (const role of ['writer', 'receiver'] as const) {
    const subject = role === 'writer' ? 'writer (phone)' : 'receiver (pc, loopback)'
    const row = (metric: string, unit: string, read: (r: unknown) => number) => ({ probe: 'local-bytes', subject, metric, unit, better: 'lower' as const, read })
    rows.push(row('bytes saved / write', 'B', (r) => num(r, role, 'bytesPerWrite')))
    // Kinds are the key layout of WIRE.md "Device store layout"; a kind one tree never writes reads as 0.
    const kinds = new Set([...runs.baseline, ...runs.after].flatMap((r) => keysOf(r, role, 'bytesPerWriteByKind')))
    for (const kind of [...kinds].sort()) {
      rows.push(row(`  of which ${kind}/`, 'B', (r) => (keysOf(r, role, 'bytesPerWriteByKind').includes(kind) ? num(r, role, 'bytesPerWriteByKind', kind) : 0)))
    }
    rows.push(row('saves / write', '', (r) => num(r, role, 'savesPerWrite')))
    rows.push(row('removes (total)', '', (r) => num(r, role, 'removes')))
    rows.push(row('held at end / memory', 'B', (r) => num(r, role, 'heldBytesPerMemory')))
    // Timed on the side: full-state rewrites are CPU on the device that makes them.
    if (role === 'writer') rows.push(row('awaited writes took', 'ms', (r) => num(r, 'writerMs')))
    else rows.push(row('had every write after', 'ms', (r) => num(r, 'receivedMs')))
  }
  printComparison(
    `Cost of local authority — bytes written to local storage: ${LOCAL} awaited memory.remember on a phone (memoryStorage, default compaction), received by a pc over loopback; ` +
      `counted at the storage adapter after set-up, until both went quiet (deferred compactions included), median of ${RUNS} runs per tree`,
    { 'local-bytes': runs },
    rows,
  )
}

interface ColdResults {
  builds: Record<Side, unknown>
  opens: Results
}

async function benchColdOpen(trees: Trees): Promise<ColdResults> {
  const dir = process.env.BENCH_INTEGRITY_DIR ?? mkdtempSync(join(tmpdir(), 'contextsync-bench-integrity-'))
  const path = (side: Side) => join(dir, `${side}.db`)
  try {
    // One store per tree per bench run, each written by its own tree; the opens only read it.
    const builds = {} as Record<Side, unknown>
    for (const side of order(0)) {
      rmSync(path(side), { force: true })
      rmSync(`${path(side)}-wal`, { force: true })
      rmSync(`${path(side)}-shm`, { force: true })
      recordVersion(side, trees[side], 'cold-open-build')
      builds[side] = await runProbe(side, trees[side], 'cold-open-build', { n: COLD, path: path(side) })
      note(side, builds[side])
    }
    const opens = await runAlternating(trees, 'cold-open', (side) => ({ n: COLD, path: path(side), opens: OPENS }))
    return { builds, opens }
  } finally {
    if (!process.env.BENCH_INTEGRITY_DIR) rmSync(dir, { recursive: true, force: true })
  }
}

function printColdOpen(cold: ColdResults): void {
  const open = (metric: string, key: string) => ({
    probe: 'cold-open',
    subject: 'ContextSync.open({ storage: sqliteStorage })',
    metric,
    unit: 'ms',
    better: 'lower' as const,
    read: (r: unknown) => num(r, key),
  })
  printComparison(
    `Cost of local authority — cold open of a store holding ${COLD} memories (written in bursts of 5000, compacted, closed): open + first memory.list(), ` +
      `each run the median of ${OPENS} opens after one warm-up (full GC before each), median of ${RUNS} runs per tree`,
    { 'cold-open': cold.opens },
    [open('open', 'openMs'), open('first list', 'listMs'), open('open + list', 'totalMs')],
  )
  const { baseline, after } = cold.builds
  const mib = (bytes: number) => show(bytes / 1024 / 1024, 'MiB')
  const row = (metric: string, read: (r: unknown) => number, show: (v: number) => string) => {
    const b = read(baseline)
    const a = read(after)
    return [metric, show(b), show(a), b === 0 ? '—' : fmt(a / b, '×')]
  }
  const kinds = [...new Set([...keysOf(baseline, 'payloadByKind'), ...keysOf(after, 'payloadByKind')])].sort()
  const kindBytes = (kind: string) => (r: unknown) => (keysOf(r, 'payloadByKind').includes(kind) ? num(r, 'payloadByKind', kind) : 0)
  printTable(
    `That store as built (one build per tree in this run, so no median): SQLite files after close, and the stored chunks by key kind`,
    ['store', 'baseline', 'after', 'after/before'],
    [
      row('on disk (db + wal + shm)', (r) => num(r, 'diskBytes'), mib),
      row('payload (sum of chunks)', (r) => num(r, 'payloadBytes'), mib),
      ...kinds.map((kind) => row(`  of which ${kind}/`, kindBytes(kind), mib)),
      row('build: write throughput', (r) => num(r, 'n') / (num(r, 'writeMs') / 1000), (v) => fmt(v, 'w/s')),
      row('build: compaction', (r) => num(r, 'compactMs'), (v) => fmt(v, 'ms')),
    ],
  )
}
