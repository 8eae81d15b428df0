/**
 * The fixtures of bench/link.ts: the link parameters every part shares (from the environment), a
 * real E2EE replica as a device holds it, the memories the glasses write, and the sealed sizes of
 * a streamed answer.
 *
 * @module
 */
import { memoryStorage } from '../src/adapters/memory-storage.js'
import type { MemoryItem } from '../src/crdt/memory.js'
import { createAccountKeys, createDeviceKeys, ownerKeyring, randomBytes, ready } from '../src/crypto/index.js'
import { Replica, STREAM_ORIGIN } from '../src/sync/replica.js'

/** Link MTU (BENCH_LINK_MTU). */
export const MTU = Number(process.env.BENCH_LINK_MTU ?? 185)
/** BLE connection interval, ms (BENCH_LINK_INTERVAL_MS). */
export const INTERVAL = Number(process.env.BENCH_LINK_INTERVAL_MS ?? 30)
/** Seed of the simulator and of the filler bytes (BENCH_LINK_SEED). */
export const SEED = Number(process.env.BENCH_LINK_SEED ?? 1)
/**
 * Keepalive on both ends, equal for baseline and subject: on BLE the link layer's supervision
 * timeout (at most 32 s, Core v5.3 Vol 6 Part B §4.5.2) already catches a dead link, so the link's
 * own keepalive is a backstop and runs slowly; owed acks ride on it (or on the next burst).
 */
export const KEEPALIVE_MS = Number(process.env.BENCH_LINK_KEEPALIVE_MS ?? 600_000)
/**
 * Peripheral latency and supervision timeout of table B: the most Apple's accessory guidelines
 * allow at a 30 ms interval (interval × (latency + 1) ≤ 2 s, latency ≤ 30, timeout 2–6 s and
 * above interval × (latency + 1) × 3) — see `src/testing/ble-link.ts` for the sources.
 */
export const LATENCY = Number(process.env.BENCH_LINK_LATENCY ?? 30)
/** Supervision timeout of table B, ms (BENCH_LINK_SUPERVISION_MS; see {@link LATENCY}). */
export const SUPERVISION_MS = Number(process.env.BENCH_LINK_SUPERVISION_MS ?? 6_000)

/** Memory `i` as the glasses write it (fixed ids and times, so every run writes the same bytes). */
export function memory(i: number, deviceId: string): MemoryItem {
  const now = 1_767_225_600_000 + i * 60_000
  return {
    id: `m${i.toString(36).padStart(6, '0')}`,
    text: `Remembered fact number ${i}: prefers the window seat on morning trains, ${i % 2 ? 'tea' : 'coffee'} at ${i % 24}:00`,
    scope: 'personal',
    kind: 'fact',
    tags: [`t${i % 10}`],
    createdAt: now,
    updatedAt: now,
    source: { deviceId },
  }
}

/** A real E2EE replica of one room, as a device holds it. */
export async function benchReplica(scope: 'personal' | 'sessions') {
  await ready()
  const account = createAccountKeys()
  const keyring = ownerKeyring(account)
  const device = createDeviceKeys()
  const roomId = keyring.roomId(scope)
  const replica = new Replica({
    scope,
    roomId,
    keyring,
    directory: { resolve: (id: string) => (id === device.deviceId ? { status: 'known', signPublicKey: device.signPublicKey } : { status: 'unknown' }) },
    storage: memoryStorage(),
    atRestKey: randomBytes(32),
    signer: { sender: device.deviceIdBytes, senderId: device.deviceId, signSecretKey: device.signSecretKey },
    compaction: { maxEntries: 1_000_000 },
  })
  await replica.load()
  return { replica, roomId, device }
}

/**
 * Sealed bytes of a streamed answer: 60 tokens appended to a Y.Text with the stream origin, sealed
 * `perEnvelope` tokens at a time — what the sealer's `streamFlushDelayMs` decides (20 ms by
 * default: one envelope per token at 80 ms a token; 1 s: about 12 tokens per envelope).
 */
export async function streamedEnvelopes(perEnvelope: number): Promise<number[]> {
  const { replica } = await benchReplica('sessions')
  const text = replica.inner.getText('answer')
  const log = replica.outer.getArray<Uint8Array>('log')
  const sizes: number[] = []
  for (let token = 0; token < 60; token += perEnvelope) {
    const before = log.length
    for (let j = token; j < Math.min(60, token + perEnvelope); j++) {
      replica.inner.transact(() => text.insert(text.length, ` word${j % 7 === 0 ? ',' : ''}${'abcdefg'.slice(0, 1 + (j % 6))}`), STREAM_ORIGIN)
    }
    await replica.whenFlushed()
    for (const entry of log.toArray().slice(before)) sizes.push(entry.length)
  }
  await replica.close()
  return sizes
}

/** A streamed answer as the phone's sealer cuts it into envelopes (sizes measured by {@link streamedEnvelopes}). */
export interface AnswerSealing {
  /** Sealed size of each envelope. */
  sizes: number[]
  /** Tokens each envelope carries. */
  tokens: number[]
  /** The sealer's `streamFlushDelayMs`: an envelope is sealed this long after its first token. */
  sealDelayMs: number
}

/** A key for an envelope: its first 12 bytes in hex (the envelopes of these benches are random bytes). */
export const keyOf = (bytes: Uint8Array): string => Array.from(bytes.subarray(0, 12), (b) => b.toString(16).padStart(2, '0')).join('')
