#!/usr/bin/env node
/**
 * Executable entry of the `contextsync` CLI: runs {@link main} with the process arguments and
 * reports its exit code through `process.exitCode`, so pending output is flushed before exit.
 *
 * @module
 */
import { main } from './cli.js'

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  (error: unknown) => {
    process.stderr.write(`contextsync: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exitCode = 1
  },
)
