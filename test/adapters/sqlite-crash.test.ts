/**
 * Crash test with real SIGKILLs: a child process saves chunks through sqliteStorage and prints an
 * ack only after each save resolved; we kill it at a seeded random moment, reopen the file and
 * check that every acked write is there, byte for byte, and that the store opens cleanly.
 *
 * Replay a failing run with CRASH_SEED=<seed printed below>.
 *
 * The writer (test/fixtures/sqlite-writer.ts, also runnable as `node --import tsx …`) is bundled
 * once with esbuild — the compiler tsx itself runs on — and each child is then a plain `node`
 * process: tsx's loader costs ~0.3 s of CPU per spawn, which would dominate 60 runs on 2 cores.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as prng from 'lib0/prng'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFixture } from '../helpers/bundle-fixture.js'
import { sqliteStorage } from '../../src/adapters/sqlite-storage.js'
import { CHUNK_PREFIX, HEAD_KEY, chunkBytes, chunkKey } from '../fixtures/sqlite-writer.js'

const RUNS = 60
const PARALLEL = 3
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const writerSource = fileURLToPath(new URL('../fixtures/sqlite-writer.ts', import.meta.url))
let fixture: Awaited<ReturnType<typeof bundleFixture>> | undefined
let writer = ''
const baseSeed = process.env.CRASH_SEED ? Number(process.env.CRASH_SEED) : Math.floor(Math.random() * 0x7fffffff)

interface Plan {
  run: number
  seed: number
  /** Kill this long after the child said `ready`, or after spawning when `beforeReady`. */
  delayMs: number
  beforeReady: boolean
}

interface Outcome {
  plan: Plan
  acked: number[]
  lastHead: number | undefined
  sawReady: boolean
  /** The writer reached its size budget before the kill (so it was killed while idle). */
  sawDone: boolean
  signal: NodeJS.Signals | null
  exitCode: number | null
  stderr: string
  walAfterKill: boolean
  dir: string
  path: string
}

function killAfter(plan: Plan, dir: string): Promise<Outcome> {
  const path = join(dir, 'store.db')
  const child = spawn(process.execPath, [writer, path, String(plan.seed)], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'], // stdin stays open: the writer exits on EOF should we die
  })
  const acked: number[] = []
  let lastHead: number | undefined
  let sawReady = false
  let sawDone = false
  let stdout = ''
  let stderr = ''
  const kill = (): void => {
    setTimeout(() => child.kill('SIGKILL'), plan.delayMs)
  }
  if (plan.beforeReady) kill()
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text
    let newline: number
    // Only complete lines count: a line cut by the kill was never fully acknowledged.
    while ((newline = stdout.indexOf('\n')) >= 0) {
      const line = stdout.slice(0, newline)
      stdout = stdout.slice(newline + 1)
      const [word, value] = line.split(' ')
      if (word === 'ack') acked.push(Number(value))
      else if (word === 'head') lastHead = Number(value)
      else if (word === 'done') sawDone = true
      else if (word === 'ready') {
        sawReady = true
        if (!plan.beforeReady) kill()
      }
    }
  })
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text))
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (exitCode, signal) => {
      resolve({ plan, acked, lastHead, sawReady, sawDone, signal, exitCode, stderr, walAfterKill: existsSync(`${path}-wal`), dir, path })
    })
  })
}

async function verify(o: Outcome): Promise<void> {
  const label = `run ${o.plan.run} (seed ${o.plan.seed}, base seed ${baseSeed})`
  expect(o.signal, `${label}: child was not SIGKILLed (exit ${o.exitCode}): ${o.stderr}`).toBe('SIGKILL')
  // Recovery below must then replay (or discard) a WAL, not just read a checkpointed file.
  if (o.acked.length > 0) expect(o.walAfterKill, `${label}: no WAL file left by a killed writer`).toBe(true)

  const storage = sqliteStorage({ path: o.path, integrityCheck: true })
  try {
    await expect(storage.ready(), `${label}: store does not reopen cleanly`).resolves.toBeUndefined()
    const stored = new Map<string, Uint8Array>()
    for (const chunk of await storage.loadRange(CHUNK_PREFIX)) stored.set(chunk.key.join('/'), chunk.data)
    for (const n of o.acked) {
      const data = stored.get(chunkKey(n).join('/'))
      expect(data, `${label}: acked chunk ${n} is missing`).toBeDefined()
      expect(equalBytes(data!, chunkBytes(o.plan.seed, n)), `${label}: acked chunk ${n} has wrong bytes`).toBe(true)
    }
    // Unacked writes may or may not have landed, but never torn or mixed up.
    for (const [key, data] of stored) {
      const n = Number(key.split('/')[1])
      expect(equalBytes(data, chunkBytes(o.plan.seed, n)), `${label}: chunk ${n} is damaged`).toBe(true)
    }
    if (o.lastHead !== undefined) {
      const head = await storage.load(HEAD_KEY)
      expect(head?.byteLength, `${label}: acked head missing`).toBe(4)
      const value = new DataView(head!.buffer, head!.byteOffset).getUint32(0)
      expect(value, `${label}: head went back to before the last acked value`).toBeGreaterThanOrEqual(o.lastHead)
    }
    // And the recovered store takes writes again.
    await storage.save(['after-crash'], new Uint8Array([1]))
    expect(await storage.load(['after-crash'])).toEqual(new Uint8Array([1]))
  } finally {
    await storage.close()
  }
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

describe('sqliteStorage under SIGKILL', () => {
  beforeAll(async () => {
    fixture = await bundleFixture(writerSource, 'sqlite-writer')
    writer = fixture.path
  })
  afterAll(() => fixture?.cleanup())

  it(`keeps every acknowledged save (${RUNS} kills, base seed ${baseSeed})`, async () => {
    console.log(`sqlite crash test: base seed ${baseSeed} (replay with CRASH_SEED=${baseSeed})`)
    const gen = prng.create(baseSeed)
    const plans: Plan[] = Array.from({ length: RUNS }, (_, run) => {
      const beforeReady = prng.uint32(gen, 0, 9) === 0
      return {
        run,
        seed: prng.uint32(gen, 1, 0x7fffffff),
        // Before ready: somewhere in Node start-up, the open or the schema creation.
        delayMs: beforeReady ? prng.uint32(gen, 0, 200) : prng.uint32(gen, 0, 250),
        beforeReady,
      }
    })

    let totalAcks = 0
    let withAcks = 0
    const started = performance.now()
    const dirs: string[] = []
    try {
      // Phase 1: spawn and kill. Verification is synchronous SQLite work, so it waits for phase 2:
      // run in between, it would block the event loop and delay the other runs' kill timers.
      const outcomes: Outcome[] = []
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < plans.length) {
          const plan = plans[next++]!
          const dir = mkdtempSync(join(tmpdir(), 'contextsync-crash-'))
          dirs.push(dir)
          outcomes.push(await killAfter(plan, dir))
        }
      }
      await Promise.all(Array.from({ length: PARALLEL }, worker))
      const killed = performance.now()
      // Phase 2: reopen every store and check it.
      outcomes.sort((a, b) => a.plan.run - b.plan.run)
      for (const outcome of outcomes) await verify(outcome)
      totalAcks = outcomes.reduce((sum, o) => sum + o.acked.length, 0)
      withAcks = outcomes.filter((o) => o.acked.length > 0 && !o.sawDone).length
      console.log(`sqlite crash test: kills took ${((killed - started) / 1000).toFixed(1)}s, checks ${((performance.now() - killed) / 1000).toFixed(1)}s`)
    } finally {
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1)
    console.log(`sqlite crash test: ${RUNS} kills in ${seconds}s, ${totalAcks} acked saves checked, ${withAcks} runs killed mid-stream`)
    // Guard against a harness that kills before anything happens and so proves nothing.
    expect(withAcks).toBeGreaterThan(RUNS / 2)
  }, 120_000) // ~20 s alone on 2 cores; headroom for a machine busy with other test files
})
