/**
 * Genuine envelopes (WIRE.md "Envelope v1") sealed with the library's own `sealEnvelope` and the
 * campaign's keys, and the generator shared by the targets that read envelopes: the wire bytes
 * mutated as they are (the signature then fails, but the parser sees everything), the signed part
 * mutated and signed again with the sender's key (so the header reaches the AEAD), or the
 * plaintext mutated and sealed again (so updates, snapshots and presence payloads reach their
 * decoders).
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { EnvelopeType, sealEnvelope, type DeviceKeys } from '../../../src/crypto/index.js'
import { signDetached } from '../../../src/crypto/primitives.js'
import { insertMemory } from '../../../src/crdt/memory.js'
import { encodePresence } from '../../../src/sync/presence.js'
import { SeqSet } from '../../../src/sync/seq-set.js'
import { encodeSnapshot } from '../../../src/sync/snapshot.js'
import type { Fixture } from '../fixture.js'
import { HUGE_VALUES, mutate, randomInput } from '../mutators.js'
import { chance, int, pick, weighted, type Rng } from '../rng.js'
import { craftedSnapshot, innerState, sampleMemory } from './crafted.js'

/** WIRE.md "Envelope v1": the signature's domain string. */
const SIGNATURE_DOMAIN = 'contextsync/v1/envelope-signature'

/** One genuine envelope and what it was sealed from. */
export interface EnvelopeSample {
  type: EnvelopeType
  plaintext: Uint8Array
  bytes: Uint8Array
}

/** Plaintexts of each envelope type: inner-doc updates, snapshots, presence payloads. */
export function plaintexts(gen: Rng, fx: Fixture): Array<{ type: EnvelopeType; plaintext: Uint8Array }> {
  const out: Array<{ type: EnvelopeType; plaintext: Uint8Array }> = []
  const doc = new Y.Doc()
  doc.clientID = 4242
  const updates: Uint8Array[] = []
  doc.on('update', (u: Uint8Array) => updates.push(u))
  for (let i = 0; i < 4; i++) insertMemory(doc, sampleMemory(gen, i, fx.device.deviceId))
  doc.getMap('memories').delete(doc.getMap('memories').keys().next().value as string)
  for (const u of updates) out.push({ type: EnvelopeType.Update, plaintext: u })
  const state = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  for (let i = 0; i < 4; i++) {
    const coverage = new Map<string, SeqSet>()
    coverage.set(fx.device.deviceId, SeqSet.fromRanges([[1, 3 + i], [10, 12], [40 + i, 90]]))
    if (i > 0) coverage.set(fx.member.deviceId, SeqSet.fromRanges([[2, 2]]))
    if (i > 2) coverage.set('0'.repeat(32), SeqSet.fromRanges([[1, 1000]]))
    out.push({ type: EnvelopeType.Snapshot, plaintext: encodeSnapshot({ coverage, state: i === 0 ? state : innerState(gen) }) })
  }
  out.push({ type: EnvelopeType.Presence, plaintext: encodePresence({ at: 1_700_000_000_000, activity: 'driving', activeSessionId: 's1', logSeq: 12, tip: { client: 4242, clock: 30 } }) })
  out.push({ type: EnvelopeType.Presence, plaintext: encodePresence({ at: 5 }) })
  return out
}

/** Seal with the fixture's room, the device's key and epoch 0 (unless told otherwise). */
export function seal(fx: Fixture, type: number, plaintext: Uint8Array, options: { seq?: number; epoch?: number; sender?: DeviceKeys; key?: Uint8Array } = {}): Uint8Array {
  const sender = options.sender ?? fx.device
  return sealEnvelope({
    roomId: fx.roomId,
    type: type as EnvelopeType,
    epoch: options.epoch ?? 0,
    seq: options.seq ?? 1,
    sender: sender.deviceIdBytes,
    signSecretKey: sender.signSecretKey,
    key: options.key ?? fx.key,
    plaintext,
  })
}

/** The genuine envelopes of a campaign: every plaintext sealed once, under a few seqs. */
export function envelopeSamples(gen: Rng, fx: Fixture): EnvelopeSample[] {
  return plaintexts(gen, fx).map(({ type, plaintext }, i) => ({ type, plaintext, bytes: seal(fx, type, plaintext, { seq: i + 1 }) }))
}

/** Sign `unsigned` envelope bytes as `sender` in the fixture's room (WIRE.md: signature over varstring roomId ‖ bytes). */
export function resign(fx: Fixture, unsigned: Uint8Array, sender: DeviceKeys = fx.device): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeVarString(enc, fx.roomId)
  encoding.writeUint8Array(enc, unsigned)
  const signature = signDetached(SIGNATURE_DOMAIN, encoding.toUint8Array(enc), sender.signSecretKey)
  const out = new Uint8Array(unsigned.length + signature.length)
  out.set(unsigned)
  out.set(signature, unsigned.length)
  return out
}

/** A seq: mostly small and plausible, sometimes 0, at 2^53 or past it (sealEnvelope writes whatever it is given). */
function seq(gen: Rng): number {
  return weighted<number>(gen, [
    [8, int(gen, 1, 400)],
    [1, 0],
    [1, pick(gen, HUGE_VALUES)],
  ])
}

/** One envelope input from the genuine samples (see the module docs for the layers). */
export function generateEnvelope(gen: Rng, fx: Fixture, samples: readonly EnvelopeSample[], only?: EnvelopeType): Uint8Array {
  const pool = samples.filter((s) => only === undefined || s.type === only)
  const sample = pick(gen, pool)
  const wires = pool.map((s) => s.bytes)
  const layer = weighted<string>(gen, [
    [4, 'wire'],
    [3, 'resign'],
    [5, 'reseal'],
    [1, 'random'],
  ])
  if (layer === 'wire') return mutate(gen, sample.bytes, wires)
  if (layer === 'random') return randomInput(gen, [1])
  if (layer === 'resign') {
    const unsigned = mutate(gen, sample.bytes.subarray(0, sample.bytes.length - 64), wires)
    return resign(fx, unsigned, chance(gen, 0.9) ? fx.device : fx.member)
  }
  // Reseal: a mutated (or crafted) plaintext, sealed properly, sometimes with odd header fields.
  const plaintext =
    sample.type === EnvelopeType.Snapshot && chance(gen, 0.3)
      ? craftedSnapshot(gen)
      : chance(gen, 0.9)
        ? mutate(gen, sample.plaintext, pool.map((s) => s.plaintext))
        : sample.plaintext
  const type = chance(gen, 0.95) ? sample.type : int(gen, 0, 255)
  const epoch = chance(gen, 0.9) ? 0 : pick(gen, [1, 2, 2 ** 31, Number.MAX_SAFE_INTEGER])
  const sender = weighted<DeviceKeys>(gen, [
    [12, fx.device],
    [1, fx.member],
    [1, fx.revoked],
  ])
  return seal(fx, type, plaintext, { seq: seq(gen), epoch, sender, key: chance(gen, 0.97) ? fx.key : fx.otherKey })
}
