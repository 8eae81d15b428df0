/**
 * The `contextsync` command as package.json's `bin` names it: it runs from a clone that was never
 * built (through the sources) as well as from the published package (through dist/).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

describe('the contextsync bin', () => {
  it('is the shim package.json names, and prints its usage', () => {
    const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string>; files: string[] }
    expect(pkg.bin.contextsync).toBe('./bin/contextsync.mjs')
    expect(pkg.files).toContain('bin')
    const out = execFileSync(process.execPath, [pkg.bin.contextsync!, '--help'], { encoding: 'utf8', timeout: 60_000 })
    expect(out).toMatch(/^Usage: contextsync <command>/)
    expect(out).toContain('relay')
  })
})
