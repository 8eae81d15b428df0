/**
 * The README's phone and glasses examples ("The phone and the glasses") as written: both blocks,
 * one script, run with tsx against a real relay on 127.0.0.1 — only the relay URL changes, and
 * the package's specifiers point at this tree's sources (the packed tarball is the fresh-project
 * test's job). The glasses' write made while the phone is offline reaches the phone over the
 * link, the payments memory never reaches the glasses, and the process exits by itself.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRelay, silentLogger, type Relay } from '../src/relay/index.js'

const root = resolve(import.meta.dirname, '..')
const SOURCES: Record<string, string> = {
  contextsync: join(root, 'src/index.ts'),
  'contextsync/link': join(root, 'src/entries/link.ts'),
  'contextsync/phone': join(root, 'adapters/phone/index.ts'),
  'contextsync/glasses': join(root, 'adapters/glasses/index.ts'),
  ws: createRequire(import.meta.url).resolve('ws'),
}

/** The ```ts blocks under "### The phone and the glasses", joined into one script. */
function readmeScript(url: string): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8')
  const section = /### The phone and the glasses[^\n]*\n([\s\S]*?)\n## /.exec(readme)?.[1]
  if (!section) throw new Error('README.md has no "### The phone and the glasses" section')
  const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!)
  expect(blocks).toHaveLength(2)
  for (const block of blocks) expect(block.trim().split('\n').length).toBeLessThanOrEqual(20)
  let script = blocks.join('\n')
  expect(script).toContain("'ws://127.0.0.1:8787'")
  script = script.replace("'ws://127.0.0.1:8787'", JSON.stringify(url))
  return script.replace(/from '([^']+)'/g, (whole, specifier: string) => (SOURCES[specifier] ? `from ${JSON.stringify(SOURCES[specifier])}` : whole))
}

describe("the README's phone and glasses examples, as written", () => {
  let relay: Relay
  let dir: string
  beforeAll(async () => {
    relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger })
    dir = mkdtempSync(join(tmpdir(), 'contextsync-readme-phone-'))
  })
  afterAll(async () => {
    await relay.close()
    rmSync(dir, { recursive: true, force: true })
  })

  it('pairs the glasses, syncs over the link while the phone is offline, keeps payments off the glasses, and exits', async () => {
    const file = join(dir, 'example.mts')
    writeFileSync(file, readmeScript(relay.url))
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(process.execPath, [join(root, 'node_modules/tsx/dist/cli.mjs'), file], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
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
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('phone got added remote')
    const listed = /\[[^\]]*'Parked on level 3'[^\]]*\]/.exec(result.stdout)?.[0] ?? ''
    expect(listed).toContain('Prefers window seats')
    expect(listed).not.toContain('4242')
  }, 60_000)
})
