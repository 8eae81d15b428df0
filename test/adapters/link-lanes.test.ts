/**
 * Presence does not wait behind a large sync on the same channel (WIRE.md "Link frames", lanes):
 * a device that comes back with 500 KB the phone lacks sends it as one sync step 2 of ~2 700
 * packets at MTU 185 (about 20 s at 4 packets per 30 ms event); a presence change made meanwhile
 * travels in the priority lane, between the sync's packets. Asserted on the simulator's virtual time.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { linkServer } from '../../src/adapters/link-server.js'
import { linkTransport } from '../../src/adapters/link.js'
import { sameOuterState, sealedLog } from '../../src/adapters/transport-conformance.js'
import { bleLinkSimulator } from '../../src/testing/ble-link.js'

const SYNC_BYTES = 500 * 1024

describe('link lanes', () => {
  it('a presence update during a 500 KB initial sync reaches the phone within a bounded time', async () => {
    const sim = bleLinkSimulator({ seed: 21, mtu: 185, connectionIntervalMs: 30, packetsPerEvent: 4 })
    const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: 0 })
    const glasses = linkTransport({ clock: sim.clock, keepaliveMs: 0 })
    const doc = new Y.Doc()
    const awareness = new Awareness(doc)
    // 500 entries of 1 KiB, written while the link was down.
    for (let i = 0; i < SYNC_BYTES / 1024; i++) sealedLog(doc).push([new Uint8Array(1024).fill(i & 0xff)])
    glasses.attach({ roomId: 'big', doc, awareness })
    const link = sim.connect()
    hub.accept(link.central)
    glasses.connect(link.peripheral)
    // Let the sync get well under way.
    await sim.advance(3_000)
    const phone = hub.room('big')!
    expect(sealedLog(phone.doc).length).toBe(0)
    const setAt = sim.clock.now()
    let seenAt: number | undefined
    phone.awareness.on('update', ({ added, updated }: { added: number[]; updated: number[] }) => {
      if (seenAt === undefined && [...added, ...updated].includes(awareness.clientID) && phone.awareness.states.get(awareness.clientID)?.['where'] === 'kitchen') {
        seenAt = sim.clock.now()
      }
    })
    awareness.setLocalState({ where: 'kitchen' })
    await sim.advance(1_000)
    const presenceDelay = (seenAt ?? Number.POSITIVE_INFINITY) - setAt
    await sim.settle(120_000)
    const syncDone = sim.clock.now()
    expect(sameOuterState(doc, phone.doc)).toBe(true)
    // The sync took far longer than the presence update did.
    expect(syncDone - setAt).toBeGreaterThan(10_000)
    // Bound: the packets already in the channel's TX buffer (32, 8 events of 30 ms) plus one event.
    expect(presenceDelay).toBeLessThanOrEqual(300)
    glasses.close()
    hub.close()
    awareness.destroy()
  })
})
