/**
 * Ignition off is a power cut: a child process runs the head unit (`openCar`, SQLite with
 * `synchronous=FULL`) streaming an assistant turn while it remembers things, connected to a real
 * relay on 127.0.0.1, and is SIGKILLed at a seeded random moment, 50 times over one store. After
 * every kill the store is opened again here and must hold every write the child acknowledged,
 * with its exact text; the next child continues the same session. At the end the head unit comes
 * back online and every acknowledged write reaches the phone, the session's turns of every start
 * included, and the session can still be continued.
 *
 * A SIGKILL shows that a write is acknowledged only once SQLite committed it; that the commit also
 * survives losing power (the OS buffers too) is what `synchronous=FULL` adds — each commit is
 * fsynced — which no process kill can show.
 *
 * Replay with CAR_POWER_CUT_SEED=<seed printed below> (kill moments also depend on timing).
 */
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import * as prng from 'lib0/prng'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { sqliteStorage } from '../../src/adapters/sqlite-storage.js'
import { ContextSync, plainKeys } from '../../src/index.js'
import { bundleFixture } from '../helpers/bundle-fixture.js'
import { ownerDevice, relayOn, teardown, tempDir, testCar, waitUntil } from '../helpers/car.js'

const KILLS = 50
const DRIVE_TITLE = 'Power cut drive'
const repoRoot = fileURLToPath(new URL('../..', import.meta.url))
const childSource = fileURLToPath(new URL('../fixtures/car-power-cut.ts', import.meta.url))
const seed = process.env.CAR_POWER_CUT_SEED ? Number(process.env.CAR_POWER_CUT_SEED) : Math.floor(Math.random() * 0x7fffffff)
let fixture: Awaited<ReturnType<typeof bundleFixture>> | undefined

beforeAll(async () => {
  fixture = await bundleFixture(childSource, 'car-power-cut')
})
afterAll(() => fixture?.cleanup())
afterEach(teardown)

const textHash = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 24)

/** What the children acknowledged so far. */
interface Acked {
  memories: Map<string, string>
  turns: Map<string, string>
  session?: string
}

function runChild(dataDir: string, relayUrl: string, childSeed: number, killAfterMs: number, logPath: string): Promise<{ lines: string[]; stderr: string; signal: NodeJS.Signals | null }> {
  const child = spawn(process.execPath, [fixture!.path, dataDir, relayUrl, String(childSeed), logPath], { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  let ready = false
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    if (!ready && text.includes('ready')) {
      ready = true
      setTimeout(() => child.kill('SIGKILL'), killAfterMs)
    }
  })
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text))
  // A child that never gets ready is killed too, and fails the test below.
  const watchdog = setTimeout(() => child.kill('SIGKILL'), 20_000)
  return new Promise((resolve, reject) => {
    child.on('error', reject)
    child.on('close', (_code, signal) => {
      clearTimeout(watchdog)
      const log = existsSync(logPath) ? readFileSync(logPath, 'utf8') : ''
      // Only complete lines count: a line cut by the kill was never fully acknowledged.
      const lines = log.slice(0, log.lastIndexOf('\n') + 1).split('\n').slice(0, -1)
      resolve({ lines, stderr, signal })
    })
  })
}

function absorb(acked: Acked, lines: string[], label: string): number {
  let acks = 0
  for (const line of lines) {
    const [word, what, a, b] = line.split(' ')
    if (word === 'bad') throw new Error(`${label}: the child saw a wrong result: ${line}`)
    if (word !== 'ack') continue
    acks++
    if (what === 'mem') acked.memories.set(a!, b!)
    else if (what === 'turn') acked.turns.set(a!, b!)
    else if (what === 'session') acked.session ??= a
  }
  return acks
}

/** Open the killed store offline, here, and check it holds everything acknowledged. */
async function verifyStore(path: string, acked: Acked, label: string): Promise<void> {
  const storage = sqliteStorage({ path, integrityCheck: true })
  const dev = await ContextSync.open({ storage, keys: plainKeys() })
  try {
    expect(dev.rejectionCounts(), `${label}: stored envelopes refused`).toEqual({})
    for (const [id, hash] of acked.memories) {
      const item = dev.memory.get(id)
      if (!item || textHash(item.text) !== hash) expect.fail(`${label}: acknowledged memory ${id} ${item ? 'changed' : 'missing'} after the power cut`)
    }
    const session = acked.session ? dev.sessions.get(acked.session) : undefined
    if (acked.session) expect(session, `${label}: the drive's session is missing`).toBeDefined()
    const turns = new Map(session?.turns.map((t) => [t.id, t]) ?? [])
    for (const [id, hash] of acked.turns) {
      const turn = turns.get(id)
      if (!turn || textHash(turn.text) !== hash) expect.fail(`${label}: acknowledged turn ${id} ${turn ? 'changed' : 'missing'} after the power cut`)
    }
  } finally {
    await dev.close()
    await storage.close()
  }
}

describe('power cut', () => {
  it(`every acknowledged write survives ${KILLS} SIGKILLs mid-stream and reaches the phone (seed ${seed})`, async () => {
    console.log(`car power-cut test: seed ${seed} (replay with CAR_POWER_CUT_SEED=${seed})`)
    const relay = await relayOn()
    const { dev: phone } = await ownerDevice(relay.url)
    const dataDir = tempDir()
    const logDir = tempDir('contextsync-car-log-')
    const pairing = await testCar({ dataDir, relayUrl: relay.url })
    await pairing.profiles.join({ id: 'alice', invite: (await phone.devices.invite({ kind: 'car' })).code })
    await pairing.close()
    const storePath = join(dataDir, 'profiles', 'alice', 'contextsync.db')

    const gen = prng.create(seed)
    const acked: Acked = { memories: new Map(), turns: new Map() }
    let killedMidWrite = 0
    for (let i = 0; i < KILLS; i++) {
      const label = `kill ${i} (seed ${seed})`
      const outcome = await runChild(dataDir, relay.url, prng.uint32(gen, 1, 0x7fffffff), prng.uint32(gen, 20, 450), join(logDir, `${i}.log`))
      expect(outcome.signal, `${label}: the child ended by itself: ${outcome.stderr}`).toBe('SIGKILL')
      expect(outcome.lines.some((l) => l.startsWith('ready ')), `${label}: never got ready: ${outcome.stderr}`).toBe(true)
      absorb(acked, outcome.lines, label)
      if (!outcome.lines.includes('done')) killedMidWrite++
      await verifyStore(storePath, acked, label)
    }
    console.log(`car power-cut test: ${KILLS} kills, ${acked.memories.size} memories and ${acked.turns.size} turns acknowledged`)
    expect(killedMidWrite).toBe(KILLS)
    expect(acked.memories.size).toBeGreaterThan(KILLS)
    expect(acked.turns.size).toBeGreaterThanOrEqual(KILLS)

    // Back online: everything acknowledged reaches the phone, and the session goes on.
    const car = await testCar({ dataDir, relayUrl: relay.url, profile: 'alice' })
    await waitUntil(() => [...acked.memories.keys()].every((id) => phone.memory.get(id) !== undefined), 30_000, 'every acknowledged memory on the phone')
    for (const [id, hash] of acked.memories) expect(textHash(phone.memory.get(id)!.text)).toBe(hash)
    await waitUntil(() => {
      const turns = phone.sessions.get(acked.session!)?.turns ?? []
      return [...acked.turns].every(([id, hash]) => turns.some((t) => t.id === id && textHash(t.text) === hash))
    }, 30_000, 'every acknowledged turn on the phone')
    const more = await car.device.sessions.open(acked.session!).append({ role: 'user', text: 'home now' })
    await waitUntil(() => phone.sessions.get(acked.session!)?.turns.some((t) => t.id === more.id) === true, 10_000, 'the continued session on the phone')
    expect(phone.sessions.list().filter((s) => s.title === DRIVE_TITLE)).toHaveLength(1)
  }, 240_000)
})
