/**
 * Every fuzz target of the campaign, in report order.
 *
 * @module
 */
import type { Target } from '../target.js'
import { checkpointTarget } from './checkpoint.js'
import { envelopeTarget } from './envelope.js'
import { exportTarget } from './export.js'
import { framesTarget } from './frames.js'
import { importTarget } from './import.js'
import { presenceTarget } from './presence.js'
import { relayTarget } from './relay.js'
import { replicaTarget } from './replica.js'
import { seqSetTarget } from './seq-set.js'
import { snapshotTarget } from './snapshot.js'
import { sqliteTarget } from './sqlite.js'
import { statementsTarget } from './statements.js'
import { storageTarget } from './storage.js'
import { tokenTarget } from './token.js'

/** All targets. */
export const TARGETS: readonly Target[] = [
  envelopeTarget,
  replicaTarget,
  snapshotTarget,
  seqSetTarget,
  statementsTarget,
  tokenTarget,
  framesTarget,
  relayTarget,
  presenceTarget,
  exportTarget,
  importTarget,
  checkpointTarget,
  storageTarget,
  sqliteTarget,
]

/** The target called `name`, or undefined. */
export function targetByName(name: string): Target | undefined {
  return TARGETS.find((t) => t.name === name)
}
