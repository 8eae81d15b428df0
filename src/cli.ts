/**
 * The `contextsync` command line: `contextsync relay …` runs the relay server; `contextsync demo`
 * runs the four-device demo through an embedded relay; the device commands (`init`, `mcp`, `memory`…) run a PC device (see {@link COMMANDS}).
 *
 * Exit codes: 0 success (including a graceful SIGTERM/SIGINT shutdown), 1 runtime failure,
 * 2 usage error (unknown flag, bad value, unknown command), 3 the named item does not exist (device commands).
 *
 * @module
 */
import { readFileSync, statSync } from 'node:fs'
import { CRYPTO_BACKEND_CHOICES, CRYPTO_BACKEND_ENV } from './crypto/sodium.js'
import { createRelay } from './relay/server.js'
import { postgresStore } from './relay/postgres-store.js'
import { redisFanout } from './relay/redis-fanout.js'
import { DEFAULT_LIMITS, RelayConfigError, type RelayLimits } from './relay/limits.js'
import { isLogLevel, jsonLogger, LOG_LEVELS, type LogLevel } from './relay/log.js'
import { processIo, UsageError, type CliIo, type Command } from './cli-io.js'
import { NotFoundError } from './errors.js'

export { processIo, UsageError, type CliIo, type Command } from './cli-io.js'

// ——————————————————————————————————————————————————————————————— relay flags

interface FlagSpec {
  /** Flag name without dashes; the env var is CONTEXTSYNC_RELAY_<NAME upper, '-' → '_'>. */
  name: string
  value: string
  help: string
  parse(raw: string): unknown
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, kib: 1024, m: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gib: 1024 ** 3 }

function positiveInt(flag: string) {
  return (raw: string): number => {
    if (!/^\d+$/.test(raw) || !Number.isSafeInteger(Number(raw)) || Number(raw) <= 0) {
      throw new UsageError(`invalid value for --${flag}: '${raw}' (expected a positive integer)`)
    }
    return Number(raw)
  }
}

function size(flag: string) {
  return (raw: string): number => {
    const match = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim())
    const unit = SIZE_UNITS[(match?.[2] ?? 'x').toLowerCase()]
    const value = match && unit !== undefined ? Number(match[1]) * unit : NaN
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new UsageError(`invalid value for --${flag}: '${raw}' (expected a positive size, e.g. 1048576, 512KiB, 16MiB, 1GiB)`)
    }
    return value
  }
}

const DURATION_UNITS: Record<string, number> = { '': 1, ms: 1, s: 1000, m: 60_000, min: 60_000, h: 3_600_000 }

function duration(flag: string) {
  return (raw: string): number => {
    const match = /^(\d+)\s*([a-z]*)$/i.exec(raw.trim())
    const unit = DURATION_UNITS[(match?.[2] ?? 'x').toLowerCase()]
    const value = match && unit !== undefined ? Number(match[1]) * unit : NaN
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new UsageError(`invalid value for --${flag}: '${raw}' (expected a positive duration, e.g. 10000, 10s, 10m)`)
    }
    return value
  }
}

const MIB = 1024 * 1024
const KIB = 1024
const RELAY_FLAGS: FlagSpec[] = [
  {
    name: 'host',
    value: 'ADDR',
    help: 'Interface to bind. Default 127.0.0.1 (loopback only); use 0.0.0.0 behind a TLS proxy.',
    parse: (raw) => {
      if (!raw || /\s/.test(raw)) throw new UsageError(`invalid value for --host: '${raw}'`)
      return raw
    },
  },
  {
    name: 'port',
    value: 'N',
    help: 'TCP port. Default 8787; 0 picks a free port (printed on the first line).',
    parse: (raw) => {
      if (!/^\d+$/.test(raw) || Number(raw) > 65535) {
        throw new UsageError(`invalid value for --port: '${raw}' (expected an integer 0-65535)`)
      }
      return Number(raw)
    },
  },
  {
    name: 'data',
    value: 'DIR',
    help: 'Directory of the SQLite database (created if missing). Default ./relay-data. ":memory:" keeps rooms in memory only.',
    parse: (raw) => {
      if (!raw) throw new UsageError('invalid value for --data: empty path')
      return raw
    },
  },
  {
    name: 'store',
    value: 'URL',
    help: 'Keep rooms in PostgreSQL (postgres://user@host:port/db) instead of --data, so several relay nodes can share them (README "Running several relay nodes"). Default: SQLite under --data.',
    parse: (raw) => {
      if (!/^postgres(ql)?:\/\/\S+$/.test(raw)) throw new UsageError(`invalid value for --store: expected a postgres:// URL`)
      return raw
    },
  },
  {
    name: 'redis',
    value: 'URL',
    help: 'Fan-out to the other relay nodes over Redis pub/sub (redis://host:port); needs --store. Default: none (one node).',
    parse: (raw) => {
      if (!/^rediss?:\/\/\S+$/.test(raw)) throw new UsageError(`invalid value for --redis: expected a redis:// URL`)
      return raw
    },
  },
  {
    name: 'max-message-bytes',
    value: 'SIZE',
    help: `Largest accepted frame; larger ones are closed with 1009. Default ${DEFAULT_LIMITS.maxMessageBytes / MIB}MiB (must hold the largest envelope, at least ~1 MiB: sync data comes in frames of at most 1 MiB).`,
    parse: size('max-message-bytes'),
  },
  {
    name: 'rate',
    value: 'N',
    help: `Sustained messages per second per connection; beyond rate+burst the connection is closed with 4429. Default ${DEFAULT_LIMITS.messagesPerSecond}.`,
    parse: positiveInt('rate'),
  },
  {
    name: 'burst',
    value: 'N',
    help: `Messages a connection may send at once before the rate applies. Default ${DEFAULT_LIMITS.burst}.`,
    parse: positiveInt('burst'),
  },
  {
    name: 'max-rooms',
    value: 'N',
    help: `Rooms (stored or open) per account; a new room beyond it is refused with 4414. Default ${DEFAULT_LIMITS.maxRoomsPerAccount}.`,
    parse: positiveInt('max-rooms'),
  },
  {
    name: 'max-stored-bytes',
    value: 'SIZE',
    help: `Stored bytes per account, measured after merging; a write beyond it is refused with 4413. Default ${DEFAULT_LIMITS.maxStoredBytesPerAccount / MIB}MiB.`,
    parse: size('max-stored-bytes'),
  },
  {
    name: 'max-connections-per-address',
    value: 'N',
    help: `TCP connections one source address may hold (IPv6: per /64); beyond it a connection is closed with 4429. Default ${DEFAULT_LIMITS.maxConnectionsPerAddress}.`,
    parse: positiveInt('max-connections-per-address'),
  },
  {
    name: 'max-connections',
    value: 'N',
    help: `TCP connections in total; beyond it a connection is closed with 1013 (try again later). Default ${DEFAULT_LIMITS.maxConnections}.`,
    parse: positiveInt('max-connections'),
  },
  {
    name: 'upgrade-timeout',
    value: 'DURATION',
    help: `Time a socket has to complete its WebSocket upgrade (auth included) before it is dropped (slowloris). Default ${DEFAULT_LIMITS.upgradeTimeoutMs / 1000}s.`,
    parse: duration('upgrade-timeout'),
  },
  {
    name: 'max-rooms-total',
    value: 'N',
    help: `Rooms (stored or open) over all accounts; a new room beyond it is refused with 4414. Default ${DEFAULT_LIMITS.maxRooms}.`,
    parse: positiveInt('max-rooms-total'),
  },
  {
    name: 'max-stored-bytes-total',
    value: 'SIZE',
    help: `Stored bytes over all accounts, measured after merging; a write beyond it is refused with 4413. Default ${DEFAULT_LIMITS.maxStoredBytes / MIB / 1024}GiB.`,
    parse: size('max-stored-bytes-total'),
  },
  {
    name: 'max-pairing-rooms-per-address',
    value: 'N',
    help: `Pairing rooms one source address may be in at once; beyond it a connection is refused with 4414. Default ${DEFAULT_LIMITS.maxPairingRoomsPerAddress}.`,
    parse: positiveInt('max-pairing-rooms-per-address'),
  },
  {
    name: 'max-pairing-room-bytes',
    value: 'SIZE',
    help: `Bytes one pairing room may hold; a write beyond it is refused with 4413. Default ${DEFAULT_LIMITS.maxPairingRoomBytes / KIB}KiB.`,
    parse: size('max-pairing-room-bytes'),
  },
  {
    name: 'pairing-room-lifetime',
    value: 'DURATION',
    help: `A pairing room is closed (4410) and deleted this long after it opened. Default ${DEFAULT_LIMITS.pairingRoomLifetimeMs / 60_000}m.`,
    parse: duration('pairing-room-lifetime'),
  },
  {
    name: 'max-awareness-states',
    value: 'N',
    help: `Awareness states one connection may set; an update beyond it is dropped. Default ${DEFAULT_LIMITS.maxAwarenessStatesPerConnection}.`,
    parse: positiveInt('max-awareness-states'),
  },
  {
    name: 'max-awareness-bytes',
    value: 'SIZE',
    help: `Bytes of awareness state one connection may set; an update beyond it is dropped. Default ${DEFAULT_LIMITS.maxAwarenessBytesPerConnection / KIB}KiB.`,
    parse: size('max-awareness-bytes'),
  },
  {
    name: 'accounts',
    value: 'FILE',
    help: 'Only these accounts may use the relay: one account id (32 hex characters) per line, # comments. Re-read when the file changes. Others are refused with 4403. Default: every account.',
    parse: (raw) => {
      if (!raw) throw new UsageError('invalid value for --accounts: empty path')
      return raw
    },
  },
  {
    name: 'audience',
    value: 'HOST[,HOST…]',
    help: "The host[:port] devices' URLs name for this relay (e.g. relay.example.com behind a TLS proxy); tokens naming another relay, or none, are refused with 4403. Set it for a relay on the internet. Default: not checked.",
    parse: (raw) => {
      const hosts = raw.split(',').map((h) => h.trim().toLowerCase()).filter((h) => h.length > 0)
      if (hosts.length === 0 || hosts.some((h) => !/^[a-z0-9.[\]:-]+$/.test(h))) throw new UsageError(`invalid value for --audience: '${raw}' (expected host[:port], comma-separated)`)
      return hosts
    },
  },
  {
    name: 'client-address-header',
    value: 'NAME',
    help: 'Behind a reverse proxy: the header carrying the client address (e.g. x-forwarded-for; its last entry counts). Per-address limits then use it. Default: the peer address.',
    parse: (raw) => {
      if (!/^[A-Za-z0-9-]+$/.test(raw)) throw new UsageError(`invalid value for --client-address-header: '${raw}' (expected a header name)`)
      return raw.toLowerCase()
    },
  },
  {
    name: 'log-level',
    value: 'LEVEL',
    help: `JSON logs on stderr at this level or above: ${LOG_LEVELS.join(', ')}. Default info.`,
    parse: (raw) => {
      if (!isLogLevel(raw)) throw new UsageError(`invalid value for --log-level: '${raw}' (expected one of ${LOG_LEVELS.join(', ')})`)
      return raw
    },
  },
]

/** Environment variable of a relay flag, e.g. `max-rooms` → `CONTEXTSYNC_RELAY_MAX_ROOMS`. */
export function relayEnvName(flag: string): string {
  return `CONTEXTSYNC_RELAY_${flag.toUpperCase().replace(/-/g, '_')}`
}

function relayHelp(): string {
  const lines = [
    'Usage: contextsync relay [flags]',
    '',
    'Runs the contextsync relay: a y-websocket server that stores and forwards only ciphertext.',
    'Clients connect to ws://HOST:PORT/<roomId>?token=<access token>. GET /healthz and /metrics',
    '(Prometheus) are served on the same port. JSON logs go to stderr; the first line on stdout is',
    '"contextsync relay listening on ws://HOST:PORT". SIGTERM/SIGINT close connections with 1001,',
    'flush storage and exit 0.',
    '',
    'Flags (each also read from the environment variable shown; a flag wins over its variable):',
  ]
  for (const flag of RELAY_FLAGS) {
    lines.push(`  --${flag.name} ${flag.value}`.padEnd(30) + `[${relayEnvName(flag.name)}]`)
    lines.push(`      ${flag.help}`)
  }
  lines.push('  --help'.padEnd(30), '      Show this help and exit.', '')
  lines.push('SIZE accepts a byte count or a KiB/MiB/GiB suffix (e.g. 16MiB).')
  lines.push('DURATION accepts milliseconds or an s/m/h suffix (e.g. 10s, 10m).', '')
  lines.push(
    'CONTEXTSYNC_CRYPTO=auto|native|wasm picks the libsodium build for token checks (default auto:',
    'native sodium-native when it loads, else WebAssembly); the "relay listening" log names it.',
    '',
  )
  return lines.join('\n')
}

/** Parsed `relay` configuration. */
export interface RelayCliConfig {
  host: string
  port: number
  /** Undefined: in memory. */
  dataDir: string | undefined
  limits: Partial<RelayLimits>
  logLevel: LogLevel
  /** `--accounts FILE`: the allow-list of account ids; undefined: every account. */
  accountsFile: string | undefined
  /** `--client-address-header NAME`, lower-cased. */
  clientAddressHeader: string | undefined
  /** `--audience HOST,…`: the audiences tokens must name; undefined: not checked. */
  audience: string[] | undefined
  /** `--store URL`: PostgreSQL instead of `dataDir`. */
  storeUrl: string | undefined
  /** `--redis URL`: fan-out to other relay nodes. */
  redisUrl: string | undefined
}

/** Parse `relay` flags over environment variables. Throws {@link UsageError}. */
export function parseRelayArgs(args: string[], env: Record<string, string | undefined>): RelayCliConfig | 'help' {
  const crypto = env[CRYPTO_BACKEND_ENV]
  if (crypto !== undefined && crypto !== '' && !(CRYPTO_BACKEND_CHOICES as readonly string[]).includes(crypto)) {
    throw new UsageError(`invalid value for ${CRYPTO_BACKEND_ENV}: '${crypto}' (expected ${CRYPTO_BACKEND_CHOICES.join(', ')})`)
  }
  const raw = new Map<string, string>()
  for (const flag of RELAY_FLAGS) {
    const value = env[relayEnvName(flag.name)]
    if (value !== undefined && value !== '') raw.set(flag.name, value)
  }
  const fromFlags = new Map<string, string>()
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === '--help' || arg === '-h') return 'help'
    if (!arg.startsWith('--')) throw new UsageError(`unexpected argument '${arg}'`)
    const eq = arg.indexOf('=')
    const name = arg.slice(2, eq < 0 ? undefined : eq)
    if (!RELAY_FLAGS.some((f) => f.name === name)) throw new UsageError(`unknown flag --${name}`)
    let value: string | undefined
    if (eq >= 0) value = arg.slice(eq + 1)
    else {
      value = args[i + 1]
      if (value === undefined || value.startsWith('--')) throw new UsageError(`--${name} needs a value`)
      i += 1
    }
    fromFlags.set(name, value)
  }
  for (const [name, value] of fromFlags) raw.set(name, value)
  const parsed = new Map<string, unknown>()
  for (const flag of RELAY_FLAGS) {
    const value = raw.get(flag.name)
    if (value === undefined) continue
    try {
      parsed.set(flag.name, flag.parse(value))
    } catch (error) {
      // Name the variable when the bad value came from the environment.
      if (error instanceof UsageError && !fromFlags.has(flag.name)) {
        throw new UsageError(`${error.message} (from ${relayEnvName(flag.name)})`)
      }
      throw error
    }
  }
  const data = (parsed.get('data') as string | undefined) ?? './relay-data'
  // Fan-out only makes sense between nodes that share one store.
  if (parsed.has('redis') && !parsed.has('store')) throw new UsageError('--redis needs --store postgres://…: nodes can only fan out over a store they share')
  const limits: Partial<RelayLimits> = {}
  const limit = (flag: string, key: keyof RelayLimits): void => {
    const value = parsed.get(flag)
    if (typeof value === 'number') limits[key] = value
  }
  limit('max-message-bytes', 'maxMessageBytes')
  limit('rate', 'messagesPerSecond')
  limit('burst', 'burst')
  limit('max-rooms', 'maxRoomsPerAccount')
  limit('max-stored-bytes', 'maxStoredBytesPerAccount')
  limit('max-connections-per-address', 'maxConnectionsPerAddress')
  limit('max-connections', 'maxConnections')
  limit('upgrade-timeout', 'upgradeTimeoutMs')
  limit('max-rooms-total', 'maxRooms')
  limit('max-stored-bytes-total', 'maxStoredBytes')
  limit('max-pairing-rooms-per-address', 'maxPairingRoomsPerAddress')
  limit('max-pairing-room-bytes', 'maxPairingRoomBytes')
  limit('pairing-room-lifetime', 'pairingRoomLifetimeMs')
  limit('max-awareness-states', 'maxAwarenessStatesPerConnection')
  limit('max-awareness-bytes', 'maxAwarenessBytesPerConnection')
  return {
    host: (parsed.get('host') as string | undefined) ?? '127.0.0.1',
    port: (parsed.get('port') as number | undefined) ?? 8787,
    dataDir: data === ':memory:' ? undefined : data,
    limits,
    logLevel: (parsed.get('log-level') as LogLevel | undefined) ?? 'info',
    accountsFile: parsed.get('accounts') as string | undefined,
    clientAddressHeader: parsed.get('client-address-header') as string | undefined,
    audience: parsed.get('audience') as string[] | undefined,
    storeUrl: parsed.get('store') as string | undefined,
    redisUrl: parsed.get('redis') as string | undefined,
  }
}

/** Account ids in `--accounts FILE`: one per line; blank lines and `#` comments skipped. Throws {@link UsageError}. */
export function parseAccountsFile(text: string, file: string): Set<string> {
  const ids = new Set<string>()
  text.split(/\r?\n/).forEach((line, index) => {
    const id = line.replace(/#.*/, '').trim()
    if (id === '') return
    if (!/^[0-9a-f]{32}$/.test(id)) {
      throw new UsageError(`${file}:${index + 1}: not an account id (expected 32 lowercase hex characters)`)
    }
    ids.add(id)
  })
  return ids
}

/**
 * An `authorizeAccount` hook over `--accounts FILE`. The file is re-read when its modification
 * time changes (checked at most once a second), so an operator edits it without a restart; a
 * file that became unreadable or invalid keeps the last good list (and is logged).
 */
function accountsFileHook(file: string, warn: (message: string) => void): (accountId: string) => boolean {
  const read = (): { ids: Set<string>; mtimeMs: number } => {
    let text: string
    let mtimeMs: number
    try {
      mtimeMs = statSync(file).mtimeMs
      text = readFileSync(file, 'utf8')
    } catch (error) {
      throw new UsageError(`cannot read --accounts ${file}: ${error instanceof Error ? error.message : String(error)}`)
    }
    return { ids: parseAccountsFile(text, file), mtimeMs }
  }
  let current = read()
  let checkedAt = Date.now()
  return (accountId) => {
    const now = Date.now()
    if (now - checkedAt >= 1000) {
      checkedAt = now
      try {
        if (statSync(file).mtimeMs !== current.mtimeMs) current = read()
      } catch (error) {
        warn(error instanceof Error ? error.message : String(error))
      }
    }
    return current.ids.has(accountId)
  }
}

async function runRelay(args: string[], io: CliIo): Promise<number> {
  const config = parseRelayArgs(args, io.env)
  if (config === 'help') {
    io.stdout(relayHelp())
    return 0
  }
  const logger = jsonLogger({ level: config.logLevel, write: io.stderr })
  const authorizeAccount =
    config.accountsFile === undefined
      ? undefined
      : accountsFileHook(config.accountsFile, (message) => logger.warn('keeping the previous account list', { error: message }))
  let relay
  try {
    const report = (what: string) => (error: unknown) => logger.warn(what, { error: error instanceof Error ? error.message : 'unknown' })
    const store = config.storeUrl === undefined ? undefined : await postgresStore(config.storeUrl, { onError: report('PostgreSQL connection error'), onRetry: report('PostgreSQL statement retried') })
    const fanout = config.redisUrl === undefined ? undefined : redisFanout(config.redisUrl, { onError: report('Redis connection error') })
    relay = await createRelay({
      host: config.host,
      port: config.port,
      dataDir: config.dataDir,
      ...(store && { store }),
      ...(fanout && { fanout }),
      limits: config.limits,
      logger,
      ...(authorizeAccount && { authorizeAccount }),
      ...(config.clientAddressHeader !== undefined && { clientAddressHeader: config.clientAddressHeader }),
      ...(config.audience !== undefined && { audience: config.audience }),
    })
  } catch (error) {
    if (error instanceof RelayConfigError) throw new UsageError(error.message)
    io.stderr(`contextsync relay: could not start: ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
  io.stdout(`contextsync relay listening on ${relay.url}\n`)
  const signal = await new Promise<string>((resolve) => {
    io.onShutdownSignal(resolve)
  })
  logger.info('shutting down', { signal })
  await relay.close()
  return 0
}

// ——————————————————————————————————————————————————————————————— commands

/**
 * Subcommands by name.
 */
export const COMMANDS: Record<string, Command> = {
  relay: { summary: 'Run the relay server (see `contextsync relay --help`).', run: runRelay },
  demo: {
    summary: 'Run the four-device demo through an embedded relay on a free port.',
    async run(args, io) {
      if (args.includes('--help') || args.includes('-h')) {
        io.stdout('Usage: contextsync demo\n\nStarts a relay on 127.0.0.1 (free port, temporary data dir), pairs a phone, glasses, a car and a PC of one account, and shows them syncing.\n')
        return 0
      }
      if (args.length > 0) {
        io.stderr(`contextsync demo: unexpected argument '${args[0]}' (see --help)\n`)
        return 2
      }
      const { runDemo } = await import('./demo.js')
      return runDemo((line) => io.stdout(`${line}\n`))
    },
  },
}

/**
 * The device commands (`adapters/pc/cli/`), loaded on first use: the relay never loads the device,
 * SQLite or the MCP SDK.
 */
const DEVICE_COMMANDS: Record<string, string> = {
  init: 'Create a new account with this PC as its first owner; prints the recovery code once.',
  join: 'Pair this PC with your account using an invite code from your phone (shows the six digits).',
  memory: 'Memories of this PC: add, list, recall, show, forget, export, import.',
  sessions: 'Conversations on this PC: list, show, tail (live).',
  devices: "The account's devices: list, invite (owner), revoke (owner).",
  status: 'This PC, its account, and per scope: connection, peers, lag, pending.',
  sync: 'Stay online and keep this PC in sync (a daemon) until SIGINT/SIGTERM.',
  mcp: 'Serve memories and conversations to desktop assistants over MCP (stdio, or --http).',
}
for (const [name, summary] of Object.entries(DEVICE_COMMANDS)) {
  COMMANDS[name] = {
    summary,
    async run(args, io) {
      const { PC_COMMANDS } = await import('../adapters/pc/cli/index.js')
      return PC_COMMANDS[name]!.run(args, io)
    },
  }
}

function mainHelp(): string {
  const lines = ['Usage: contextsync <command> [flags]', '', 'Commands:']
  for (const [name, command] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(10)}${command.summary}`)
  lines.push('', 'Run `contextsync <command> --help` for its flags.', '')
  return lines.join('\n')
}

/**
 * Run the CLI with `argv` (without `node` and the script). Resolves to the exit code; never
 * calls `process.exit` itself.
 *
 * @example
 * ```ts
 * process.exitCode = await main(['relay', '--port', '0'])
 * ```
 */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const [name, ...rest] = argv
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout(mainHelp())
    return name === undefined ? 2 : 0
  }
  const command = COMMANDS[name]
  if (!command) {
    io.stderr(`contextsync: unknown command '${name}'\n\n${mainHelp()}`)
    return 2
  }
  try {
    return await command.run(rest, io)
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(`contextsync ${name}: ${error.message}\nRun \`contextsync ${name} --help\` for usage.\n`)
      return 2
    }
    if (error instanceof NotFoundError) {
      io.stderr(`contextsync ${name}: ${error.message}\n`)
      return 3
    }
    io.stderr(`contextsync ${name}: ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
}
