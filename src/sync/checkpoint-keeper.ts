/**
 * The replica's side of its checkpoint (the format is `checkpoint.ts`): at load, restore the
 * newest checkpoint that opens — the inner doc, the seqs applied and the facts the parts keep —
 * and before each store rewrite, seal the checkpoint as it stands now. This is what makes the
 * device's store the authority on what it applied, whatever the shared log holds later.
 *
 * @module
 */
import * as Y from 'yjs'
import { StorageError } from '../adapters/storage.js'
import { openCheckpoint, sealCheckpoint, type Checkpoint } from './checkpoint.js'
import type { ReplicaCore } from './replica-core.js'
import type { Sealer } from './sealer.js'

/** Restores and seals one replica's checkpoint. */
export class CheckpointKeeper {
  /** Bytes the replica's owner keeps with every checkpoint (see `Replica.keepWithCheckpoint`). */
  extra: (() => Uint8Array) | undefined
  /** What the restored checkpoint kept for the owner; `undefined` when nothing. */
  restoredExtra: Uint8Array | undefined

  constructor(
    private readonly core: ReplicaCore,
    private readonly sealer: Sealer,
  ) {}

  /** Restore the newest checkpoint that opens; a corrupt one is reported and the next tried. */
  restore(sealedCheckpoints: Uint8Array[]): void {
    const core = this.core
    const { atRestKey } = core.options
    for (const sealed of sealedCheckpoints) {
      const checkpoint = openCheckpoint(atRestKey, core.roomId, sealed)
      if (!checkpoint) {
        core.storageError(new StorageError('corrupt', `the checkpoint of room ${core.roomId} does not open; using an older one or the sealed log`))
        continue
      }
      try {
        Y.applyUpdate(core.inner, checkpoint.state, core.remoteOrigin)
      } catch {
        core.storageError(new StorageError('corrupt', `the checkpoint state of room ${core.roomId} does not apply`))
        continue
      }
      core.ledger.restore(checkpoint.applied, checkpoint.claims)
      core.repairDue = checkpoint.repairDue
      core.unsealedRestored = checkpoint.unsealed
      core.sealedEpoch = checkpoint.sealedEpoch
      core.tip = { ...checkpoint.tip, seq: 0 }
      core.erasureSeq = checkpoint.erasureSeq
      if (checkpoint.extra.length > 0) this.restoredExtra = checkpoint.extra
      return
    }
  }

  /** The checkpoint as it stands now, sealed at rest (called by the store before each rewrite). */
  seal(): Uint8Array {
    const core = this.core
    // Seal what is queued first, when possible, so the checkpoint holds no change the log lacks.
    this.sealer.flushIfReady()
    const checkpoint: Checkpoint = {
      applied: core.ledger.applied,
      claims: core.ledger.claims,
      state: Y.encodeStateAsUpdate(core.inner),
      repairDue: core.repairDue,
      unsealed: core.unsealedRestored || this.sealer.queued > 0,
      sealedEpoch: core.sealedEpoch,
      tip: { client: core.tip.client, clock: core.tip.clock },
      erasureSeq: core.erasureSeq,
      extra: this.extra?.() ?? new Uint8Array(0),
    }
    return sealCheckpoint(core.options.atRestKey, core.roomId, checkpoint)
  }
}
