/**
 * Crash test of a whole device with real SIGKILLs: a child process runs a car device
 * (`ContextSync` on `sqliteStorage`) that remembers, updates and streams conversation turns, and
 * logs an ack (ids and text hashes, never texts; to a file, see the fixture for why not stdout)
 * only after each write's promise resolved. We kill it at a seeded random moment — while it opens,
 * in the middle of bursts, streams and compactions — reopen the store in this process and check
 * that it opens cleanly (no refused or held envelope) as the same device and holds every
 * acknowledged write with its exact text: acked memories and their newest acked update (or a later
 * one that was in flight), sessions, appended and streamed turns, and the prefix of a stream that
 * `flush()` acknowledged. Unacknowledged writes may or may not have landed, but never torn, and
 * whatever a reopened device showed must never disappear at a later reopen.
 *
 * Each store lives through many kill cycles (kill → verify → the next child continues on the same
 * file), so recovering an already recovered store is exercised too. Half the verifications open
 * the killed files in place (this process recovers them and closes cleanly); the other half open a
 * byte copy, leaving the original — hot WAL and all — for the next child to recover itself.
 *
 * Replay a failing run with DEVICE_CRASH_SEED=<seed printed below> (the plan is replayed exactly;
 * the kill moments depend on timing as well).
 *
 * The writer (test/fixtures/device-writer.ts) is bundled once with esbuild, like in
 * sqlite-crash.test.ts, so each child is a plain `node` process.
 */
import { spawn } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as prng from 'lib0/prng'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { bundleFixture } from '../helpers/bundle-fixture.js'
import { sqliteStorage } from '../../src/adapters/sqlite-storage.js'
import { ContextSync, plainKeys } from '../../src/index.js'
import { DEVICE, textHash } from '../fixtures/device-writer.js'

const CHAINS = 3
const CYCLES = 18
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const writerSource = fileURLToPath(new URL('../fixtures/device-writer.ts', import.meta.url))
const baseSeed = process.env.DEVICE_CRASH_SEED ? Number(process.env.DEVICE_CRASH_SEED) : Math.floor(Math.random() * 0x7fffffff)
let fixture: Awaited<ReturnType<typeof bundleFixture>> | undefined
let writer = ''

interface Plan {
  chain: number
  cycle: number
  seed: number
  /** Kill this long after the child said `ready`, or after spawning when `beforeReady`. */
  delayMs: number
  beforeReady: boolean
  /** Verify a byte copy of the killed files rather than the files themselves. */
  verifyCopy: boolean
}

interface Outcome {
  lines: string[]
  sawReady: boolean
  sawDone: boolean
  signal: NodeJS.Signals | null
  exitCode: number | null
  stderr: string
}

/** What the children of one store have acknowledged (and tried) so far, over all cycles. */
interface Model {
  deviceId: string | undefined
  /**
   * Per memory id: text hashes in the order they were written, the newest one known durable, and
   * what happened to it (for failure messages).
   */
  memories: Map<string, Entry>
  /** Hashes of every text a `remember` was issued for (acked or not). */
  tried: Set<string>
  sessions: Map<string, { title?: string; turns: Map<string, { full?: string; prefixes: Array<[number, string]> }> }>
  acks: number
}

interface Entry {
  versions: string[]
  durable: number
  history: string[]
}

interface Chain {
  dir: string
  path: string
  model: Model
}

function runChild(plan: Plan, chain: Chain, logPath: string): Promise<Outcome> {
  const mode = plan.cycle === 0 ? 'first' : 'again'
  const child = spawn(process.execPath, [writer, chain.path, String(plan.seed), mode, logPath], {
    cwd: repoRoot,
    stdio: ['pipe', 'pipe', 'pipe'], // stdin stays open: the writer exits on EOF should we die
  })
  let sawReady = false
  let stdout = ''
  let stderr = ''
  const kill = (): void => void setTimeout(() => child.kill('SIGKILL'), plan.delayMs)
  if (plan.beforeReady) kill()
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    stdout += text
    if (!sawReady && stdout.includes('ready\n')) {
      sawReady = true
      if (!plan.beforeReady) kill()
    }
  })
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text))
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (exitCode, signal) => {
      const log = existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''
      // Only complete lines count: a line cut by the kill was never fully acknowledged.
      const lines = log.slice(0, log.lastIndexOf('\n') + 1).split('\n').slice(0, -1)
      resolve({ lines, sawReady: lines.some((l) => l.startsWith('ready ')), sawDone: lines.includes('done'), signal, exitCode, stderr })
    })
  })
}

/** Fold a child's output into the model; returns the number of acks it carried. */
function absorb(model: Model, outcome: Outcome, label: string, cycle: number): number {
  let acks = 0
  const session = (id: string) => {
    let s = model.sessions.get(id)
    if (!s) model.sessions.set(id, (s = { turns: new Map() }))
    return s
  }
  const turn = (sid: string, tid: string) => {
    const turns = session(sid).turns
    let t = turns.get(tid)
    if (!t) turns.set(tid, (t = { prefixes: [] }))
    return t
  }
  for (const line of outcome.lines) {
    const [word, a, b, c, d, e] = line.split(' ') as [string, ...Array<string | undefined>]
    if (word === 'bad') throw new Error(`${label}: the writer saw a wrong result: ${line}`)
    if (word === 'ready') {
      model.deviceId ??= a
      expect(a, `${label}: the device id changed on reopen`).toBe(model.deviceId)
    } else if (word === 'try' && a === 'rem') {
      model.tried.add(b!)
    } else if (word === 'try' && a === 'upd') {
      let m = model.memories.get(b!)
      if (!m) model.memories.set(b!, (m = { versions: [], durable: -1, history: [] }))
      m.versions.push(c!)
      m.history.push(`cycle ${cycle}: try update ${c}`)
    } else if (word === 'ack') {
      acks++
      if (a === 'rem') {
        expect(model.memories.has(b!), `${label}: memory id reused`).toBe(false)
        model.memories.set(b!, { versions: [c!], durable: 0, history: [`cycle ${cycle}: remembered ${c}`] })
      } else if (a === 'upd') {
        const m = model.memories.get(b!)!
        m.durable = Math.max(m.durable, m.versions.lastIndexOf(c!))
        m.history.push(`cycle ${cycle}: acked update ${c}`)
      } else if (a === 'session') {
        session(b!).title = c
      } else if (a === 'turn') {
        turn(b!, c!).full = d
      } else if (a === 'prefix') {
        turn(b!, c!).prefixes.push([Number(d), e!])
      } else {
        throw new Error(`${label}: unknown ack line '${line}'`)
      }
    } else if (word !== 'done') {
      throw new Error(`${label}: unknown line '${line}'`)
    }
  }
  model.acks += acks
  return acks
}

/** Reopen the store in this process and check it against the model. */
async function verify(path: string, model: Model, label: string, cycle: number): Promise<void> {
  const storage = sqliteStorage({ path, integrityCheck: true })
  let dev: ContextSync | undefined
  try {
    await expect(storage.ready(), `${label}: the store does not reopen cleanly`).resolves.toBeUndefined()
    dev = await ContextSync.open({ storage, keys: plainKeys() })
    const errors: string[] = []
    dev.on('storage-error', (e) => errors.push(e.error.code))
    expect(dev.deviceId, `${label}: the device id changed`).toBe(model.deviceId)
    expect([dev.kind, dev.name], `${label}: the device lost its certificate`).toEqual([DEVICE.kind, DEVICE.name])
    expect(dev.rejectionCounts(), `${label}: stored envelopes were refused`).toEqual({})
    for (const scope of ['@registry', ...dev.scopes.available()]) {
      expect(dev.replica(scope)!.heldCount, `${label}: envelopes held in ${scope}`).toBe(0)
    }

    // Thousands of items: failure messages are built only on failure.
    const present = new Map(dev.memory.list().map((m) => [m.id, m]))
    for (const [id, m] of model.memories) {
      const item = present.get(id)
      const fail = (what: string): never => {
        const now = item ? textHash(item.text) : 'missing'
        const elsewhere = [...model.memories].filter(([, o]) => o.versions.includes(now)).map(([other]) => other)
        return expect.fail(
          `${label}: memory ${id} ${what} (text now ${now}${model.tried.has(now) ? ', a remembered text' : ''}` +
            `${elsewhere.length ? `, written to ${elsewhere.join(', ')}` : ''}; ${m.history.join('; ')})`,
        )
      }
      const version = item ? m.versions.indexOf(textHash(item.text)) : -1
      if (m.durable < 0) {
        if (item && version < 0) fail('has a text never written to it')
        continue
      }
      if (!item) fail('was acknowledged but is missing')
      if (version < 0) fail('has a text never written to it')
      if (version < m.durable) fail('went back to a text older than an acknowledged update')
      if (item!.source.deviceId !== model.deviceId) fail('names another device as its source')
    }
    for (const [id, item] of present) {
      const hash = textHash(item.text)
      let m = model.memories.get(id)
      if (!m) {
        // A remember that was not acknowledged before the kill, but landed: allowed, if intact.
        if (!model.tried.has(hash)) expect.fail(`${label}: memory ${id} holds a text no remember was issued for`)
        model.memories.set(id, (m = { versions: [hash], durable: 0, history: [] }))
      }
      // What a reopened device showed must never disappear later.
      m.durable = Math.max(m.durable, m.versions.indexOf(hash))
      m.history.push(`cycle ${cycle}: seen ${hash}`)
    }

    for (const [sid, s] of model.sessions) {
      const session = dev.sessions.get(sid)
      expect(session, `${label}: acknowledged session ${sid} is missing`).toBeDefined()
      if (s.title !== undefined) expect(textHash(session!.title), `${label}: session ${sid} title`).toBe(s.title)
      for (const [tid, t] of s.turns) {
        const found = session!.turns.find((x) => x.id === tid)
        expect(found, `${label}: acknowledged turn ${tid} is missing`).toBeDefined()
        if (t.full !== undefined) {
          expect(textHash(found!.text), `${label}: turn ${tid} text`).toBe(t.full)
          expect(found!.done, `${label}: ended turn ${tid} is not done`).toBe(true)
        }
        for (const [length, hash] of t.prefixes) {
          expect(found!.text.length, `${label}: turn ${tid} lost flushed text`).toBeGreaterThanOrEqual(length)
          expect(textHash(found!.text.slice(0, length)), `${label}: turn ${tid} flushed prefix`).toBe(hash)
        }
      }
    }
    await dev.close()
    dev = undefined
    expect(errors, `${label}: storage errors while verifying`).toEqual([])
  } finally {
    await dev?.close()
    await storage.close()
  }
}

describe('a device on sqliteStorage under SIGKILL', () => {
  beforeAll(async () => {
    fixture = await bundleFixture(writerSource, 'device-writer')
    writer = fixture.path
  })
  afterAll(() => fixture?.cleanup())

  it(`keeps every acknowledged write across ${CHAINS * CYCLES} kills (base seed ${baseSeed})`, async () => {
    console.log(`device crash test: base seed ${baseSeed} (replay with DEVICE_CRASH_SEED=${baseSeed})`)
    const gen = prng.create(baseSeed)
    const plans: Plan[][] = Array.from({ length: CHAINS }, (_, chain) =>
      Array.from({ length: CYCLES }, (_, cycle) => {
        // Later runs are also killed while opening (loading, replaying, compacting). The first run
        // is killed only once enrolled: killed while it stores its keys and certificate, a device
        // can come back without an identity, or as kind 'other' (ContextSync.open does not yet
        // finish an interrupted enrolment), which this test is not about.
        const beforeReady = cycle > 0 && prng.uint32(gen, 0, 7) === 0
        return {
          chain,
          cycle,
          seed: prng.uint32(gen, 1, 0x7fffffff),
          delayMs: beforeReady ? prng.uint32(gen, 50, 700) : prng.uint32(gen, 0, 600),
          beforeReady,
          verifyCopy: prng.bool(gen),
        }
      }),
    )
    const root = mkdtempSync(join(tmpdir(), 'contextsync-device-crash-'))
    const stats = { kills: 0, midStream: 0, beforeReady: 0, copies: 0, walAfterKill: 0 }
    const started = performance.now()
    try {
      const runChain = async (chainPlans: Plan[]): Promise<Model> => {
        const dir = join(root, `chain-${chainPlans[0]!.chain}`)
        mkdirSync(dir)
        const chain: Chain = {
          dir,
          path: join(dir, 'car.db'),
          model: { deviceId: undefined, memories: new Map(), tried: new Set(), sessions: new Map(), acks: 0 },
        }
        for (const plan of chainPlans) {
          const label = `chain ${plan.chain} cycle ${plan.cycle} (writer seed ${plan.seed}, base seed ${baseSeed})`
          const outcome = await runChild(plan, chain, join(root, `log-${plan.chain}-${plan.cycle}.txt`))
          expect(outcome.signal, `${label}: child was not SIGKILLed (exit ${outcome.exitCode}): ${outcome.stderr}`).toBe('SIGKILL')
          expect(outcome.stderr, `${label}: writer complained`).toBe('')
          if (plan.cycle === 0) expect(outcome.sawReady, `${label}: first run never got ready`).toBe(true)
          const acks = absorb(chain.model, outcome, label, plan.cycle)
          stats.kills++
          if (!outcome.sawReady) stats.beforeReady++
          if (acks > 0 && !outcome.sawDone) stats.midStream++
          if (existsSync(`${chain.path}-wal`)) stats.walAfterKill++
          let path = chain.path
          if (plan.verifyCopy) {
            stats.copies++
            const copy = join(root, `copy-${plan.chain}-${plan.cycle}`)
            mkdirSync(copy)
            for (const name of readdirSync(dir)) cpSync(join(dir, name), join(copy, name))
            path = join(copy, 'car.db')
          }
          await verify(path, chain.model, label, plan.cycle)
          if (plan.verifyCopy) rmSync(join(path, '..'), { recursive: true, force: true })
        }
        return chain.model
      }
      const models = await Promise.all(plans.map(runChain))
      const seconds = ((performance.now() - started) / 1000).toFixed(1)
      const acks = models.reduce((sum, m) => sum + m.acks, 0)
      const memories = models.reduce((sum, m) => sum + m.memories.size, 0)
      console.log(
        `device crash test: ${stats.kills} kills in ${seconds}s; ${acks} acks checked, ${memories} memories in the final stores; ` +
          `${stats.midStream} kills mid-stream, ${stats.beforeReady} before ready, ${stats.copies} verified on a copy, ` +
          `${stats.walAfterKill} left a WAL`,
      )
      expect(stats.kills).toBeGreaterThanOrEqual(50)
      // Guard against a harness that kills before anything happens and so proves nothing. (Quiet
      // 2-core machine: ~40 of 54 kills land mid-stream; a machine loaded by other test files
      // slows the writer's first fsyncs, so the bound leaves room.)
      expect(stats.midStream).toBeGreaterThan(stats.kills / 3)
      expect(acks).toBeGreaterThan(stats.kills * 5)
      expect(stats.walAfterKill).toBeGreaterThan(stats.kills / 2)
    } finally {
      rmSync(root, { recursive: true, force: true })
    }
  }, 180_000) // ~25-30 s alone on 2 cores; headroom for a machine busy with other test files
})
