/**
 * The MCP server behind a lazy import: `contextsync/pc` loads `@modelcontextprotocol/sdk` (and
 * `zod`) only when a server is started, so opening a PC device works without them, and a missing
 * one is a `ConfigError` naming the install command instead of a module-resolution crash.
 *
 * @module
 */
import { ConfigError } from '../../src/index.js'
import type { PcDevice } from './open-pc.js'
import type { McpServerOptions, PcMcpServer } from './mcp/server.js'
import type { McpHttpOptions, McpHttpServer } from './mcp/http.js'

export type { McpServerOptions, PcMcpServer } from './mcp/server.js'
export type { McpHttpOptions, McpHttpServer } from './mcp/http.js'

const PEERS = ['@modelcontextprotocol/sdk', 'zod']

async function load<T>(importer: () => Promise<T>): Promise<T> {
  try {
    return await importer()
  } catch (error) {
    const code = (error as { code?: unknown }).code
    const message = String((error as Error)?.message ?? '')
    const missing = PEERS.find((name) => message.includes(`'${name}`) || message.includes(`"${name}`))
    if ((code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && missing) {
      // One line naming the package that is actually missing, worded like requireOptional's.
      throw new ConfigError(`the contextsync MCP server needs ${missing}, which is not installed: run \`npm install ${missing}\``)
    }
    throw error
  }
}

/**
 * Load the MCP SDK (for `transport`) without starting anything, so a caller can report a missing
 * optional peer before it opens the device: `contextsync mcp` fails with that `ConfigError`
 * alone, without touching the store or the relay.
 */
export async function loadMcpSdk(transport: 'stdio' | 'http' = 'stdio'): Promise<void> {
  await (transport === 'http' ? load(() => import('./mcp/http.js')) : load(() => import('./mcp/server.js')))
}

/** Build an MCP server over `pc` (see `adapters/pc/mcp/server.ts`). */
export async function createMcpServer(pc: PcDevice, options: McpServerOptions = {}): Promise<PcMcpServer> {
  const mod = await load(() => import('./mcp/server.js'))
  return mod.createMcpServer(pc, options)
}

/** Serve `pc` over stdio until the client disconnects. */
export async function serveMcpStdio(pc: PcDevice, options: McpServerOptions = {}): Promise<void> {
  const mod = await load(() => import('./mcp/server.js'))
  return mod.serveMcpStdio(pc, options)
}

/** Serve `pc` over Streamable HTTP on loopback, with a bearer token (see `adapters/pc/mcp/http.ts`). */
export async function serveMcpHttp(pc: PcDevice, options: McpHttpOptions = {}): Promise<McpHttpServer> {
  const mod = await load(() => import('./mcp/http.js'))
  return mod.serveMcpHttp(pc, options)
}
