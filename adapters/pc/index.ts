/**
 * `contextsync/pc` — the desktop device (Node): {@link openPc}, {@link initPc} and {@link joinPc}
 * on SQLite in the per-user data folder with the WebSocket transport, its default key protection
 * (a key file in the per-user config folder, or `CONTEXTSYNC_PASSPHRASE`), and the MCP server that
 * lets desktop assistants use the person's memory (`createMcpServer`, `serveMcpStdio`,
 * `serveMcpHttp`; they need `@modelcontextprotocol/sdk` and `zod`, optional peer dependencies —
 * a `ConfigError` names them when missing).
 *
 * @example
 * ```ts
 * import { openPc, serveMcpStdio } from 'contextsync/pc'
 * const pc = await openPc({ scopes: ['personal'] })
 * await serveMcpStdio(pc, { log: (line) => process.stderr.write(`${line}\n`) })
 * await pc.close()
 * ```
 *
 * @module
 */
export { openPc, initPc, joinPc, PC_DEFAULT_SCOPES, type PcDevice, type PcOptions } from './open-pc.js'
export { pcPaths, defaultKeyFile, PC_FILES, PC_APP_NAME, type PcPaths } from './paths.js'
export { keyFileKeys, defaultPcKeys, KEY_FILE_KIND, PASSPHRASE_ENV } from './key-file.js'
export { createMcpServer, serveMcpStdio, serveMcpHttp, type McpServerOptions, type PcMcpServer, type McpHttpOptions, type McpHttpServer } from './mcp-entry.js'
