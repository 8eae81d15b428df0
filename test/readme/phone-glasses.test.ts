/**
 * The README's phone and glasses examples ("The phone and the glasses") as written: both blocks,
 * one script, run with tsx against a real relay on 127.0.0.1 — only the relay URL changes, and
 * the package's specifiers point at this tree's sources (the packed tarball is the fresh-project
 * test's job). The glasses' write made while the phone is offline reaches the phone over the
 * link, the payments memory never reaches the glasses, and the process exits by itself.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createRelay, silentLogger, type Relay } from '../../src/relay/index.js'
import { readmeScript, runExample } from '../helpers/readme-example.js'

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
    const result = await runExample(dir, readmeScript('### The phone and the glasses', 2, relay.url))
    expect(result.stderr).toBe('')
    expect(result.code).toBe(0)
    expect(result.stdout).toContain('phone got added remote')
    const listed = /\[[^\]]*'Parked on level 3'[^\]]*\]/.exec(result.stdout)?.[0] ?? ''
    expect(listed).toContain('Prefers window seats')
    expect(listed).not.toContain('4242')
  }, 60_000)
})
