/**
 * `Replica` on its own (src/sync/replica.ts and its parts): what the facade relies on from one
 * scope's replica — local writes sealed once and durably, remote envelopes applied and never
 * sealed again, replays and tampering refused with their codes, unknown senders held until the
 * directory vouches for them, deletions by others changing nothing here (before or after a
 * restart), seqs never reused after a restart, and compaction replacing entries by a snapshot.
 */
import * as Y from 'yjs'
import { beforeAll, describe, expect, it } from 'vitest'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import { EnvelopeType, parseEnvelope, ready, RejectCode } from '../../src/crypto/index.js'
import type { ReplicaOptions } from '../../src/sync/replica.js'
import { carry, note, replicaWorld, write, type ReplicaWorld } from './fixture.js'

beforeAll(() => ready())

/** A phone and a PC replica of one account; the phone has written `seat: aisle` and stored it. */
async function phoneWrote(world: ReplicaWorld, pcOptions: Partial<ReplicaOptions> = {}) {
  const phone = await world.open(world.phone)
  const pc = await world.open(world.pc, pcOptions)
  write(phone.replica, 'seat', 'aisle')
  await phone.replica.whenFlushed()
  return { phone, pc }
}

/** The parsed envelopes in a replica's log. */
function envelopes(log: Y.Array<Uint8Array>): Array<{ senderId: string; seq: number; type: number }> {
  return log.toArray().map((bytes) => {
    const parsed = parseEnvelope(bytes)
    if (!parsed.ok) throw new TypeError(`unparsable entry in the log: ${parsed.reason}`)
    return { senderId: parsed.value.senderId, seq: parsed.value.seq, type: parsed.value.type }
  })
}

describe('Replica, outgoing', () => {
  it('seals a synchronous burst of local changes as one envelope with the next seq, once stored', async () => {
    const world = replicaWorld()
    const { replica, storage } = await world.open(world.phone)
    const sealed: number[] = []
    replica.events.on('sealed', (e) => sealed.push(e.seq))
    for (let i = 0; i < 50; i++) write(replica, `k${i}`, `v${i}`)
    await replica.whenFlushed()
    expect(envelopes(sealedLog(replica.outer))).toEqual([{ senderId: world.phone.deviceId, seq: 1, type: EnvelopeType.Update }])
    expect(sealed).toEqual([1])
    expect(replica.latestOwnSeq()).toBe(1)
    // The seq block was reserved in the store before the envelope used it.
    expect(await storage.load(['replica', world.roomId, 'meta'])).toBeInstanceOf(Uint8Array)
    write(replica, 'k50', 'v50')
    await replica.whenFlushed()
    expect(envelopes(sealedLog(replica.outer)).map((e) => e.seq)).toEqual([1, 2])
  })

  it('a read-only replica refuses to seal a local write (NotGranted) and its log stays empty', async () => {
    const world = replicaWorld()
    const { replica, rejected } = await world.open(undefined)
    expect(replica.writable).toBe(false)
    write(replica, 'k', 'v')
    await replica.whenFlushed()
    expect(sealedLog(replica.outer).length).toBe(0)
    expect(rejected.map((e) => e.code)).toEqual([RejectCode.NotGranted])
  })

  it('never reuses a seq after a restart from the same store', async () => {
    const world = replicaWorld()
    const first = await world.open(world.phone)
    write(first.replica, 'a', '1')
    await first.replica.whenFlushed()
    await first.replica.close()
    const again = await world.open(world.phone, { storage: first.storage })
    expect(note(again.replica, 'a')).toBe('1')
    write(again.replica, 'b', '2')
    await again.replica.whenFlushed()
    const seqs = envelopes(sealedLog(again.replica.outer)).map((e) => e.seq)
    expect(new Set(seqs).size).toBe(seqs.length)
    expect(Math.max(...seqs)).toBeGreaterThan(1)
  })
})

describe('Replica, incoming', () => {
  it('applies a peer envelope to the inner doc, records its seq, and does not seal it again', async () => {
    const world = replicaWorld()
    const { phone, pc } = await phoneWrote(world)
    carry(phone.replica, pc.replica)
    await pc.replica.whenFlushed()
    expect(note(pc.replica, 'seat')).toBe('aisle')
    expect(pc.replica.hasApplied(world.phone.deviceId, 1)).toBe(true)
    expect(pc.replica.latestOwnSeq()).toBe(0)
    expect(sealedLog(pc.replica.outer).length).toBe(1)
    expect(pc.rejected).toEqual([])
  })

  it('refuses a re-delivered copy of an applied envelope as a replay (10)', async () => {
    const world = replicaWorld()
    const { phone, pc } = await phoneWrote(world)
    carry(phone.replica, pc.replica)
    const copy = sealedLog(pc.replica.outer).get(0).slice()
    Y.transact(pc.replica.outer, () => sealedLog(pc.replica.outer).push([copy]), 'relay')
    expect(pc.rejected.map((e) => e.code)).toEqual([RejectCode.Replay])
  })

  it('refuses a tampered envelope and leaves the inner doc as it was', async () => {
    const world = replicaWorld()
    const { phone, pc } = await phoneWrote(world)
    const bytes = sealedLog(phone.replica.outer).get(0).slice()
    bytes[bytes.length - 1]! ^= 0x01
    Y.transact(pc.replica.outer, () => sealedLog(pc.replica.outer).push([bytes]), 'relay')
    expect(note(pc.replica, 'seat')).toBeUndefined()
    expect(pc.rejected).toHaveLength(1)
    expect([RejectCode.BadSignature, RejectCode.Malformed]).toContain(pc.rejected[0]!.code)
  })

  it('holds an envelope of an unknown sender and applies it once the directory knows the sender', async () => {
    const world = replicaWorld()
    const known = world.senders.get(world.phone.deviceId)!
    world.senders.delete(world.phone.deviceId)
    const { phone, pc } = await phoneWrote(world)
    carry(phone.replica, pc.replica)
    expect(pc.held.map((e) => e.code)).toEqual([RejectCode.UnknownSender])
    expect(pc.replica.heldCount).toBe(1)
    expect(note(pc.replica, 'seat')).toBeUndefined()
    world.senders.set(world.phone.deviceId, known)
    pc.replica.retryHeld()
    expect(pc.replica.heldCount).toBe(0)
    expect(note(pc.replica, 'seat')).toBe('aisle')
  })

  it('refuses an envelope of a revoked sender (4)', async () => {
    const world = replicaWorld()
    const { phone, pc } = await phoneWrote(world)
    world.senders.set(world.phone.deviceId, { status: 'revoked' })
    carry(phone.replica, pc.replica)
    expect(pc.rejected.map((e) => e.code)).toEqual([RejectCode.RevokedSender])
    expect(note(pc.replica, 'seat')).toBeUndefined()
  })
})

describe('Replica, local authority', () => {
  it('keeps what it applied when someone deletes the log, also after a restart, and reports the erasure (14)', async () => {
    const world = replicaWorld()
    const { phone, pc } = await phoneWrote(world, { repairDelayMs: 20 })
    carry(phone.replica, pc.replica)
    const log = sealedLog(pc.replica.outer)
    Y.transact(pc.replica.outer, () => log.delete(0, log.length), 'relay')
    expect(note(pc.replica, 'seat')).toBe('aisle')
    await expect.poll(() => pc.rejected.some((e) => e.code === RejectCode.Erased), { timeout: 5_000 }).toBe(true)
    await expect.poll(() => pc.replica.maintenancePending, { timeout: 5_000 }).toBe(false)
    await pc.replica.close()
    const reopened = await world.open(world.pc, { storage: pc.storage })
    expect(note(reopened.replica, 'seat')).toBe('aisle')
    expect(reopened.replica.hasApplied(world.phone.deviceId, 1)).toBe(true)
  })
})

describe('Replica, compaction', () => {
  it('replaces the entries it applied by one snapshot once the log passes maxEntries', async () => {
    const world = replicaWorld()
    const { replica } = await world.open(world.phone, { compaction: { maxEntries: 4, idleMs: 0 } })
    const compacted: number[] = []
    replica.events.on('compacted', (e) => compacted.push(e.removed))
    for (let i = 0; i < 6; i++) {
      write(replica, `k${i}`, `v${i}`)
      await replica.whenFlushed()
    }
    await expect.poll(() => compacted.length, { timeout: 5_000 }).toBeGreaterThan(0)
    const entries = envelopes(sealedLog(replica.outer))
    expect(entries.length).toBeLessThanOrEqual(4)
    expect(entries.some((e) => e.type === EnvelopeType.Snapshot)).toBe(true)
    // A peer that joins later gets everything from the snapshot alone.
    const pc = await world.open(world.pc)
    carry(replica, pc.replica)
    for (let i = 0; i < 6; i++) expect(note(pc.replica, `k${i}`)).toBe(`v${i}`)
  })
})
