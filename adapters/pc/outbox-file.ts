/**
 * The PC's outbox across processes: every CLI command is its own process, so what one left waiting
 * for the relay (`memory add` with the relay away) is written to `outbox.json` next to the store
 * and carried into the next one, where `contextsync status` shows it until the room syncs.
 * Counts and byte sizes only — nothing of the content. Written shortly after each change and when
 * the device closes; a file that is missing or unreadable means nothing carried (it is a display,
 * not a guarantee: the next sync sends whatever the relay lacks regardless).
 *
 * @module
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import type { Pending, PendingScope } from '../../src/facade/outbox.js'

/** How long a change waits before it is written (a bulk import changes the outbox per envelope). */
const SAVE_DELAY_MS = 500

/** What `outbox.json` says, or nothing when it is absent or not ours. */
export function readCarried(path: string): Pending | undefined {
  if (!existsSync(path)) return undefined
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as { scopes?: unknown }
    if (typeof parsed !== 'object' || parsed === null || typeof parsed.scopes !== 'object' || parsed.scopes === null) return undefined
    const scopes: Record<string, PendingScope> = {}
    let count = 0
    let bytes = 0
    for (const [scope, value] of Object.entries(parsed.scopes as Record<string, unknown>)) {
      const p = value as { count?: unknown; bytes?: unknown } | null
      if (!p || !Number.isSafeInteger(p.count) || !Number.isSafeInteger(p.bytes) || (p.count as number) <= 0 || (p.bytes as number) < 0) continue
      scopes[scope] = { count: p.count as number, bytes: p.bytes as number }
      count += p.count as number
      bytes += p.bytes as number
    }
    return { count, bytes, scopes }
  } catch {
    return undefined
  }
}

/** Writes an outbox to `path`: `schedule` soon after a change, `now` at close. */
export interface OutboxSaver {
  schedule(pending: Pending): void
  now(pending: Pending): void
}

/** A saver for `path` (written to a side file and renamed, so a reader never sees half of it). */
export function outboxSaver(path: string): OutboxSaver {
  let timer: ReturnType<typeof setTimeout> | undefined
  let latest: Pending | undefined
  const write = (pending: Pending): void => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    writeFileSync(`${path}.tmp`, `${JSON.stringify({ scopes: pending.scopes })}\n`, { mode: 0o600 })
    renameSync(`${path}.tmp`, path)
  }
  return {
    schedule(pending) {
      latest = pending
      if (timer !== undefined) return
      timer = setTimeout(() => {
        try {
          write(latest!)
        } catch {
          // A display only: the next change or the close tries again.
        }
      }, SAVE_DELAY_MS)
      ;(timer as { unref?: () => void }).unref?.()
    },
    now: write,
  }
}
