/**
 * A process exits by itself once its devices and network are closed: no timer or handle the
 * library opened keeps it alive (an invite used to hold the process ~5 s after pairing, and the
 * loopback network's relay presence timer until `net.destroy()`).
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const FIXTURE = fileURLToPath(new URL('../fixtures/exit-after-pairing.ts', import.meta.url))

describe('process exit', () => {
  it.each([
    ['and destroying the network', []],
    ['with the loopback network left as it is', ['keep-network']],
  ])('a script that paired a device exits within a second of closing its devices %s', async (_label, args) => {
    const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    const exitedAt = Date.now()
    expect(err).toBe('')
    expect(code).toBe(0)
    const closedAt = Number(/closed-at (\d+)/.exec(out)?.[1])
    expect(closedAt).toBeGreaterThan(0)
    expect(exitedAt - closedAt).toBeLessThan(1_000)
  }, 60_000)
})
