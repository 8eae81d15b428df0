/**
 * End cutoffs (WIRE.md "Signed statements", type 14): when a member's temporary access ends (its
 * term, or its temporary grant of one scope), the owner that rotates the room without it states —
 * as a revocation does — exactly which seqs of the device it had applied there. Receivers accept
 * an envelope of the device under an epoch older than the rotation only when its seq is listed,
 * so whatever the device seals with the old key after its end is refused everywhere instead of
 * counting until the epoch's grace window passes (THREAT_MODEL.md, a device whose temporary access
 * ended).
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { SeqSet } from '../sync/seq-set.js'
import { fromHex, toHex } from '../util/bytes.js'
import { ValidationError } from '../errors.js'
import type { Checked } from './codes.js'
import { MAX_CUTOFF_RANGES } from './grants.js'
import { ID_BYTES, type AccountKeys } from './keys.js'
import { signTypedStatement, StatementBoundError, StatementType, verifyTypedStatement } from './statement.js'

/** What of an ended device stays valid in one room. */
export interface EndCutoff {
  deviceId: string
  roomId: string
  /** The end that passed (ms): the term's or the temporary grant's `until`. */
  endedAt: number
  /** The key epoch the owner's rotation at the end starts; the device's envelopes must be older. */
  epoch: number
  /** Exactly the device's seqs the rotating owner had applied in the room. */
  seqs: SeqSet
}

/** Sign an end cutoff (owner only). */
export function signEndCutoff(account: AccountKeys, value: EndCutoff): Uint8Array {
  const id = fromHex(value.deviceId)
  if (!id || id.length !== ID_BYTES) throw new ValidationError(`not a device id: ${value.deviceId}`)
  return signTypedStatement(account, StatementType.EndCutoff, (enc) => {
    encoding.writeUint8Array(enc, id)
    encoding.writeVarString(enc, value.roomId)
    encoding.writeVarUint(enc, value.endedAt)
    encoding.writeVarUint(enc, value.epoch)
    value.seqs.encode(enc)
  })
}

/** Verify an end cutoff (type 14). Never throws. */
export function verifyEndCutoff(account: AccountKeys, bytes: Uint8Array): Checked<EndCutoff> {
  return verifyTypedStatement(account, bytes, StatementType.EndCutoff, (dec) => {
    const deviceId = toHex(decoding.readUint8Array(dec, ID_BYTES))
    const roomId = decoding.readVarString(dec)
    const endedAt = decoding.readVarUint(dec)
    const epoch = decoding.readVarUint(dec)
    // Bounded before decoding: the range count leads the seq set.
    const ranges = decoding.peekVarUint(dec)
    if (ranges > MAX_CUTOFF_RANGES) throw new StatementBoundError(`end cutoff lists ${ranges} seq ranges, more than ${MAX_CUTOFF_RANGES}`)
    return { deviceId, roomId, endedAt, epoch, seqs: SeqSet.decode(dec) }
  })
}
