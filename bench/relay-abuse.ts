/**
 * Relay abuse costs, same-run baselines:
 *
 * 1. Replay cache: cost of one token-nonce claim with an empty cache vs one holding 1M nonces, and
 *    of forgetting them once they expire (should be flat per nonce: no scan per claim).
 * 2. Quota accounting: cost of one rewrite (delete an entry, append one) in a room far below its
 *    account quota vs right at it, for rooms of 64 KiB … 16 MiB (should not grow with the room).
 *
 * Run: `npx tsx bench/relay-abuse.ts`. In process, no sockets: it measures the relay's own work.
 *
 * @module
 */
import { performance } from 'node:perf_hooks'
import * as Y from 'yjs'
import type { WebSocket } from 'ws'
import { EventEmitter } from 'node:events'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { ready } from '../src/crypto/index.js'
import { NonceCache } from '../src/relay/nonce-cache.js'
import { RelayConnection } from '../src/relay/connection.js'
import { resolveLimits } from '../src/relay/limits.js'
import { silentLogger } from '../src/relay/log.js'
import { RelayMetrics } from '../src/relay/metrics.js'
import { RelayStorage } from '../src/relay/accounting.js'
import { memoryStore } from '../src/relay/persistence.js'
import { Room } from '../src/relay/room.js'

function time(fn: () => void): number {
  const start = performance.now()
  fn()
  return performance.now() - start
}

function nonceBench(): void {
  let now = 1_000_000_000
  const cache = new NonceCache({ now: () => now })
  const CLAIMS = 100_000
  const emptyMs = time(() => {
    for (let i = 0; i < CLAIMS; i++) cache.claim(`a-${i}`, now + 600_000)
  })
  for (let i = 0; i < 1_000_000; i++) cache.claim(`fill-${i}`, now + 600_000 + (i % 600) * 1000)
  const fullMs = time(() => {
    for (let i = 0; i < CLAIMS; i++) cache.claim(`b-${i}`, now + 600_000)
  })
  now += 2_000_000
  const held = cache.size
  const expireMs = time(() => cache.claim('after', now + 1000))
  console.log('replay cache (µs per claim)')
  console.log(`  empty cache          ${((emptyMs * 1000) / CLAIMS).toFixed(2)}`)
  console.log(`  1.1M nonces held     ${((fullMs * 1000) / CLAIMS).toFixed(2)}`)
  console.log(`  forgetting ${held} expired nonces at once: ${expireMs.toFixed(1)} ms (${((expireMs * 1e6) / held).toFixed(0)} ns each)`)
}

/** A socket stand-in: the connection handler only needs `on`, `send`, `close`. */
class FakeSocket extends EventEmitter {
  readyState = 1
  send(): void {}
  close(): void {
    this.readyState = 3
  }
  ping(): void {}
  terminate(): void {}
}

function frame(update: Uint8Array): Buffer {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, 0)
  syncProtocol.writeUpdate(encoder, update)
  return Buffer.from(encoding.toUint8Array(encoder))
}

async function quotaBench(): Promise<void> {
  console.log('quota accounting (µs per rewrite update; room size → far from quota / at quota)')
  for (const kib of [64, 1024, 16 * 1024]) {
    const results: string[] = []
    for (const nearQuota of [false, true]) {
      const storage = await RelayStorage.open(memoryStore())
      const writer = new Y.Doc()
      const log = writer.getArray<Uint8Array>('log')
      log.push([new Uint8Array(kib * 1024).fill(7), new Uint8Array(1000).fill(1)])
      const roomBytes = Y.encodeStateAsUpdate(writer).length
      const limits = resolveLimits({
        messagesPerSecond: 1_000_000,
        burst: 1_000_000,
        // The 16 MiB room arrives as one first frame, past the default 16 MiB message cap.
        maxMessageBytes: 64 * 1024 * 1024,
        // Near: the room is within 64 KiB of its quota, so every rewrite is checked against it.
        maxStoredBytesPerAccount: nearQuota ? roomBytes + 64 * 1024 : 1024 ** 3,
      })
      const context = { limits, metrics: new RelayMetrics(() => storage.totalBytes), logger: silentLogger, storage }
      const room = new Room('acct.bench', storage, silentLogger, 1_000_000, () => {})
      const socket = new FakeSocket()
      new RelayConnection(socket as unknown as WebSocket, room, { accountId: 'acct', deviceId: 'bench' }, context, () => {}).start()
      socket.emit('message', frame(Y.encodeStateAsUpdate(writer)), true)
      const updates: Buffer[] = []
      writer.on('update', (u: Uint8Array) => updates.push(frame(u)))
      const N = 500
      for (let i = 0; i < N; i++) {
        writer.transact(() => {
          log.delete(1, 1)
          log.push([new Uint8Array(1000).fill(i & 0xff)])
        })
      }
      const ms = time(() => {
        for (const u of updates) socket.emit('message', u, true)
      })
      if (socket.readyState !== 1) throw new Error('a rewrite was refused')
      results.push(((ms * 1000) / N).toFixed(1))
      room.destroy()
    }
    console.log(`  ${String(kib).padStart(6)} KiB room   ${results[0]!.padStart(8)} / ${results[1]!.padStart(8)}`)
  }
}

await ready()
nonceBench()
await quotaBench()
