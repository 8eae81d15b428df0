/**
 * Runs a README example as written: its ```ts blocks are read from one section, checked to be
 * 20 lines or fewer each, the example relay URL swapped for a real one and the package's
 * specifiers pointed at this tree's sources, then the script runs with tsx as its own process.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createRequire } from 'node:module'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, expect } from 'vitest'
import WebSocket from 'ws'
import { memoryStorage, plainKeys } from '../../src/index.js'
import { openPhone, type Phone } from '../../adapters/phone/index.js'
import { createRelay, silentLogger, type Relay } from '../../src/relay/index.js'

const root = resolve(import.meta.dirname, '../..')

/** Package specifiers the README's examples import, mapped to this tree's sources. */
const SOURCES: Record<string, string> = {
  contextsync: join(root, 'src/index.ts'),
  'contextsync/link': join(root, 'src/entries/link.ts'),
  'contextsync/car': join(root, 'adapters/car/index.ts'),
  'contextsync/compat': join(root, 'src/entries/compat.ts'),
  'contextsync/phone': join(root, 'adapters/phone/index.ts'),
  'contextsync/glasses': join(root, 'adapters/glasses/index.ts'),
  'contextsync/pc': join(root, 'adapters/pc/index.ts'),
  ws: createRequire(import.meta.url).resolve('ws'),
}

/** The URL every README example connects to, replaced by the test relay's. */
const EXAMPLE_URL = "'ws://127.0.0.1:8787'"

/**
 * The ```ts blocks under the README heading `heading` (up to the next `## `), joined into one
 * script that talks to `url`; expects exactly `blocks` of them.
 */
export function readmeScript(heading: string, blocks: number, url: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const start = readme.indexOf(heading)
  if (start < 0) throw new Error(`README.md has no "${heading}" section`)
  const body = readme.slice(readme.indexOf('\n', start) + 1)
  const end = body.indexOf('\n## ')
  const section = end < 0 ? body : body.slice(0, end)
  const found = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!)
  expect(found).toHaveLength(blocks)
  for (const block of found) expect(block.trim().split('\n').length).toBeLessThanOrEqual(20)
  const script = found.join('\n')
  expect(script).toContain(EXAMPLE_URL)
  return script
    .replace(EXAMPLE_URL, JSON.stringify(url))
    .replace(/from '([^']+)'/g, (whole, specifier: string) => (SOURCES[specifier] ? `from ${JSON.stringify(SOURCES[specifier])}` : whole))
}

/** What a README example printed and how it ended. */
export interface ExampleRun {
  code: number | null
  stdout: string
  stderr: string
}

/** How to start a README example: `script` written to `dir`, run with tsx by `node args…`. */
export interface ExampleCommand {
  file: string
  command: string
  args: string[]
}

/** Writes `script` to `dir`; returns the command that runs it with tsx (for a caller that spawns it itself). */
export function writeExample(dir: string, script: string): ExampleCommand {
  const file = join(dir, 'example.mts')
  writeFileSync(file, script)
  return { file, command: process.execPath, args: [join(root, 'node_modules/tsx/dist/cli.mjs'), file] }
}

/**
 * Writes `script` to `dir` and runs it with tsx (killed after 45 s), with `env` added. `input`,
 * when given, is written to its stdin, which is then closed (empty otherwise).
 */
export function runExample(dir: string, script: string, env: Record<string, string> = {}, options: { input?: string } = {}): Promise<ExampleRun> {
  const { command, args } = writeExample(dir, script)
  return new Promise((done) => {
    const child = spawn(command, args, {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    child.stdin.end(options.input ?? '')
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr })
    })
  })
}

/** What a README example runs against: a relay on 127.0.0.1, a phone to invite from, a scratch folder. */
export interface ReadmeWorld {
  relay: Relay
  phone: Phone
  dir: string
}

/**
 * Start a relay and an owner phone before the file's tests and stop them after (`beforeAll` /
 * `afterAll`); read the world inside a test, once they ran.
 */
export function readmeWorld(prefix: string): () => ReadmeWorld {
  let world: ReadmeWorld | undefined
  beforeAll(async () => {
    const relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger })
    const phone = await openPhone({ storage: memoryStorage(), keys: plainKeys(), relayUrl: relay.url, WebSocket })
    world = { relay, phone, dir: mkdtempSync(join(tmpdir(), prefix)) }
  })
  afterAll(async () => {
    if (!world) return
    await world.phone.close()
    await world.relay.close()
    rmSync(world.dir, { recursive: true, force: true })
  })
  return () => {
    if (!world) throw new Error('readmeWorld: read inside a test')
    return world
  }
}
