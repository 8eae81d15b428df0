/**
 * `contextsync mcp --http`: the PC's MCP server over Streamable HTTP (the SDK's
 * `StreamableHTTPServerTransport`, one MCP session per client) on 127.0.0.1 only.
 *
 * Two checks run before the SDK sees a request (THREAT_MODEL.md "The PC's MCP server"):
 * - **DNS rebinding**: the `Host` header must name a loopback host (`127.0.0.1`, `localhost`,
 *   `[::1]`, any port) or one of `allowedHosts`, and an `Origin` header, when a browser sends one,
 *   must be a loopback origin too — so a web page whose name was rebound to 127.0.0.1 is refused
 *   (403) even before the token is checked. (The SDK's own host validation is Express middleware;
 *   this server is plain `node:http`, so the same rule is applied here.)
 * - **Bearer token**: `Authorization: Bearer <token>`, compared in constant time; the token is
 *   random per start unless given, and printed to stderr by the CLI. Without it: 401.
 *
 * @module
 */
import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { ValidationError } from '../../../src/index.js'
import type { PcDevice } from '../open-pc.js'
import { createMcpServer, type McpServerOptions, type PcMcpServer } from './server.js'

/** Options of {@link serveMcpHttp}. */
export interface McpHttpOptions extends McpServerOptions {
  /** TCP port on 127.0.0.1. Default 0 (a free port; see `url`). */
  port?: number
  /** The bearer token clients must send. Default: 32 random bytes, base64url. At least 16 characters. */
  token?: string
  /** Extra host names (without port) accepted in the `Host` header, e.g. a name in /etc/hosts for 127.0.0.1. */
  allowedHosts?: string[]
  /** Most MCP sessions open at once; a new one beyond it is refused with 503. Default 32. */
  maxSessions?: number
}

/** A running HTTP MCP server. */
export interface McpHttpServer {
  /** The endpoint, e.g. `http://127.0.0.1:52731/mcp`. */
  readonly url: string
  /** The bearer token clients must send. */
  readonly token: string
  /** Close every session and stop listening. */
  close(): Promise<void>
}

/** The path the endpoint is served on. */
export const MCP_HTTP_PATH = '/mcp'

const LOOPBACK_HOSTS = ['127.0.0.1', 'localhost', '[::1]']

/**
 * Serve `pc` over Streamable HTTP on 127.0.0.1.
 *
 * @example
 * ```ts
 * const http = await serveMcpHttp(pc, { port: 8788 })
 * console.error(`MCP on ${http.url}, token ${http.token}`)
 * ```
 */
export async function serveMcpHttp(pc: PcDevice, options: McpHttpOptions = {}): Promise<McpHttpServer> {
  const port = options.port ?? 0
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new ValidationError(`port must be an integer 0-65535, got ${String(port)}`)
  const token = options.token ?? randomBytes(32).toString('base64url')
  if (typeof token !== 'string' || token.length < 16 || /\s/.test(token)) throw new ValidationError('the bearer token must be at least 16 characters without spaces')
  const allowedHosts = new Set([...LOOPBACK_HOSTS, ...(options.allowedHosts ?? []).map((h) => h.toLowerCase())])
  const maxSessions = options.maxSessions ?? 32
  const log = options.log ?? (() => undefined)
  const expected = Buffer.from(token)
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; mcp: PcMcpServer }>()

  const refuse = (res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'application/json', ...headers })
    res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32000, message }, id: null }))
  }
  const hostAllowed = (req: IncomingMessage): boolean => {
    const host = req.headers.host
    if (!host) return false
    try {
      return allowedHosts.has(new URL(`http://${host}`).hostname.toLowerCase())
    } catch {
      return false
    }
  }
  const originAllowed = (req: IncomingMessage): boolean => {
    const origin = req.headers.origin
    if (origin === undefined) return true
    try {
      const url = new URL(origin)
      return (url.protocol === 'http:' || url.protocol === 'https:') && allowedHosts.has(url.hostname.toLowerCase())
    } catch {
      return false
    }
  }
  const authorized = (req: IncomingMessage): boolean => {
    const match = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')
    if (!match) return false
    const given = Buffer.from(match[1]!)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (!hostAllowed(req)) return refuse(res, 403, `Host '${req.headers.host ?? ''}' is not allowed`)
    if (!originAllowed(req)) return refuse(res, 403, `Origin '${req.headers.origin ?? ''}' is not allowed`)
    if (new URL(req.url ?? '/', 'http://127.0.0.1').pathname !== MCP_HTTP_PATH) return refuse(res, 404, `not found; the MCP endpoint is ${MCP_HTTP_PATH}`)
    if (!authorized(req)) return refuse(res, 401, 'missing or wrong bearer token', { 'www-authenticate': 'Bearer realm="contextsync"' })
    const sessionId = req.headers['mcp-session-id']
    if (typeof sessionId === 'string') {
      const session = sessions.get(sessionId)
      if (!session) return refuse(res, 404, 'unknown or closed MCP session')
      return session.transport.handleRequest(req, res)
    }
    if (req.method !== 'POST') return refuse(res, 400, 'an MCP session starts with a POST of initialize')
    if (sessions.size >= maxSessions) return refuse(res, 503, `too many MCP sessions (${maxSessions})`)
    // A new session: its transport answers a non-initialize request with an error by itself.
    const mcp = createMcpServer(pc, { log })
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, { transport, mcp })
      },
    })
    transport.onclose = () => {
      if (transport.sessionId !== undefined) sessions.delete(transport.sessionId)
      mcp.dispose()
    }
    await mcp.server.connect(transport)
    await transport.handleRequest(req, res)
    if (transport.sessionId === undefined) {
      mcp.dispose()
      await mcp.server.close().catch(() => undefined)
    }
  }

  const http = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log(`mcp http: request failed: ${error instanceof Error ? error.message : String(error)}`)
      if (!res.headersSent) refuse(res, 500, 'internal error')
      else res.end()
    })
  })
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject)
    http.listen(port, '127.0.0.1', () => {
      http.off('error', reject)
      resolve()
    })
  })
  const address = http.address() as AddressInfo
  const url = `http://127.0.0.1:${address.port}${MCP_HTTP_PATH}`
  return {
    url,
    token,
    async close() {
      await Promise.all([...sessions.values()].map(({ mcp }) => mcp.server.close().catch(() => undefined)))
      sessions.clear()
      http.closeAllConnections()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}
