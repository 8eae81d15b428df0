/**
 * The end cutoffs a device verified (`endcut/…` in the sealed registry, WIRE.md "Signed
 * statements" type 14), and the rule receivers apply with them: once an owner rotated a room at
 * the end of a member's temporary access, an envelope of that member under an older epoch counts
 * only when some owner's cutoff lists its seq — the same rule as a revocation's cutoffs
 * (THREAT_MODEL.md, a device whose temporary access ended).
 *
 * @module
 */
import type { EndCutoff } from '../crypto/index.js'

/** Registry key of an owner's end cutoff for one device in one room (one key per owner device, so concurrent owners each keep theirs). */
export function endCutoffKey(roomId: string, deviceId: string, ownerDeviceId: string): string {
  return `endcut/${roomId}/${deviceId}/${ownerDeviceId}`
}

/** Verified end cutoffs by room and device. */
export class EndCutoffs {
  private readonly byRoom = new Map<string, EndCutoff[]>()

  /** Record a verified cutoff found under `key`; false when the key does not name it (moved, or forged placement). */
  add(key: string, cutoff: EndCutoff): boolean {
    if (!key.startsWith(`endcut/${cutoff.roomId}/${cutoff.deviceId}/`)) return false
    const at = `${cutoff.roomId}/${cutoff.deviceId}`
    let all = this.byRoom.get(at)
    if (!all) this.byRoom.set(at, (all = []))
    all.push(cutoff)
    return true
  }

  /**
   * True when an envelope `seq` of `deviceId` under `epoch` in `roomId` must be refused: a cutoff
   * there starts a later epoch, and no cutoff covering that epoch lists the seq. Envelopes under
   * the rotation's epoch or later are not judged here (the device needs a new grant for those).
   */
  refuses(roomId: string, deviceId: string, seq: number, epoch: number): boolean {
    const all = this.byRoom.get(`${roomId}/${deviceId}`)
    if (!all) return false
    const covering = all.filter((c) => epoch < c.epoch)
    return covering.length > 0 && !covering.some((c) => c.seqs.has(seq))
  }
}
