/**
 * The device commands of the `contextsync` CLI, run on a PC: `src/cli.ts` loads this module only
 * when one of them is called, so `contextsync relay` never loads the device, SQLite or the MCP SDK.
 *
 * @module
 */
import type { Command } from '../../../src/cli-io.js'
import { initCommand, joinCommand } from './account.js'
import { devicesCommand, statusCommand, syncCommand } from './devices.js'
import { mcpCommand } from './mcp.js'
import { memoryCommand } from './memory.js'
import { sessionsCommand } from './sessions.js'

/** Device commands by name. */
export const PC_COMMANDS: Record<string, Command> = {
  init: initCommand,
  join: joinCommand,
  memory: memoryCommand,
  sessions: sessionsCommand,
  devices: devicesCommand,
  status: statusCommand,
  sync: syncCommand,
  mcp: mcpCommand,
}
