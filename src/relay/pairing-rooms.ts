/**
 * Pairing rooms' own quota (README.md "The relay"; THREAT_MODEL.md, anyone who can reach the
 * relay): a pairing rendezvous room needs no token, so it cannot count against an account. It
 * counts against the source address that has connections in it instead — two devices pairing
 * behind one NAT share one room — and it lives at most `pairingRoomLifetimeMs`, so holding
 * pairing rooms open blocks nobody else's pairing.
 *
 * @module
 */

/** Which pairing rooms each source address has connections in. */
export class PairingRoomQuota {
  /** address → room id → connections of that address in the room. */
  private readonly rooms = new Map<string, Map<string, number>>()

  /** @param maxPerAddress pairing rooms one address may be in at once */
  constructor(private readonly maxPerAddress: number) {}

  /** Count a connection of `address` to pairing room `roomId`. False (nothing counted) when over the quota. */
  enter(address: string, roomId: string): boolean {
    let mine = this.rooms.get(address)
    const inRoom = mine?.get(roomId) ?? 0
    if (inRoom === 0 && (mine?.size ?? 0) >= this.maxPerAddress) return false
    if (!mine) this.rooms.set(address, (mine = new Map()))
    mine.set(roomId, inRoom + 1)
    return true
  }

  /** Stop counting a connection {@link enter} counted. */
  leave(address: string, roomId: string): void {
    const mine = this.rooms.get(address)
    const inRoom = mine?.get(roomId)
    if (!mine || inRoom === undefined) return
    if (inRoom > 1) mine.set(roomId, inRoom - 1)
    else mine.delete(roomId)
    if (mine.size === 0) this.rooms.delete(address)
  }
}
