/**
 * The README's example as a newcomer runs it: the package is built and packed (into a temporary
 * folder — the repository's dist/ is left alone), installed from the tarball into a fresh Node
 * project (alone first: no native module, and `contextsync/sqlite` says what is missing; then
 * with better-sqlite3, as the README says), and the example copied verbatim (only the relay URL
 * changes) runs as ESM and as CommonJS against a real relay, type-checks under `tsc --strict` with
 * `nodenext`, and the process exits by itself within a second of its last `close()`.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRelay, silentLogger, type Relay } from '../../src/relay/index.js'
import { freshProject, nativeModules, npmInstall, packTree } from '../helpers/pack.js'

const root = resolve(import.meta.dirname, '../..')
let stage: string
let app: string
let relay: Relay
/** Observed right after installing the tarball alone, and after adding better-sqlite3. */
const alone = { native: [] as string[], sqliteOutput: '' }
const withSqlite = { native: [] as string[] }

/** The first ```ts block of the README: the example every newcomer copies. */
function readmeExample(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const block = /## Use it[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1]
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
  const tarball = packTree(root, stage)
  app = freshProject(join(stage, 'app'))
  npmInstall(app, tarball.path)
  // What a browser or glasses app gets: the package alone.
  alone.native = nativeModules(app)
  writeFileSync(join(app, 'no-sqlite.mjs'), "import { sqliteStorage } from 'contextsync/sqlite'\ntry { sqliteStorage({ path: 'x.db' }) } catch (e) { console.log(e.name, e.message) }\n")
  alone.sqliteOutput = execFileSync(process.execPath, ['no-sqlite.mjs'], { cwd: app, encoding: 'utf8', timeout: 60_000 })
  // A Node device adds the SQLite driver, as the README says.
  npmInstall(app, 'better-sqlite3@12')
  withSqlite.native = nativeModules(app)
  relay = await createRelay({ port: 0, host: '127.0.0.1', logger: silentLogger })
}, 900_000)

afterAll(async () => {
  await relay?.close()
  if (stage) rmSync(stage, { recursive: true, force: true })
})

describe("the README's example in a fresh project, on the packed tarball", () => {
  it('installs no native module by itself; contextsync/sqlite without better-sqlite3 says what to install', () => {
    expect(alone.native).toEqual([])
    expect(alone.sqliteOutput).toContain('ConfigError contextsync/sqlite needs better-sqlite3, which is not installed: run `npm install better-sqlite3`')
    expect(withSqlite.native).toEqual(['better-sqlite3'])
  })

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
