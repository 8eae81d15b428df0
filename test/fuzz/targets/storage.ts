/**
 * A replica's stored records (WIRE.md "Device store layout": `replica/<roomId>/log/…` sealed-log
 * chunks, `…/state/…` sealed checkpoints, `…/meta` seq reservation) damaged one at a time, then
 * loaded by a real `Replica` (src/sync/replica.ts, src/sync/log-store.ts, src/sync/checkpoint.ts):
 * `load()` resolves — a checkpoint that does not open or apply is reported as a `storage-error`
 * (`corrupt`) — or rejects with a `StorageError`; never anything else. After a load that resolves,
 * the device still writes: a new memory is sealed into an envelope every receiver can parse.
 *
 * Input layout: `u8 record · u8 op · payload`; op 0 replaces the record's bytes with the payload,
 * op 1 removes the record, op 2 stores the payload as one more sealed-log chunk.
 *
 * @module
 */
import * as Y from 'yjs'
import { memoryStorage } from '../../../src/adapters/memory-storage.js'
import { StorageError, type StorageChunk } from '../../../src/adapters/storage.js'
import { parseEnvelope } from '../../../src/crypto/index.js'
import { insertMemory } from '../../../src/crdt/memory.js'
import { sealedLog } from '../../../src/crdt/sealed-log.js'
import { Replica, type ReplicaOptions } from '../../../src/sync/replica.js'
import { fixture } from '../fixture.js'
import { HUGE_VALUES, mutate, varuint } from '../mutators.js'
import { chance, int, pick, setupRng, weighted, type Rng } from '../rng.js'
import { expectThat, PropertyViolation, type Target } from '../target.js'
import { sampleMemory } from './crafted.js'
import { envelopeSamples, generateEnvelope } from './envelopes.js'

const WRITE_MS = 3_000

function framed(record: number, op: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 2)
  out[0] = record
  out[1] = op
  out.set(payload, 2)
  return out
}

/** A sealed-log chunk (a Yjs update of the outer doc) carrying `envelope`. */
function logChunk(envelope: Uint8Array, clientID: number): Uint8Array {
  const doc = new Y.Doc()
  doc.clientID = clientID
  sealedLog(doc).push([envelope])
  const update = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return update
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new PropertyViolation(`${what} did not settle within ${ms} ms`)), ms)
    }),
  ])
}

export const storageTarget: Target = {
  name: 'storage',
  description: 'damaged replica records (log chunks, sealed checkpoints, meta) loaded by a real Replica',
  weight: 1.5,
  budgetMs: 1000,
  async setup(seed) {
    const fx = fixture(seed)
    const gen0 = setupRng(seed, 'storage')
    // Envelopes in damaged chunks are another device's: an authentic envelope of this device's
    // own with a seq near 2^53 needs its signing key, and would leave it no seq to write with.
    const other = { ...fx, device: fx.member, member: fx.device }
    const envelopes = envelopeSamples(gen0, other)
    const options = (storage: ReturnType<typeof memoryStorage>): ReplicaOptions => ({
      scope: 'personal',
      roomId: fx.roomId,
      keyring: fx.keyring,
      directory: {
        resolve: (senderId) =>
          senderId === fx.device.deviceId
            ? { status: 'known', signPublicKey: fx.device.signPublicKey }
            : senderId === fx.member.deviceId
              ? { status: 'known', signPublicKey: fx.member.signPublicKey }
              : { status: 'unknown' },
      },
      storage,
      atRestKey: fx.atRestKey,
      signer: { sender: fx.device.deviceIdBytes, senderId: fx.device.deviceId, signSecretKey: fx.device.signSecretKey },
      hold: { timeoutMs: 50 },
    })
    // A genuine store: writes, a compaction (checkpoint + merged chunk), then more writes.
    const genuine = memoryStorage()
    const writer = new Replica(options(genuine))
    await writer.load()
    const oldCheckpoints: Uint8Array[] = []
    for (let i = 0; i < 3; i++) writer.inner.transact(() => insertMemory(writer.inner, sampleMemory(gen0, i, fx.device.deviceId)))
    await writer.whenFlushed()
    await writer.compactNow()
    for (const c of await genuine.loadRange(['replica', fx.roomId, 'state'])) oldCheckpoints.push(c.data)
    if (oldCheckpoints.length === 0) throw new Error('the compaction wrote no checkpoint')
    writer.inner.transact(() => insertMemory(writer.inner, sampleMemory(gen0, 9, fx.device.deviceId)))
    await writer.whenFlushed()
    await writer.close()
    const records: StorageChunk[] = await genuine.loadRange(['replica'])
    if (!records.some((r) => r.key.includes('state')) || !records.some((r) => r.key.includes('meta'))) throw new Error('the genuine store lacks a checkpoint or meta record')
    const payloadFor = (gen: Rng, record: StorageChunk): Uint8Array => {
      const kind = record.key[2]
      if (kind === 'meta') {
        return weighted<() => Uint8Array>(gen, [
          [3, () => mutate(gen, record.data)],
          [3, () => Uint8Array.from([1, ...varuint(pick(gen, HUGE_VALUES))])],
          [1, () => Uint8Array.from([int(gen, 0, 3), ...varuint(int(gen, 0, 5000))])],
        ])()
      }
      if (kind === 'state') {
        // Only this device's at-rest key seals a checkpoint, so damage is what the store can do:
        // changed bytes, or an older genuine checkpoint put back (test/fuzz/targets/checkpoint.ts
        // covers what the decoder does with authentic garbage).
        return chance(gen, 0.8) ? mutate(gen, record.data) : pick(gen, oldCheckpoints)
      }
      return chance(gen, 0.5) ? mutate(gen, record.data) : logChunk(generateEnvelope(gen, other, envelopes), int(gen, 1, 2 ** 31))
    }
    return {
      generate(gen) {
        const index = int(gen, 0, records.length - 1)
        const op = weighted<number>(gen, [
          [8, 0],
          [1, 1],
          [2, 2],
        ])
        const payload = op === 2 ? logChunk(generateEnvelope(gen, other, envelopes), int(gen, 1, 2 ** 31)) : op === 1 ? new Uint8Array(0) : payloadFor(gen, records[index]!)
        return framed(index, op, payload)
      },
      async run(input) {
        const index = (input[0] ?? 0) % records.length
        const op = input[1] ?? 0
        const payload = input.subarray(2)
        const storage = memoryStorage()
        for (const [i, record] of records.entries()) {
          if (i !== index || op === 2) await storage.save(record.key, record.data)
          else if (op === 0) await storage.save(record.key, payload)
        }
        if (op === 2) await storage.save(['replica', fx.roomId, 'log', '999999999999'], payload)
        const replica = new Replica(options(storage))
        let corrupt = 0
        replica.events.on('storage-error', ({ error }) => {
          expectThat(error instanceof StorageError, 'storage-error event without a StorageError')
          corrupt++
        })
        try {
          await withTimeout(replica.load(), WRITE_MS, 'load')
        } catch (error) {
          await replica.close().catch(() => undefined)
          if (error instanceof StorageError) return `load refused ${error.code}`
          throw error
        }
        try {
          // The device must still be able to write after loading what it could.
          replica.inner.transact(() => insertMemory(replica.inner, sampleMemory(setupRng(input.length, 'w'), 99, fx.device.deviceId)))
          await withTimeout(replica.whenFlushed(), WRITE_MS, 'a write after the load')
          const log = sealedLog(replica.outer).toArray()
          const last = parseEnvelope(log[log.length - 1])
          if (!last.ok) throw new PropertyViolation(`after the load the device sealed an envelope receivers refuse: ${last.reason}`)
        } finally {
          await replica.close()
        }
        return corrupt > 0 ? 'loaded, corrupt reported' : 'loaded'
      },
    }
  },
}
