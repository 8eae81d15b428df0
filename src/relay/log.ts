/**
 * Structured relay logs: one JSON object per line, to stderr by default.
 *
 * Log fields are restricted to primitives and the relay only ever passes metadata the relay
 * already sees (room ids, account/device ids, sizes, close codes). Payload bytes and tokens are
 * never logged: the field type rejects `Uint8Array`, and call sites pass no token strings.
 *
 * @module
 */

/** Severity, lowest first. `silent` disables logging. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

/** Every accepted log level, for CLI validation. */
export const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error', 'silent']

/** Metadata of one log line. Primitives only, so bytes cannot slip into a log by accident. */
export type LogFields = Record<string, string | number | boolean | null | undefined>

/** What the relay logs through. Plug in your own (pino, winston…) via `RelayOptions.logger`. */
export interface RelayLogger {
  debug(message: string, fields?: LogFields): void
  info(message: string, fields?: LogFields): void
  warn(message: string, fields?: LogFields): void
  error(message: string, fields?: LogFields): void
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

/** Options of {@link jsonLogger}. */
export interface JsonLoggerOptions {
  /** Lowest level written; default `'info'`. */
  level?: LogLevel
  /** Where a finished line (with trailing newline) goes; default `process.stderr.write`. */
  write?: (line: string) => void
  /** Clock for the `time` field (tests). */
  now?: () => Date
}

/**
 * A logger writing JSON lines: `{"time":"…","level":"info","msg":"…",…fields}`.
 *
 * @example
 * ```ts
 * const logger = jsonLogger({ level: 'warn' })
 * logger.warn('connection refused', { code: 4401 })
 * ```
 */
export function jsonLogger(options: JsonLoggerOptions = {}): RelayLogger {
  const threshold = RANK[options.level ?? 'info']
  const write = options.write ?? ((line: string) => void process.stderr.write(line))
  const now = options.now ?? (() => new Date())
  const emit = (level: Exclude<LogLevel, 'silent'>, message: string, fields?: LogFields): void => {
    if (RANK[level] < threshold) return
    let line: string
    try {
      line = JSON.stringify({ time: now().toISOString(), level, msg: message, ...fields })
    } catch {
      line = JSON.stringify({ time: now().toISOString(), level, msg: message })
    }
    try {
      write(line + '\n')
    } catch {
      // A broken log sink must never take the relay down.
    }
  }
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  }
}

/** A logger that drops everything (tests). */
export const silentLogger: RelayLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
}

/** True when `value` names a {@link LogLevel}. */
export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value)
}
