/**
 * Envelopes through a real `Replica` (src/sync/replica.ts) — the receive path every sealed-log
 * entry takes on a device: pushed into the sealed log as a peer's Yjs insert would be, checked
 * (WIRE.md "Envelope v1", receivers' order of checks), held or refused through the replica's
 * `held` / `rejected` events with a RejectCode, or applied to the inner doc. Nothing may throw
 * out of the push. Mutated updates and snapshots are sealed again with the sender's keys, so they
 * reach the payload checks and Yjs.
 *
 * A fresh replica every {@link INPUTS_PER_REPLICA} inputs keeps the inner doc and the seq sets
 * small; between replicas the event loop runs, so sweeps and hold timers fire (an exception there
 * kills the worker, and the campaign reports the input it was running).
 *
 * @module
 */
import * as Y from 'yjs'
import { memoryStorage } from '../../../src/adapters/memory-storage.js'
import { sealedLog } from '../../../src/crdt/sealed-log.js'
import { Replica, type RejectedEvent, type SenderDirectory } from '../../../src/sync/replica.js'
import { fixture } from '../fixture.js'
import { setupRng } from '../rng.js'
import { expectThat, isRejectCode, refusedLabel, type Target } from '../target.js'
import { envelopeSamples, generateEnvelope } from './envelopes.js'

const INPUTS_PER_REPLICA = 200

export const replicaTarget: Target = {
  name: 'replica',
  description: 'envelopes pushed into the sealed log of a real Replica; refusals via its rejected/held events',
  weight: 6,
  async setup(seed) {
    const fx = fixture(seed)
    const samples = envelopeSamples(setupRng(seed, 'replica'), fx)
    const directory: SenderDirectory = {
      resolve(senderId) {
        if (senderId === fx.device.deviceId) return { status: 'known', signPublicKey: fx.device.signPublicKey }
        if (senderId === fx.member.deviceId) return { status: 'known', signPublicKey: fx.member.signPublicKey }
        if (senderId === fx.revoked.deviceId) return { status: 'revoked' }
        return { status: 'unknown' }
      },
      revoked: (senderId) => senderId === fx.revoked.deviceId,
    }
    let events: Array<{ kind: 'rejected' | 'held'; event: RejectedEvent }> = []
    let storageErrors = 0
    const open = async (): Promise<Replica> => {
      const replica = new Replica({
        scope: 'personal',
        roomId: fx.roomId,
        keyring: fx.keyring,
        directory,
        storage: memoryStorage(),
        atRestKey: fx.atRestKey,
        // A writable replica, as on every device that holds the scope: the checks that only a
        // sealer makes (deleted content in a snapshot, own envelopes copied back) run too.
        signer: { sender: fx.device.deviceIdBytes, senderId: fx.device.deviceId, signSecretKey: fx.device.signSecretKey },
        hold: { timeoutMs: 50 },
        repairDelayMs: 20,
      })
      replica.events.on('rejected', (event) => events.push({ kind: 'rejected', event }))
      replica.events.on('held', (event) => events.push({ kind: 'held', event }))
      replica.events.on('storage-error', () => storageErrors++)
      await replica.load()
      return replica
    }
    let replica = await open()
    let inputs = 0
    const peer = Symbol('fuzz peer')
    return {
      generate: (gen) => generateEnvelope(gen, fx, samples),
      async run(input) {
        if (++inputs % INPUTS_PER_REPLICA === 0) {
          await replica.close()
          // Let sweeps, repairs and hold timers of the old replica run before the next one.
          await new Promise((resolve) => setTimeout(resolve, 1))
          expectThat(storageErrors === 0, `${storageErrors} storage errors on a memory store`)
          replica = await open()
        }
        events = []
        Y.transact(replica.outer, () => sealedLog(replica.outer).push([input]), peer)
        const last = events[events.length - 1]
        if (!last) return 'applied (or redundant)'
        for (const { event } of events) {
          expectThat(isRejectCode(event.code), `replica ${last.kind} with unknown code ${String(event.code)}`)
          expectThat(typeof event.reason === 'string' && event.reason.length > 0, 'replica event without a reason')
        }
        return `${last.kind === 'held' ? 'held' : 'refused'} ${refusedLabel(last.event.code).slice('refused '.length)}`
      },
      close: () => replica.close(),
    }
  },
}
