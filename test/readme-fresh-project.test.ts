/**
 * The README's example as a newcomer runs it: the package is built and packed (into a temporary
 * folder — the repository's dist/ is left alone), installed from the tarball into a fresh Node
 * project, and the example copied verbatim (only the relay URL changes) runs as ESM and as
 * CommonJS against a real relay, type-checks under `tsc --strict` with `nodenext`, and the process
 * exits by itself within a second of its last `close()`.
 */
import { execFileSync, spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRelay, silentLogger, type Relay } from '../src/relay/index.js'

const root = resolve(import.meta.dirname, '..')
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
let stage: string
let app: string
let relay: Relay

/** The first ```ts block of the README: the example every newcomer copies. */
function readmeExample(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const block = /## Use it\s+```ts\n([\s\S]*?)```/.exec(readme)?.[1]
  if (!block) throw new Error('README.md has no ```ts block under "## Use it"')
  return block
}

/** The example pointed at this test's relay (the only change), and a line marking its end. */
function esmExample(url: string): string {
  const source = readmeExample()
  expect(source).toContain("'ws://127.0.0.1:8787'")
  return `${source.replace("'ws://127.0.0.1:8787'", JSON.stringify(url))}\nconsole.log('CLOSED', Date.now())\n`
}

/** The same example as a CommonJS script: `require` for each import, the body in an async function. */
function cjsExample(url: string): string {
  const lines = esmExample(url).split('\n')
  const requires = lines
    .filter((line) => line.startsWith('import '))
    .map((line) => {
      const m = /^import (.+) from '([^']+)'/.exec(line)
      if (!m) throw new Error(`cannot rewrite ${line}`)
      return `const ${m[1]} = require('${m[2]}');`
    })
  const body = lines.filter((line) => !line.startsWith('import '))
  return [...requires, ';(async () => {', ...body, '})().catch((error) => { console.error(error); process.exit(1) })', ''].join('\n')
}

/** Run a script in the app; resolves with its output and how long after CLOSED it exited. */
function runScript(file: string): Promise<{ code: number | null; stdout: string; stderr: string; exitAfterCloseMs: number }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [file], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let closedAt: number | undefined
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      fail(new Error(`${file} did not exit within 60 s\n${stdout}\n${stderr}`))
    }, 60_000)
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString()
      if (closedAt === undefined && stdout.includes('CLOSED')) closedAt = performance.now()
    })
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
    child.on('exit', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr, exitAfterCloseMs: closedAt === undefined ? Infinity : performance.now() - closedAt })
    })
  })
}

beforeAll(async () => {
  stage = mkdtempSync(join(tmpdir(), 'contextsync-fresh-'))
  // The package as `npm pack` would publish it, built into the stage.
  const pkg = join(stage, 'pkg')
  mkdirSync(pkg)
  for (const file of ['package.json', 'README.md', 'WIRE.md', 'THREAT_MODEL.md', 'bin']) cpSync(join(root, file), join(pkg, file), { recursive: true })
  execFileSync(process.execPath, [join(root, 'node_modules/tsup/dist/cli-default.js'), '--out-dir', join(pkg, 'dist'), '--silent'], { cwd: root, stdio: 'pipe', timeout: 300_000 })
  execFileSync(npm, ['pack', '--silent', '--pack-destination', stage], { cwd: pkg, stdio: 'pipe', timeout: 120_000 })
  const tarball = readdirSync(stage).find((f) => f.endsWith('.tgz'))!
  // A fresh project that installs it.
  app = join(stage, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'fresh-app', version: '1.0.0', private: true, type: 'module' }))
  execFileSync(npm, ['install', join(stage, tarball), '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: app, stdio: 'pipe', timeout: 600_000 })
  relay = await createRelay({ port: 0, host: '127.0.0.1', logger: silentLogger })
}, 900_000)

afterAll(async () => {
  await relay?.close()
  if (stage) rmSync(stage, { recursive: true, force: true })
})

describe("the README's example in a fresh project, on the packed tarball", () => {
  for (const [flavour, file, source] of [
    ['ESM', 'readme.mjs', esmExample],
    ['CommonJS', 'readme.cjs', cjsExample],
  ] as const) {
    it(`runs as ${flavour} against a relay and exits within a second of closing`, async () => {
      rmSync(join(app, 'phone.db'), { force: true })
      rmSync(join(app, 'car.db'), { force: true })
      writeFileSync(join(app, file), source(relay.url))
      const run = await runScript(file)
      expect(run.code, run.stderr).toBe(0)
      // The car heard the phone's memory (the example's change listener prints it).
      expect(run.stdout).toMatch(/added [\w-]+ remote/)
      expect(run.exitAfterCloseMs, 'the process stayed alive after close()').toBeLessThan(1_000)
    }, 120_000)
  }

  it('type-checks under tsc --strict with module nodenext', () => {
    writeFileSync(join(app, 'readme.mts'), esmExample(relay.url))
    const tsc = join(root, 'node_modules/typescript/bin/tsc')
    const args = ['--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--lib', 'es2022,dom', '--skipLibCheck', 'readme.mts']
    let output = ''
    try {
      execFileSync(process.execPath, [tsc, ...args], { cwd: app, stdio: 'pipe', timeout: 120_000 })
    } catch (error) {
      output = String((error as { stdout?: Buffer }).stdout ?? error)
    }
    expect(output).toBe('')
  }, 120_000)
})
