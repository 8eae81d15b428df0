/**
 * The README's desktop example ("Desktop: the PC, its CLI and the MCP server") as written, run
 * with tsx against a real relay on 127.0.0.1 in a fresh per-user home: only the relay URL changes
 * and the package's specifiers point at this tree's sources. Run once with `CONTEXTSYNC_INVITE`
 * (the phone's invite) and "y" typed at the six-digit prompt, it pairs and exits; run again as an
 * assistant runs it — the MCP SDK's own client spawning it over stdio — it serves the phone's
 * `personal` memories and nothing of `work`, and closes the device when the client goes away.
 * The section's assistant configs name the installed command with arguments the CLI accepts.
 */
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js'
import { PC_FILES } from '../../adapters/pc/index.js'
import { pcHome, ROOT, runCli, until } from '../helpers/pc.js'
import { readmeScript, readmeWorld, runExample, writeExample } from '../helpers/readme-example.js'

describe("the README's desktop example, as written", () => {
  const world = readmeWorld('contextsync-readme-pc-')

  it('pairs once at the six-digit prompt, then serves personal memories over stdio to an MCP client and closes the device', async () => {
    const { relay, phone, dir } = world()
    const home = pcHome()
    const script = readmeScript('## Desktop: the PC, its CLI and the MCP server', 1, relay.url)
    const aisle = await phone.device.memory.remember({ text: 'Prefers aisle seats on long flights', scope: 'personal' })
    const offsite = await phone.device.memory.remember({ text: 'Booked seat 14C for the offsite', scope: 'work' })

    // Once: the invite in the environment, "y" typed when the prompt shows the phone's digits.
    let phoneSas = ''
    const invite = await phone.invite({ kind: 'pc', confirmSas: (sas) => ((phoneSas = sas), true) })
    const paired = await runExample(dir, script, { ...home.env, CONTEXTSYNC_INVITE: invite.code }, { input: 'y\n' })
    expect(paired.stderr).toContain('Does your phone show')
    expect(paired.code, paired.stderr).toBe(0)
    expect(paired.stdout).toBe('')
    expect(phoneSas).not.toBe('')
    expect(paired.stderr.replace(/\s/g, '')).toContain(phoneSas.replace(/\s/g, ''))
    await until(() => phone.device.devices.list().some((d) => d.kind === 'pc'), 'the PC among the phone’s devices')

    // Every time: an assistant spawns it and talks MCP on its stdin/stdout.
    const { command, args } = writeExample(dir, script)
    const transport = new StdioClientTransport({ command, args, env: home.env, cwd: dir, stderr: 'pipe' })
    let stderr = ''
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
    const client = new Client({ name: 'readme-pc-test', version: '1.0.0' })
    await client.connect(transport)
    try {
      const recall = async (): Promise<Array<{ id: string }>> => {
        const result = (await client.callTool({ name: 'recall', arguments: { query: 'seat' } })) as CallToolResult
        expect(result.isError, JSON.stringify(result.content)).not.toBe(true)
        return (result.structuredContent as { memories: Array<{ id: string }> }).memories
      }
      const hits = await until(async () => {
        const found = await recall()
        return found.some((m) => m.id === aisle.id) ? found : undefined
      }, 'the phone’s personal memory recalled over MCP')
      expect(hits.map((m) => m.id)).not.toContain(offsite.id)
      const work = (await client.callTool({ name: 'list_memories', arguments: { scope: 'work' } })) as CallToolResult
      expect(work.isError).toBe(true)
      expect(stderr).toMatch(/\d+ memories about seats/)
      expect(stderr).toContain('serving scopes personal')
      expect(existsSync(join(home.dataDir, PC_FILES.lock)), 'the example holds the store in the per-user data folder').toBe(true)
    } finally {
      await client.close()
    }
    // The example's `desk.close()` ran once stdin closed: it released the store's lock file.
    await until(() => !existsSync(join(home.dataDir, PC_FILES.lock)), 'the store lock released by desk.close()', 5_000)
  }, 90_000)

  it('the assistant configs (Claude Desktop, Cursor, VS Code, Claude Code) start the installed command with arguments the CLI accepts', async () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
    const start = readme.indexOf('## Desktop: the PC, its CLI and the MCP server')
    const section = readme.slice(start, readme.indexOf('\n## ', start + 1))
    const configs = [...section.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1]!) as Record<string, Record<string, { type?: string; command: string; args: string[] }>>)
    expect(configs.map((c) => Object.keys(c))).toEqual([['mcpServers'], ['servers']])
    expect(configs[1]!.servers!.contextsync!.type).toBe('stdio')
    const stdio = configs.map((c) => Object.values(c)[0]!.contextsync!)
    const claudeCode = /`claude mcp add contextsync -- (\S+) ([^`]+)`/.exec(section)
    expect(claudeCode).not.toBeNull()
    stdio.push({ command: claudeCode![1]!, args: claudeCode![2]!.split(' ') })
    const http = /`CONTEXTSYNC_MCP_TOKEN="\$TOKEN" (\S+) ([^`]+)`/.exec(section)
    expect(http).not.toBeNull()
    const port = /--port (\d+)/.exec(http![2]!)![1]
    expect(section).toContain(`claude mcp add --transport http contextsync http://127.0.0.1:${port}/mcp`)
    // Each parses (a usage error would be exit 2) and gets as far as opening the device: in an
    // empty home that is the one-line "no contextsync device" failure.
    const home = pcHome()
    for (const { command, args } of [...stdio, { command: http![1]!, args: http![2]!.split(' ') }]) {
      expect(command).toBe('contextsync')
      const run = await runCli(home, args, { env: { CONTEXTSYNC_MCP_TOKEN: 'a-test-token-of-32-characters-00' } })
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(1)
      expect(run.stderr).toMatch(/^contextsync mcp: no contextsync device in \S+: run `contextsync init`.*\n$/)
      expect(run.stdout).toBe('')
    }
  }, 90_000)
})
