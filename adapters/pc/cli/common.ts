/**
 * What the device commands share: their flags (`--data-dir`, `--relay`, `--key-file`, `--scopes`,
 * `--json`, each also read from an environment variable so an MCP client config can set it),
 * parsing with `node:util` `parseArgs` (an unknown flag or a bad value is a {@link UsageError}:
 * one line, exit 2), help text, opening the device, and output for people or for scripts.
 *
 * Exit codes of every device command: 0 success, 1 failure (no device here, relay unreachable,
 * a refused pairing…), 2 usage error, 3 the named memory, session or device does not exist here.
 *
 * @module
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError, type CliIo } from '../../../src/cli-io.js'
import { openPc, type PcDevice, type PcOptions } from '../open-pc.js'

/** Exit code when the named item does not exist here. */
export const EXIT_NOT_FOUND = 3

/** One flag of a command, for parsing and for `--help`. */
export interface FlagDoc {
  name: string
  type: 'string' | 'boolean'
  value?: string
  help: string
  /** Environment variable read when the flag is absent. */
  env?: string
  multiple?: boolean
}

/** Flags naming the device, shared by every device command. */
export const DEVICE_FLAGS: FlagDoc[] = [
  { name: 'data-dir', type: 'string', value: 'DIR', env: 'CONTEXTSYNC_DATA_DIR', help: 'Folder of the device store. Default: the per-user data folder (~/.local/share/contextsync, ~/Library/Application Support/contextsync, %LOCALAPPDATA%\\contextsync\\Data).' },
  { name: 'relay', type: 'string', value: 'URL', env: 'CONTEXTSYNC_RELAY_URL', help: 'Relay URL (ws:// or wss://). Default: the one saved at init/join.' },
  { name: 'key-file', type: 'string', value: 'FILE', env: 'CONTEXTSYNC_KEY_FILE', help: 'Key file that unlocks the device keys. Default: device.key in the per-user config folder. CONTEXTSYNC_PASSPHRASE, when set, is used instead.' },
]

/** `--scopes`, for commands that read or write items. */
export const SCOPES_FLAG: FlagDoc = {
  name: 'scopes',
  type: 'string',
  value: 'A,B',
  env: 'CONTEXTSYNC_SCOPES',
  help: 'Scopes this command may use, comma-separated; each must be one this PC holds. Default: personal,work.',
}

/** `--json`. */
export const JSON_FLAG: FlagDoc = { name: 'json', type: 'boolean', help: 'Print JSON (one object, or one per line for streams) instead of text.' }

/** A command's documentation. */
export interface CommandDoc {
  /** e.g. `memory add` */
  name: string
  usage: string
  description: string
  flags: FlagDoc[]
}

/** `--help` text of a command. */
export function helpText(doc: CommandDoc): string {
  const lines = [`Usage: contextsync ${doc.usage}`, '', doc.description, '', 'Flags:']
  for (const flag of [...doc.flags, { name: 'help', type: 'boolean' as const, help: 'Show this help and exit.' }]) {
    const head = `  --${flag.name}${flag.value ? ` ${flag.value}` : ''}`
    lines.push(flag.env ? `${head.padEnd(30)}[${flag.env}]` : head, `      ${flag.help}`)
  }
  lines.push('', 'Exit codes: 0 success, 1 failure, 2 usage error, 3 not found.', '')
  return lines.join('\n')
}

/** Parsed flags and positionals; `help` when `--help` was given. */
export interface Parsed {
  values: Record<string, string | boolean | Array<string | boolean> | undefined>
  positionals: string[]
}

/**
 * Parse `args` against `doc.flags`, filling absent flags from their environment variables.
 * `positionals` is the [min, max] count of positional arguments. Throws {@link UsageError}.
 */
export function parseCommand(args: string[], doc: CommandDoc, env: Record<string, string | undefined>, positionals: [number, number]): Parsed | 'help' {
  if (args.includes('--help') || args.includes('-h')) return 'help'
  const options: NonNullable<ParseArgsConfig['options']> = {}
  for (const flag of doc.flags) options[flag.name] = { type: flag.type, ...(flag.multiple && { multiple: true }) }
  let parsed
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true })
  } catch (error) {
    // parseArgs' messages are one line already ("Unknown option '--x'…", "Option '--y <value>' argument missing").
    throw new UsageError((error as Error).message.split('\n')[0]!.replace(/\. To specify a positional argument.*$/, ''))
  }
  const values: Parsed['values'] = { ...parsed.values }
  for (const flag of doc.flags) {
    const fromEnv = flag.env === undefined ? undefined : env[flag.env]
    if (values[flag.name] === undefined && fromEnv !== undefined && fromEnv !== '') values[flag.name] = fromEnv
    const value = values[flag.name]
    if (flag.type === 'string' && typeof value === 'string' && value === '') throw new UsageError(`--${flag.name} needs a value`)
  }
  const [min, max] = positionals
  if (parsed.positionals.length < min) throw new UsageError(`missing argument: ${doc.usage.replace(/^\S+( \S+)?\s*/, '')}`)
  if (parsed.positionals.length > max) throw new UsageError(`unexpected argument '${parsed.positionals[max]}'`)
  return { values, positionals: parsed.positionals }
}

/** A string flag's value, if given. */
export function stringFlag(parsed: Parsed, name: string): string | undefined {
  const value = parsed.values[name]
  return typeof value === 'string' ? value : undefined
}

/** A positive integer flag, checked. */
export function intFlag(parsed: Parsed, name: string, min: number, max: number): number | undefined {
  const raw = stringFlag(parsed, name)
  if (raw === undefined) return undefined
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new UsageError(`invalid value for --${name}: '${raw}' (expected an integer ${min}-${max})`)
  return Number(raw)
}

/** `--scopes a,b` as a list, checked for shape (holding them is checked once the device is open). */
export function scopesFlag(parsed: Parsed): string[] | undefined {
  const raw = stringFlag(parsed, 'scopes')
  if (raw === undefined) return undefined
  const scopes = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  if (scopes.length === 0 || scopes.some((s) => !/^[a-z0-9][a-z0-9_-]{0,63}$/.test(s))) throw new UsageError(`invalid value for --scopes: '${raw}' (expected scope names, comma-separated, e.g. personal,work)`)
  return scopes
}

/** The {@link PcOptions} the device flags name. */
export function pcOptions(parsed: Parsed, env: Record<string, string | undefined>): PcOptions {
  const relay = stringFlag(parsed, 'relay')
  if (relay !== undefined && !/^wss?:\/\/[^\s/]+/.test(relay)) throw new UsageError(`invalid value for --relay: '${relay}' (expected a ws:// or wss:// URL)`)
  const dataDir = stringFlag(parsed, 'data-dir')
  const keyFile = stringFlag(parsed, 'key-file')
  const scopes = scopesFlag(parsed)
  return {
    env,
    ...(dataDir !== undefined && { dataDir }),
    ...(relay !== undefined && { relayUrl: relay }),
    ...(keyFile !== undefined && { keyFile }),
    ...(scopes !== undefined && { scopes }),
  }
}

/**
 * Open the device the flags name and check that every scope asked for with `--scopes` is held
 * (a `ScopeAccessError` otherwise: exit 1 with one line).
 */
export async function openFromFlags(parsed: Parsed, env: Record<string, string | undefined>): Promise<PcDevice> {
  const pc = await openPc(pcOptions(parsed, env))
  try {
    if (parsed.values.scopes !== undefined) for (const scope of pc.scopes) pc.requireScope(scope)
  } catch (error) {
    await pc.close()
    throw error
  }
  return pc
}

/** Run `body` with the open device and close it after, whatever happens. */
export async function withDevice<T>(parsed: Parsed, env: Record<string, string | undefined>, body: (pc: PcDevice) => Promise<T>): Promise<T> {
  const pc = await openFromFlags(parsed, env)
  try {
    return await body(pc)
  } finally {
    await pc.close()
  }
}

/** Print `value` as JSON (with `--json`) or as `text()`. */
export function output(io: CliIo, parsed: Parsed, value: unknown, text: () => string): void {
  if (parsed.values.json === true) io.stdout(`${JSON.stringify(value)}\n`)
  else io.stdout(text().replace(/\n?$/, '\n'))
}

/** A date as people read it (UTC, to the second). */
export function when(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')
}

/** One subcommand of a group (`memory add`). */
export interface Subcommand {
  doc: CommandDoc
  /** [min, max] positional arguments. */
  positionals: [number, number]
  run(parsed: Parsed, io: CliIo): Promise<number>
}

/** A command with subcommands (`memory add|list|…`): `--help` lists them, each has its own. */
export function commandGroup(name: string, summary: string, subs: Record<string, Subcommand>): { summary: string; run(args: string[], io: CliIo): Promise<number> } {
  const groupHelp = (): string =>
    [`Usage: contextsync ${name} <${Object.keys(subs).join('|')}> [flags]`, '', summary, '', 'Commands:', ...Object.entries(subs).map(([sub, s]) => `  ${`${name} ${sub}`.padEnd(20)}${s.doc.description.split('\n')[0]}`), '', `Run \`contextsync ${name} <command> --help\` for its flags.`, ''].join('\n')
  return {
    summary,
    async run(args, io) {
      const [subName, ...rest] = args
      if (subName === undefined || subName === '--help' || subName === '-h') {
        io.stdout(groupHelp())
        return subName === undefined ? 2 : 0
      }
      const sub = subs[subName]
      if (!sub) throw new UsageError(`unknown command '${name} ${subName}' (one of: ${Object.keys(subs).join(', ')})`)
      const parsed = parseCommand(rest, sub.doc, io.env, sub.positionals)
      if (parsed === 'help') {
        io.stdout(helpText(sub.doc))
        return 0
      }
      return sub.run(parsed, io)
    },
  }
}

/** `--offline` and `--wait`, for commands that sync before they read or write. */
export const SYNC_FLAGS: FlagDoc[] = [
  { name: 'offline', type: 'boolean', help: 'Do not wait for the relay: use what this PC has.' },
  { name: 'wait', type: 'string', value: 'SECONDS', help: 'How long to wait for the relay before going on with what this PC has. Default 5.' },
]

/**
 * Wait until every exposed scope has synced with the relay (or `seconds` passed, or the PC has no
 * relay): reads then see what other devices wrote, and writes leave with the connection up.
 * Resolves `false` when it gave up waiting.
 */
export async function whenSynced(pc: PcDevice, seconds: number): Promise<boolean> {
  if (pc.relayUrl === undefined) return false
  const pending = new Set(pc.exposedScopes().filter((scope) => pc.connection(scope) !== 'synced'))
  if (pending.size === 0) return true
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => {
      off()
      resolve(false)
    }, seconds * 1000)
    const off = pc.sync.on('status', ({ scope, status }) => {
      if (status === 'synced') pending.delete(scope)
      if (pending.size === 0) {
        clearTimeout(timer)
        off()
        resolve(true)
      }
    })
  })
}

/** Open the device, wait for sync unless `--offline` (warning on stderr when the relay did not answer), run `body`, close. */
export async function withSyncedDevice<T>(parsed: Parsed, io: CliIo, body: (pc: PcDevice) => Promise<T>): Promise<T> {
  const seconds = parsed.values.offline === true ? 0 : (intFlag(parsed, 'wait', 0, 3600) ?? 5)
  return withDevice(parsed, io.env, async (pc) => {
    if (seconds > 0 && pc.relayUrl !== undefined && !(await whenSynced(pc, seconds))) {
      io.stderr(`contextsync: the relay did not answer within ${seconds}s; using what this PC has (writes sync when it is next online)\n`)
    }
    return body(pc)
  })
}
