/**
 * Pieces shared by the relay benchmarks (bench/relay.ts and its parts, bench/relay-processes.ts, bench/ai.ts):
 * relay start-up with the bench's options, the memory-shaped plain writes of the baseline, and
 * waiting helpers.
 *
 * @module
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { MemoryItem } from '../src/crdt/memory.js'
import { createRelay, silentLogger, type Relay } from '../src/relay/index.js'

import { LIMITS, MERGE_MS, STORAGE, text } from './bench-kit.js'

// The library-free pieces live in bench-kit.ts so that probes loading another tree's library can share them.
export { LIMITS, MERGE_MS, STORAGE, WS, Waiter, sleep, text, until } from './bench-kit.js'

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
    // Every bench client connects from 127.0.0.1: lift the per-address and total connection caps.
    limits: { ...LIMITS, maxConnectionsPerAddress: 1_000_000, maxConnections: 1_000_000 },
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

