/**
 * Pieces shared by the relay benchmarks (bench/relay.ts, bench/relay-processes.ts, bench/ai.ts):
 * relay start-up with the bench's options, the memory-shaped plain writes of the baseline, and
 * waiting helpers.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import type { MemoryItem } from '../src/crdt/memory.js'
import { createRelay, silentLogger, type Relay } from '../src/relay/index.js'

export const STORAGE = process.env.BENCH_RELAY_STORAGE === 'memory' ? 'memory' : 'sqlite'
/** Relay merge interval; default the relay's own (10 s). Stored bytes are read after the room unloaded (merged). */
export const MERGE_MS = process.env.BENCH_RELAY_MERGE_MS === undefined ? undefined : Number(process.env.BENCH_RELAY_MERGE_MS)
/** Same raised limits on every relay of this file (see the module comment). */
export const LIMITS = { messagesPerSecond: 1_000_000, burst: 1_000_000 }
export const WS = WebSocket as unknown as typeof globalThis.WebSocket
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** Poll `predicate` every `everyMs` until true; throws after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs: number, what: string, everyMs = 5): Promise<void> {
  const start = performance.now()
  while (!predicate()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** Resolves waits on a growing count from the receiver's own events (no polling latency). */
export class Waiter {
  private target = Infinity
  private done: (() => void) | undefined
  private failure: ((error: unknown) => void) | undefined
  private error: unknown
  constructor(private readonly count: () => number) {}

  /** A write failed: reject the current and every later wait. */
  fail(error: unknown): void {
    this.error ??= error
    this.failure?.(error)
  }

  notify(): void {
    if (this.done && this.count() >= this.target) {
      const done = this.done
      this.done = undefined
      this.target = Infinity
      done()
    }
  }

  wait(target: number, timeoutMs: number, what: string): Promise<void> {
    if (this.error !== undefined) return Promise.reject(this.error)
    if (this.count() >= target) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.done = undefined
        this.target = Infinity
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${this.count()}/${target})`))
      }, timeoutMs)
      this.target = target
      this.done = () => {
        clearTimeout(timer)
        resolve()
      }
      this.failure = (error) => {
        clearTimeout(timer)
        this.done = undefined
        this.target = Infinity
        reject(error)
      }
    })
  }
}

export function text(i: number): string {
  return `Remembered fact number ${i}: likes ${i % 2 ? 'tea' : 'coffee'} at ${i % 24}:00`
}

/** A 22-character base64url id, like the facade's `randomId` (Node's pooled CSPRNG, as a plain app would use). */
function plainId(): string {
  return randomBytes(16).toString('base64url')
}

export function plainItem(i: number, deviceId: string): MemoryItem {
  const now = Date.now()
  return { id: plainId(), text: text(i), scope: 'personal', kind: 'fact', tags: [`t${i % 10}`], createdAt: now, updatedAt: now, source: { deviceId } }
}

export interface RelayServer {
  relay: Relay
  close(): Promise<void>
}

export async function startRelay(auth: 'none' | undefined): Promise<RelayServer> {
  const dataDir = STORAGE === 'sqlite' ? mkdtempSync(join(tmpdir(), 'contextsync-bench-relay-')) : undefined
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    logger: silentLogger,
    limits: LIMITS,
    ...(MERGE_MS !== undefined && { persistence: { mergeIntervalMs: MERGE_MS } }),
    ...(dataDir !== undefined && { dataDir }),
    ...(auth && { auth }),
  })
  return {
    relay,
    close: async () => {
      await relay.close()
      if (dataDir) rmSync(dataDir, { recursive: true, force: true })
    },
  }
}

