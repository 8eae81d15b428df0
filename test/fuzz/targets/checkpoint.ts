/**
 * Replica checkpoints (WIRE.md "Replica checkpoint") through `openCheckpoint`
 * (src/sync/checkpoint.ts): `undefined` for anything that does not open or parse — reported by
 * the replica as a `storage-error` (`corrupt`) — and never an exception. Sealed bytes are mutated
 * as stored (the AEAD refuses them), and checkpoint plaintexts are mutated and sealed again under
 * the device's at-rest key, so the decoder sees them: seq maps with huge sender and range counts,
 * truncated states, trailing bytes.
 *
 * @module
 */
import * as encoding from 'lib0/encoding'
import { sealAtRest } from '../../../src/crypto/at-rest.js'
import { openCheckpoint, sealCheckpoint, type Checkpoint } from '../../../src/sync/checkpoint.js'
import { SeqSet } from '../../../src/sync/seq-set.js'
import { fixture } from '../fixture.js'
import { HUGE_VALUES, mutate, randomInput } from '../mutators.js'
import { bytes, chance, int, pick, setupRng, weighted, type Rng } from '../rng.js'
import { expectThat, type Target } from '../target.js'
import { innerState, writeCraftedSeqSet } from './crafted.js'

/** The checkpoint plaintext as `sealCheckpoint` lays it out (WIRE.md "Replica checkpoint"). */
function plaintext(checkpoint: Checkpoint): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, 1)
  encoding.writeUint8(enc, (checkpoint.repairDue ? 1 : 0) | (checkpoint.unsealed ? 2 : 0))
  encoding.writeVarUint(enc, checkpoint.sealedEpoch)
  encoding.writeVarUint(enc, checkpoint.tip.client)
  encoding.writeVarUint(enc, checkpoint.tip.clock)
  encoding.writeVarUint(enc, checkpoint.erasureSeq)
  for (const map of [checkpoint.applied, checkpoint.claims]) {
    encoding.writeVarUint(enc, map.size)
    for (const [sender, seqs] of map) {
      encoding.writeUint8Array(enc, Uint8Array.from(sender.match(/../g)!.map((h) => parseInt(h, 16))))
      seqs.encode(enc)
    }
  }
  encoding.writeVarUint8Array(enc, checkpoint.state)
  encoding.writeVarUint8Array(enc, checkpoint.extra)
  return encoding.toUint8Array(enc)
}

/** A checkpoint plaintext with crafted seq maps: sender counts and range counts at or past any bound. */
function craftedPlaintext(gen: Rng): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, 1)
  encoding.writeUint8(enc, int(gen, 0, 255))
  for (let i = 0; i < 4; i++) encoding.writeVarUint(enc, chance(gen, 0.7) ? int(gen, 0, 1000) : pick(gen, HUGE_VALUES))
  for (let m = 0; m < 2; m++) {
    const claimed = chance(gen, 0.6) ? int(gen, 0, 4) : pick(gen, HUGE_VALUES)
    encoding.writeVarUint(enc, claimed)
    const written = Math.min(claimed, int(gen, 0, 4))
    for (let i = 0; i < written; i++) {
      encoding.writeUint8Array(enc, bytes(gen, 16))
      writeCraftedSeqSet(gen, enc)
    }
  }
  const state = innerState(gen)
  encoding.writeVarUint(enc, chance(gen, 0.9) ? state.length : pick(gen, HUGE_VALUES))
  encoding.writeUint8Array(enc, state)
  encoding.writeVarUint8Array(enc, chance(gen, 0.5) ? new Uint8Array(0) : bytes(gen, int(gen, 1, 40)))
  return encoding.toUint8Array(enc)
}

export const checkpointTarget: Target = {
  name: 'checkpoint',
  description: 'openCheckpoint on sealed replica checkpoints (src/sync/checkpoint.ts)',
  weight: 6,
  async setup(seed) {
    const fx = fixture(seed)
    const gen0 = setupRng(seed, 'checkpoint')
    const checkpoints: Checkpoint[] = Array.from({ length: 4 }, (_, i) => ({
      applied: new Map([
        [fx.device.deviceId, SeqSet.fromRanges([[1, 10 + i], [20, 30]])],
        [fx.member.deviceId, SeqSet.fromRanges([[5, 5]])],
      ]),
      claims: new Map(i % 2 === 0 ? [[fx.member.deviceId, SeqSet.fromRanges([[1, 9]])]] : []),
      state: innerState(gen0),
      repairDue: i === 1,
      unsealed: i === 2,
      sealedEpoch: i,
      tip: { client: 4242, clock: 17 + i },
      erasureSeq: i,
      extra: i === 3 ? Uint8Array.of(1, 0) : new Uint8Array(0),
    }))
    const plains = checkpoints.map(plaintext)
    const sealed = checkpoints.map((c) => sealCheckpoint(fx.atRestKey, fx.roomId, c))
    const reseal = (bytes: Uint8Array) => sealAtRest(fx.atRestKey, 'checkpoint', fx.roomId, bytes)
    return {
      generate(gen) {
        return weighted<() => Uint8Array>(gen, [
          [2, () => mutate(gen, pick(gen, sealed), sealed)],
          [6, () => reseal(mutate(gen, pick(gen, plains), plains))],
          [2, () => reseal(craftedPlaintext(gen))],
          [1, () => (chance(gen, 0.5) ? randomInput(gen, [1]) : reseal(randomInput(gen, [1])))],
        ])()
      },
      run(input) {
        const checkpoint = openCheckpoint(fx.atRestKey, fx.roomId, input)
        if (checkpoint === undefined) return 'refused corrupt'
        for (const map of [checkpoint.applied, checkpoint.claims]) {
          for (const [sender, seqs] of map) expectThat(/^[0-9a-f]{32}$/.test(sender) && seqs.max() <= Number.MAX_SAFE_INTEGER, 'opened a checkpoint with an odd seq map')
        }
        expectThat(checkpoint.state instanceof Uint8Array && checkpoint.extra instanceof Uint8Array, 'opened a checkpoint without state bytes')
        return 'accepted'
      },
    }
  },
}
