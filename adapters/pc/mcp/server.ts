/**
 * The PC's MCP server (`@modelcontextprotocol/sdk`): one `McpServer` per client connection, over
 * one open {@link PcDevice} — its tools (`./tools.ts`) and resources (`./resources.ts`), limited
 * to the PC's exposed scopes. Transports: stdio (`serveMcpStdio`) and Streamable HTTP on loopback
 * (`./http.ts`). Nothing is written to stdout but protocol: logs go to the `log` callback (stderr
 * in the CLI).
 *
 * @module
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js'
import type { PcDevice } from '../open-pc.js'
import { registerResources } from './resources.js'
import { registerTools } from './tools.js'

/** Version the server reports in `initialize`. */
export const MCP_SERVER_VERSION = '0.1.0'

/** Options of {@link createMcpServer}. */
export interface McpServerOptions {
  /** Where diagnostics go (never stdout on stdio). Default: nowhere. */
  log?: (message: string) => void
}

/** An MCP server over a PC device, not yet connected; `dispose()` stops its notifications. */
export interface PcMcpServer {
  readonly server: McpServer
  dispose(): void
}

/**
 * Build an MCP server exposing `pc`'s memories and conversations.
 *
 * @example
 * ```ts
 * const { server } = createMcpServer(pc)
 * await server.connect(new StdioServerTransport())
 * ```
 */
export function createMcpServer(pc: PcDevice, options: McpServerOptions = {}): PcMcpServer {
  const log = options.log ?? (() => undefined)
  const server = new McpServer(
    { name: 'contextsync', title: "contextsync — the user's memory and conversations", version: MCP_SERVER_VERSION },
    {
      instructions:
        `Long-term memory and conversations of the user, synced end-to-end encrypted across their devices. ` +
        `Scopes exposed here: ${pc.exposedScopes().join(', ') || 'none'}. Use recall before answering questions about the user; remember durable facts and preferences they state.`,
    },
  )
  registerTools(server, pc)
  const stop = registerResources(server, pc, log)
  return { server, dispose: stop }
}

/**
 * Serve `pc` over stdio until the client disconnects (stdin closes). Resolves when the connection
 * is closed.
 */
export async function serveMcpStdio(pc: PcDevice, options: McpServerOptions = {}): Promise<void> {
  const { server, dispose } = createMcpServer(pc, options)
  const transport = new StdioServerTransport()
  const closed = new Promise<void>((resolve) => {
    transport.onclose = () => resolve()
    // A client that simply exits closes stdin; the transport does not notice that by itself.
    process.stdin.once('end', () => resolve())
  })
  await server.connect(transport)
  options.log?.(`contextsync mcp: serving scopes ${pc.exposedScopes().join(', ') || 'none'} over stdio`)
  await closed
  dispose()
  await server.close().catch(() => undefined)
}
