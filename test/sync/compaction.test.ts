import { describe, expect, it } from 'vitest'
import { type ContextSync, memoryStorage } from '../../src/index.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import { converge, innerState, logContains, roomOf } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'
import * as Y from 'yjs'
import { parseEnvelope, EnvelopeType } from '../../src/crypto/index.js'
import { SNAPSHOT_PART_BYTES } from '../../src/sync/snapshot.js'

const THRESHOLD = 64

describe('compaction', () => {
  it('bounds the sealed log after 10k writes, and a fresh device loads it', async () => {
    const fleet = await loopbackDevices([], { seed: 2, converge: false })
    const { account, net } = fleet
    const sync = { compaction: { maxEntries: THRESHOLD, idleMs: 20 } }
    const phone = (await fleet.open('phone', memoryStorage(), { sync })).dev
    const pc = (await fleet.open('pc', memoryStorage(), { sync })).dev
    const writes: Array<Promise<unknown>> = []
    for (let i = 0; i < 10_000; i++) {
      // A mix of bursts and single writes from both devices.
      const dev = i % 3 === 0 ? pc : phone
      const p = dev.memory.remember({ text: `memory number ${i}`, tags: [`t${i % 7}`] })
      if (i % 50 === 0) await p
      else writes.push(p)
    }
    await Promise.all(writes)
    await converge([phone, pc], net)
    // Compaction runs once the writers are quiet (idleMs), then travels like any envelope.
    await new Promise((r) => setTimeout(r, 60))
    await converge([phone, pc], net)
    for (const dev of [phone, pc]) {
      expect(sealedLog(dev.replica('personal')!.outer).length).toBeLessThanOrEqual(THRESHOLD)
      expect(dev.memory.list().length).toBe(10_000)
    }
    expect(sealedLog(net.relayDoc(roomOf(account, 'personal'))!).length).toBeLessThanOrEqual(THRESHOLD)

    const fresh = (await fleet.open('glasses', memoryStorage(), { sync })).dev
    await converge([phone, pc, fresh], net)
    expect(fresh.memory.list().length).toBe(10_000)
    expect(innerState(fresh, ['personal'])).toEqual(innerState(phone, ['personal']))
    expect(fresh.rejectionCounts()).toEqual({})
  }, 120_000)

  it('seals a state larger than one part as several snapshot envelopes that rebuild it, with no erasure alarm', async () => {
    const fleet = await loopbackDevices([], { seed: 5, converge: false })
    const { account, net } = fleet
    const sync = { compaction: { maxEntries: 16, idleMs: 20 } }
    const phone = (await fleet.open('phone', memoryStorage(), { sync })).dev
    const pc = (await fleet.open('pc', memoryStorage(), { sync })).dev
    // ~3 MiB of inner state: a snapshot of it in one envelope would pass the 1 MiB frame budget.
    for (let done = 0; done < 9000; done += 300) {
      await Promise.all(Array.from({ length: 300 }, (_, i) => phone.memory.remember({ text: `part memory ${done + i} `.padEnd(300, 'x') })))
    }
    await converge([phone, pc], net)
    await new Promise((r) => setTimeout(r, 100))
    await converge([phone, pc], net)
    const snapshots = sealedLog(net.relayDoc(roomOf(account, 'personal'))!)
      .toArray()
      .filter((bytes) => {
        const parsed = parseEnvelope(bytes)
        return parsed.ok && parsed.value.type === EnvelopeType.Snapshot
      })
    expect(snapshots.length).toBeGreaterThan(2)
    for (const bytes of snapshots) expect(bytes.length).toBeLessThan(SNAPSHOT_PART_BYTES + 64 * 1024)
    expect(pc.memory.list().length).toBe(9000)
    // The compaction deleted entries the pc applied; the parts together hold them: no alarm.
    expect(pc.rejectionCounts()).toEqual({})
    expect(phone.rejectionCounts()).toEqual({})

    // A new device built from the parts alone has everything.
    const fresh = (await fleet.open('glasses', memoryStorage(), { sync })).dev
    await converge([phone, pc, fresh], net)
    expect(fresh.memory.list().length).toBe(9000)
    expect(innerState(fresh, ['personal'])).toEqual(innerState(phone, ['personal']))
    expect(fresh.rejectionCounts()).toEqual({})
  }, 120_000)

  it('waits for a quiet moment, unless the log reaches four times the threshold', async () => {
    const fleet = await loopbackDevices([], { seed: 3, converge: false })
    const idleMs = 150
    const sync = { compaction: { maxEntries: 16, idleMs } }
    const phone = (await fleet.open('phone', memoryStorage(), { sync })).dev
    const log = sealedLog(phone.replica('personal')!.outer)
    const compactions: number[] = []
    phone.replica('personal')!.events.on('compacted', () => compactions.push(log.length))
    // 40 awaited single writes: due after 17, but the writer never pauses for idleMs.
    for (let i = 0; i < 40; i++) await phone.memory.remember({ text: `single ${i}` })
    expect(compactions).toEqual([])
    expect(log.length).toBeGreaterThan(16)
    await new Promise((r) => setTimeout(r, idleMs + 100))
    expect(compactions.length).toBe(1)
    expect(log.length).toBe(1)
    // Without pauses the log is still bounded: inline compaction past 4 × maxEntries.
    for (let i = 0; i < 100; i++) await phone.memory.remember({ text: `sustained ${i}` })
    expect(compactions.length).toBeGreaterThanOrEqual(2)
    expect(log.length).toBeLessThanOrEqual(4 * 16 + 1)
    expect(phone.memory.list().length).toBe(140)
  })

  it('forget leaves no trace in any sealed log, store or the relay copy', async () => {
    const fleet = await loopbackDevices(['phone', 'pc', 'car'], { seed: 4, converge: false })
    const { account, net } = fleet
    const devices = fleet.devs
    const [phone, pc, car] = devices.map((d) => d.dev) as [ContextSync, ContextSync, ContextSync]
    const marker = 'FORGET-ME-4c1d'
    const keep = await phone.memory.remember({ text: 'keep this one' })
    const m = await phone.memory.remember({ text: `${marker} original`, tags: ['secret'] })
    await converge([phone, pc, car], net)
    await pc.memory.update(m.id, { text: `${marker} edited on the pc` })
    await converge([phone, pc, car], net)
    expect(logContains(car.replica('personal')!.outer, account, 'personal', marker)).toBe(true)

    await car.memory.forget(m.id)
    await converge([phone, pc, car], net)
    for (const dev of [phone, pc, car]) {
      expect(dev.memory.get(m.id)).toBeUndefined()
      expect(dev.memory.get(keep.id)?.text).toBe('keep this one')
      expect(logContains(dev.replica('personal')!.outer, account, 'personal', marker), dev.kind).toBe(false)
    }
    expect(logContains(net.relayDoc(roomOf(account, 'personal'))!, account, 'personal', marker)).toBe(false)
    // What each device stored on disk also decrypts to no trace of it.
    for (const { storage, dev } of devices) {
      const stored = new Y.Doc()
      for (const chunk of await storage.loadRange(['replica', roomOf(account, 'personal'), 'log'])) Y.applyUpdate(stored, chunk.data)
      expect(sealedLog(stored).length).toBeGreaterThan(0)
      expect(logContains(stored, account, 'personal', marker), `${dev.kind} storage`).toBe(false)
    }
  })
})
