/**
 * `contextsync mcp` on a paired PC where the optional peer `@modelcontextprotocol/sdk` is not
 * installed (test/fixtures/hide-mcp-sdk.mjs makes resolving it fail as a missing package would):
 * the real process exits 1 with one line on stderr naming the package and its install command, and
 * writes nothing on stdout — which an MCP client would read as protocol. The SDK is loaded before
 * the device is opened, so an unpaired PC gets the same line, not "no contextsync device".
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { CLI, pcHome, pcWorld, ROOT, type PcHome } from '../helpers/pc.js'

const MISSING = 'contextsync mcp: the contextsync MCP server needs @modelcontextprotocol/sdk, which is not installed: run `npm install @modelcontextprotocol/sdk`'
const HIDE_SDK = fileURLToPath(new URL('../fixtures/hide-mcp-sdk.mjs', import.meta.url))

function runWithoutSdk(home: PcHome, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', HIDE_SDK, ...CLI, ...args], { cwd: ROOT, env: home.env, timeout: 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr })
    })
  })
}

describe('contextsync mcp without @modelcontextprotocol/sdk', () => {
  it.each([[[]], [['--http']]])('mcp %j exits 1 with one line naming the missing package, nothing on stdout', async (flags: string[]) => {
    const { home } = await pcWorld()
    const result = await runWithoutSdk(home, ['mcp', ...flags])
    expect(result.code, result.stderr).toBe(1)
    expect(result.stdout).toBe('')
    const lines = result.stderr.split('\n').filter((line) => line !== '')
    expect(lines, result.stderr).toHaveLength(1)
    expect(lines[0]).toBe(MISSING)
  })

  it('is checked before the device is opened: an unpaired PC gets the same line', async () => {
    const result = await runWithoutSdk(pcHome(), ['mcp'])
    expect(result.code, result.stderr).toBe(1)
    expect(result.stdout).toBe('')
    expect(result.stderr).toBe(`${MISSING}\n`)
  })
})
