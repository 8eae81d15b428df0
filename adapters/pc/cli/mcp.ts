/**
 * `contextsync mcp`: the PC's MCP server for desktop assistants (Claude Desktop, Cursor, VS Code,
 * Claude Code). Over stdio by default — stdout carries only protocol, every log line goes to
 * stderr — or Streamable HTTP on 127.0.0.1 with `--http` (the URL and bearer token are printed to
 * stderr at start). It runs until the client closes stdin (stdio) or SIGTERM/SIGINT.
 *
 * @module
 */
import type { Command } from '../../../src/cli-io.js'
import { loadMcpSdk, serveMcpHttp, serveMcpStdio } from '../mcp-entry.js'
import { DEVICE_FLAGS, helpText, intFlag, openFromFlags, parseCommand, SCOPES_FLAG, stringFlag, type CommandDoc } from './common.js'

const DOC: CommandDoc = {
  name: 'mcp',
  usage: 'mcp [--http [--port N]] [--scopes personal,work] [flags]',
  description: [
    "Serves this PC's memories and conversations to an MCP client: tools remember, recall, list_memories,",
    'show_memory, forget, list_sessions, read_session, append_turn, hand_off_session; resources',
    'contextsync://memories/{id} and contextsync://sessions/{id}, with update notifications when other',
    'devices write. Only the scopes given with --scopes (default personal,work) that this PC holds.',
    'stdio by default (logs on stderr); --http serves Streamable HTTP on 127.0.0.1 and prints the URL and',
    'a bearer token on stderr.',
  ].join('\n'),
  flags: [
    SCOPES_FLAG,
    { name: 'http', type: 'boolean', help: 'Serve Streamable HTTP on 127.0.0.1 instead of stdio.' },
    { name: 'port', type: 'string', value: 'N', env: 'CONTEXTSYNC_MCP_PORT', help: 'With --http: the port (default 0, a free one).' },
    { name: 'token', type: 'string', value: 'TOKEN', env: 'CONTEXTSYNC_MCP_TOKEN', help: 'With --http: the bearer token clients must send (default: random, printed at start).' },
    ...DEVICE_FLAGS,
  ],
}

/** `contextsync mcp`. */
export const mcpCommand: Command = {
  summary: 'Serve memories and conversations to desktop assistants over MCP (stdio, or --http).',
  async run(args, io) {
    const parsed = parseCommand(args, DOC, io.env, [0, 0])
    if (parsed === 'help') {
      io.stdout(helpText(DOC))
      return 0
    }
    const port = intFlag(parsed, 'port', 0, 65535)
    const token = stringFlag(parsed, 'token')
    const log = (line: string): void => io.stderr(`${line}\n`)
    // A missing optional peer is reported before the device is opened (no store lock, no relay).
    await loadMcpSdk(parsed.values.http === true ? 'http' : 'stdio')
    const pc = await openFromFlags(parsed, io.env)
    try {
      if (parsed.values.http === true) {
        const http = await serveMcpHttp(pc, { log, ...(port !== undefined && { port }), ...(token !== undefined && { token }) })
        io.stderr(`contextsync mcp listening on ${http.url}\n`)
        io.stderr(`bearer token: ${http.token}\n`)
        log(`serving scopes ${pc.exposedScopes().join(', ') || 'none'}`)
        await new Promise<void>((resolve) => io.onShutdownSignal(() => resolve()))
        await http.close()
      } else {
        let offSignal: (() => void) | undefined
        await Promise.race([
          serveMcpStdio(pc, { log }),
          new Promise<void>((resolve) => {
            offSignal = io.onShutdownSignal(() => resolve())
          }),
        ])
        offSignal?.()
      }
    } finally {
      await pc.close()
    }
    return 0
  },
}
