/**
 * What every `contextsync` subcommand shares: the process it talks to ({@link CliIo}), the shape of
 * a command, and the usage error that exits 2. A neutral module, so the relay commands
 * (`src/cli.ts`) and the device commands (`adapters/pc/cli/`) import it without importing each other.
 *
 * @module
 */
import { createInterface } from 'node:readline'
import { ContextSyncError } from './errors.js'

/** What the CLI touches of the outside world; injectable for in-process tests. */
export interface CliIo {
  stdout(text: string): void
  stderr(text: string): void
  env: Record<string, string | undefined>
  /** Call `handler` once on SIGTERM or SIGINT; returns a function that removes the handlers. */
  onShutdownSignal(handler: (signal: string) => void): () => void
  /**
   * Ask the user a question (on stderr, so stdout stays clean for `--json`) and resolve with the
   * line they type; `undefined` when input has ended. Absent: the CLI cannot ask.
   */
  ask?(question: string): Promise<string | undefined>
  /** True when stderr is a terminal (progress bars redraw in place there). */
  stderrIsTty?: boolean
}

/** The real process: stdout/stderr, `process.env`, SIGTERM/SIGINT. */
export const processIo: CliIo = {
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  env: process.env,
  stderrIsTty: process.stderr.isTTY === true,
  onShutdownSignal(handler) {
    const once = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', once)
      process.off('SIGINT', once)
      handler(signal)
    }
    process.on('SIGTERM', once)
    process.on('SIGINT', once)
    return () => {
      process.off('SIGTERM', once)
      process.off('SIGINT', once)
    }
  },
  async ask(question) {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: process.stdin.isTTY === true })
    try {
      return await new Promise<string | undefined>((resolve) => {
        rl.once('close', () => resolve(undefined))
        rl.question(question, (answer) => resolve(answer))
      })
    } finally {
      rl.close()
    }
  },
}

/** A subcommand: a one-line summary for `--help` and its entry point. */
export interface Command {
  summary: string
  run(args: string[], io: CliIo): Promise<number>
}

/** Thrown for usage errors (code `invalid-argument`); `main` prints the message and exits 2. */
export class UsageError extends ContextSyncError {
  override readonly name = 'UsageError'
  constructor(message: string, options?: { cause?: unknown }) {
    super('invalid-argument', message, options)
  }
}
