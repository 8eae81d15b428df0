/**
 * One process per PC store. Two processes opening the same store would both be *this device*:
 * each reserves its next seqs from the same record and they would seal different envelopes under
 * the same seq, which every other device refuses as a replay (WIRE.md "Device store layout",
 * `replica/<roomId>/meta`). So a store is opened under a lock file, `contextsync.lock` next to it,
 * made with `O_EXCL` and holding the owner's pid and command; a lock whose process is gone (a
 * crash, `kill -9`) is taken over. A second process gets a `ConfigError` naming the holder — for
 * several assistants at once, one `contextsync mcp --http` serves them all.
 *
 * @module
 */
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs'
import { ConfigError } from '../../src/index.js'

/** A held lock; `release()` is idempotent. */
export interface StoreLock {
  release(): void
}

interface LockInfo {
  pid: number
  command: string
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as { code?: unknown }).code === 'EPERM'
  }
}

function readLock(path: string): LockInfo | undefined {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<LockInfo>
    return typeof parsed.pid === 'number' && Number.isSafeInteger(parsed.pid) && parsed.pid > 0 ? { pid: parsed.pid, command: String(parsed.command ?? '') } : undefined
  } catch {
    return undefined
  }
}

/**
 * Take the lock at `path` for this process, or throw a `ConfigError` naming the process that holds
 * it. `what` describes this process in the lock (e.g. `contextsync mcp`).
 */
export function lockStore(path: string, what: string): StoreLock {
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number
    try {
      fd = openSync(path, 'wx', 0o600)
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EEXIST') throw new ConfigError(`cannot lock the store (${path}): ${(error as Error).message}`)
      const holder = readLock(path)
      if (holder && alive(holder.pid)) {
        throw new ConfigError(`this PC's store is in use by process ${holder.pid} (${holder.command || 'contextsync'}); stop it first, or share one \`contextsync mcp --http\` between assistants`)
      }
      // Left by a process that is gone (or half-written by one that died writing it): take it over.
      rmSync(path, { force: true })
      continue
    }
    try {
      writeSync(fd, JSON.stringify({ pid: process.pid, command: what }))
    } finally {
      closeSync(fd)
    }
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      process.off('exit', release)
      if (readLock(path)?.pid === process.pid) rmSync(path, { force: true })
    }
    process.on('exit', release)
    return { release }
  }
  throw new ConfigError(`cannot lock the store (${path}): another process keeps taking the lock`)
}
