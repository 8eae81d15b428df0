/**
 * Local authority on the loopback hub: a relay deleting, wiping or replaying sealed-log entries
 * (plain Yjs operations on its copy of a room, which every device then receives) changes nothing
 * a device has applied — running or after a restart from its store — and is reported and repaired.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ContextSync, createAccount, memoryStorage, RejectCode, type LoopbackNetwork, type RejectedEvent, type StorageAdapter } from '../../src/index.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import { createDeviceKeys, decodeDeviceKeys, decryptEnvelope, DeviceKeyring, EnvelopeType, parseEnvelope, randomBytes, sealEnvelope } from '../../src/crypto/index.js'
import { contentOf, keyringOf } from '../helpers/forge.js'
import { accountKeys } from '../../src/facade/account.js'
import { openCheckpoint } from '../../src/sync/checkpoint.js'
import { converge, roomOf } from '../helpers/devices.js'
import { pairMember } from '../helpers/keys.js'
import { loopbackDevices, type LoopbackDevices } from '../helpers/loopback-devices.js'

/** The current test's devices (closed when it ends) and their network. */
let fleet: LoopbackDevices
let net: LoopbackNetwork

const sync = { repairDelayMs: 20, compaction: { idleMs: 0 } }

/** Delete every entry of a room's sealed log at the relay, as a relay can. */
function wipeRelayLog(roomId: string): number {
  const doc = net.relayDoc(roomId)!
  const log = sealedLog(doc)
  const n = log.length
  Y.transact(doc, () => log.delete(0, log.length), 'relay')
  return n
}

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await net.settle()
    await new Promise((r) => setTimeout(r, 10))
  }
}

describe('local authority', () => {
  it('a relay wiping a room loses nothing, is reported, and the devices republish for newcomers', async () => {
    fleet = await loopbackDevices([], { seed: 11, converge: false })
    const { account } = fleet
    net = fleet.net
    const phoneStore = memoryStorage()
    const pcStore = memoryStorage()
    let phone = (await fleet.open('phone', phoneStore, { sync })).dev
    let pc = (await fleet.open('pc', pcStore, { sync })).dev
    const erased: RejectedEvent[] = []
    for (const d of [phone, pc]) d.on('rejected', (e) => e.code === RejectCode.Erased && erased.push(e))
    for (let i = 0; i < 20; i++) await (i % 2 ? phone : pc).memory.remember({ text: `kept ${i}` })
    await converge([phone, pc], net)
    const room = roomOf(account, 'personal')

    expect(wipeRelayLog(room)).toBeGreaterThan(0)
    await net.settle()
    for (const d of [phone, pc]) expect(d.memory.list()).toHaveLength(20)
    await until(() => erased.length >= 2 && sealedLog(net.relayDoc(room)!).length > 0, 'report and repair')
    expect(new Set(erased.map((e) => e.scope))).toEqual(new Set(['personal']))
    for (const d of [phone, pc]) expect(d.rejectionCounts()[RejectCode.Erased]).toBeGreaterThan(0)

    // Restart both from their stores: the checkpoint is the authority, not the wiped log.
    await Promise.all([phone.close(), pc.close()])
    phone = fleet.track(await ContextSync.open({ storage: phoneStore, transports: [net.transport()], sync }))
    pc = fleet.track(await ContextSync.open({ storage: pcStore, transports: [net.transport()], sync }))
    for (const d of [phone, pc]) expect(d.memory.list()).toHaveLength(20)

    // A newcomer gets everything through the wiped-then-republished relay.
    const glasses = (await fleet.open('glasses', memoryStorage(), { sync })).dev
    await converge([phone, pc, glasses], net)
    await until(() => glasses.memory.list().length === 20, 'the newcomer to receive every memory')
  })

  it('a forgotten memory does not come back when the relay wipes the log and replays its old envelope', async () => {
    fleet = await loopbackDevices([], { seed: 12, converge: false })
    const { account } = fleet
    net = fleet.net
    const phoneStore = memoryStorage()
    let phone = (await fleet.open('phone', phoneStore, { sync })).dev
    const pc = (await fleet.open('pc', memoryStorage(), { sync })).dev
    const room = roomOf(account, 'personal')
    await phone.memory.remember({ text: 'ordinary' })
    const secret = await phone.memory.remember({ text: 'forget-me-marker' })
    await converge([phone, pc], net)
    const captured = sealedLog(net.relayDoc(room)!).toArray().map((b) => b.slice())
    await phone.memory.forget(secret.id)
    await converge([phone, pc], net)

    wipeRelayLog(room)
    const doc = net.relayDoc(room)!
    Y.transact(doc, () => sealedLog(doc).push(captured), 'relay')
    await converge([phone, pc], net)
    for (const d of [phone, pc]) {
      expect(d.memory.get(secret.id)).toBeUndefined()
      expect(d.memory.list().map((m) => m.text)).toEqual(['ordinary'])
    }
    await phone.close()
    phone = fleet.track(await ContextSync.open({ storage: phoneStore, transports: [net.transport()], sync }))
    await converge([phone, pc], net)
    expect(phone.memory.get(secret.id)).toBeUndefined()
    expect(phone.memory.list().map((m) => m.text)).toEqual(['ordinary'])
  })

  it('junk from unknown senders is bounded, refused with HoldLimit, and swept out of the store', async () => {
    fleet = await loopbackDevices([], { seed: 13, converge: false })
    const { account } = fleet
    net = fleet.net
    const store = memoryStorage()
    const phone = (await fleet.open('phone', store, { sync: { ...sync, hold: { maxEntries: 8 } } })).dev
    await converge([phone], net)
    const room = roomOf(account, 'personal')
    const junk: Uint8Array[] = []
    for (let i = 0; i < 40; i++) {
      // Structurally valid, signed by a made-up device the registry will never vouch for.
      const stranger = createDeviceKeys()
      junk.push(
        sealEnvelope({
          roomId: room,
          type: EnvelopeType.Update,
          epoch: 0,
          seq: 1,
          sender: stranger.deviceIdBytes,
          signSecretKey: stranger.signSecretKey,
          key: randomBytes(32),
          plaintext: randomBytes(10_000),
        }),
      )
    }
    const doc = net.relayDoc(room)!
    Y.transact(doc, () => sealedLog(doc).push(junk), 'relay')
    await converge([phone], net)
    await until(() => (phone.rejectionCounts()[RejectCode.HoldLimit] ?? 0) >= 32, 'refusals past the hold')
    await new Promise((r) => setTimeout(r, 1_200)) // one sweep interval
    await phone.flush()
    const stored = (await store.loadRange(['replica', room])).reduce((n, c) => n + c.data.length, 0)
    expect(stored).toBeLessThan(8 * 10_000 + 50_000)
    expect(sealedLog(phone.replica('personal')!.outer).length).toBeLessThanOrEqual(8 + 2)
  })

  it('a device that missed envelopes another device compacted away is not reported behind', async () => {
    fleet = await loopbackDevices([], { seed: 14, converge: false })
    const { account } = fleet
    net = fleet.net
    const lag = { ...sync, lagTimeoutMs: 150 }
    const phone = (await fleet.open('phone', memoryStorage(), { sync: lag })).dev
    const pc = (await fleet.open('pc', memoryStorage(), { sync: { ...lag, compaction: { maxEntries: 4, idleMs: 0 } } })).dev
    const glasses = await fleet.open('glasses', memoryStorage(), { sync: lag })
    await converge([phone, pc, glasses.dev], net)
    const lagEvents: string[] = []
    glasses.dev.on('sync-lag', (e) => lagEvents.push(`${e.state}:${e.scope}`))
    net.disconnect(glasses.transport)
    for (let i = 0; i < 6; i++) await phone.memory.remember({ text: `while away ${i}` })
    await converge([phone, pc], net)
    // The pc writes past its threshold and compacts: the phone's envelopes leave the log.
    for (let i = 0; i < 6; i++) await pc.memory.remember({ text: `pc ${i}` })
    await converge([phone, pc], net)
    expect(sealedLog(net.relayDoc(roomOf(account, 'personal'))!).length).toBeLessThan(12)
    // Past the announcement throttle (1 s), so the phone's presence states its newest seq.
    await new Promise((r) => setTimeout(r, 1_200))
    await net.settle()
    net.reconnect(glasses.transport)
    await converge([phone, pc, glasses.dev], net)
    await until(() => glasses.dev.memory.list().length === 12, 'the glasses to catch up')
    await new Promise((r) => setTimeout(r, 400))
    await net.settle()
    const personal = glasses.dev.syncStatus().filter((s) => s.scope === 'personal' && s.deviceId === phone.deviceId)
    expect(personal).toEqual([expect.objectContaining({ announcedSeq: phone.replica('personal')!.latestOwnSeq(), caughtUp: true })])
    // Not applied here — compacted away before it arrived — yet its content is.
    expect(glasses.dev.replica('personal')!.hasApplied(phone.deviceId, personal[0]!.announcedSeq)).toBe(false)
    expect(lagEvents.filter((e) => e.startsWith('behind:personal'))).toEqual([])
  })

  it('forgetting leaves the text in no checkpoint on any device (decrypted), and old checkpoints are removed', async () => {
    fleet = await loopbackDevices([], { seed: 15, converge: false })
    const { account } = fleet
    net = fleet.net
    const stores = [memoryStorage(), memoryStorage()]
    const phone = (await fleet.open('phone', stores[0], { sync })).dev
    const pc = (await fleet.open('pc', stores[1], { sync })).dev
    const room = roomOf(account, 'personal')
    const kept = await phone.memory.remember({ text: 'kept-marker' })
    const secret = await pc.memory.remember({ text: 'forgotten-marker' })
    await converge([phone, pc], net)
    // A checkpoint is written with every store rewrite: make sure each device has one holding both.
    await Promise.all([phone, pc].map((d) => d.replica('personal')!.checkpoint()))
    const texts = async (storage: typeof stores[number]) => {
      const all = await checkpointsOf(account, storage, room)
      return all.map((state) => ({ kept: Buffer.from(state).includes('kept-marker'), forgotten: Buffer.from(state).includes('forgotten-marker') }))
    }
    for (const storage of stores) expect(await texts(storage)).toEqual([{ kept: true, forgotten: true }])
    await phone.memory.forget(secret.id)
    await converge([phone, pc], net)
    await new Promise((r) => setTimeout(r, 1_100)) // a receiver rewrites its store within about a second
    await Promise.all([phone, pc].map((d) => d.flush()))
    for (const storage of stores) expect(await texts(storage)).toEqual([{ kept: true, forgotten: false }])
    expect(pc.memory.get(kept.id)?.text).toBe('kept-marker')
  })

  it('a forgotten text leaves no envelope behind: not a bit-flipped copy the relay inserts, nor an edit written concurrently with the forget', async () => {
    fleet = await loopbackDevices([], { seed: 17, converge: false })
    const { account } = fleet
    net = fleet.net
    const stores = [memoryStorage(), memoryStorage()]
    const phone = (await fleet.open('phone', stores[0], { sync })).dev
    const pc = await fleet.open('pc', stores[1], { sync })
    const room = roomOf(account, 'personal')
    const flipped = await phone.memory.remember({ text: 'flipped-marker' })
    const edited = await phone.memory.remember({ text: 'edited' })
    await converge([phone, pc.dev], net)
    // A copy of the envelope with one signature bit flipped: refused, yet its ciphertext is intact.
    const copy = sealedLog(net.relayDoc(room)!).toArray().find((b) => holds(b, 'flipped-marker'))!.slice()
    copy[copy.length - 1]! ^= 1
    // The pc, offline, edits a memory the phone forgets meanwhile: the edit lands on a deleted item.
    net.disconnect(pc.transport)
    await pc.dev.memory.update(edited.id, { text: 'edited-concurrently-marker' })
    await phone.memory.forget(flipped.id)
    await phone.memory.forget(edited.id)
    const doc = net.relayDoc(room)!
    Y.transact(doc, () => sealedLog(doc).push([copy]), 'relay')
    net.reconnect(pc.transport)
    await converge([phone, pc.dev], net)
    const markers = ['flipped-marker', 'edited-concurrently-marker']
    const leftIn = async (): Promise<string[]> => {
      const out: string[] = []
      const logs: Array<[string, Uint8Array[]]> = [['relay', sealedLog(net.relayDoc(room)!).toArray()]]
      for (const [i, d] of [phone, pc.dev].entries()) {
        logs.push([`device ${i} log`, sealedLog(d.replica('personal')!.outer).toArray()])
        const stored = new Y.Doc()
        for (const chunk of await stores[i]!.loadRange(['replica', room, 'log'])) Y.applyUpdate(stored, chunk.data)
        logs.push([`device ${i} store`, sealedLog(stored).toArray()])
      }
      for (const [where, entries] of logs) for (const m of markers) if (entries.some((b) => holds(b, m))) out.push(`${m} in ${where}`)
      return out
    }
    const deadline = Date.now() + 5_000
    while ((await leftIn()).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
      await net.settle()
      await Promise.all([phone, pc.dev].map((d) => d.flush()))
    }
    expect(await leftIn()).toEqual([])
    for (const d of [phone, pc.dev]) expect(d.memory.list()).toEqual([])

    function holds(bytes: Uint8Array, marker: string): boolean {
      // Decrypt as a key holder would, whether or not the signature still verifies.
      const parsed = parseEnvelope(bytes)
      if (!parsed.ok) return false
      for (const key of keyringOf(phone).heldKeys('personal')) {
        const plain = decryptEnvelope(parsed.value, room, key)
        if (plain && Buffer.from(plain).includes(marker)) return true
      }
      return false
    }
  })

  it('a snapshot sealed before another device\'s forget loses the text there too, even when the forgetter never comes back', async () => {
    fleet = await loopbackDevices([], { seed: 19, converge: false })
    const { account } = fleet
    net = fleet.net
    const stores = [memoryStorage(), memoryStorage()]
    const phone = await fleet.open('phone', stores[0], { sync })
    const glasses = await fleet.open('glasses', stores[1], { sync })
    const pc = await fleet.open('pc', memoryStorage(), { sync })
    const room = roomOf(account, 'personal')
    const secret = await glasses.dev.memory.remember({ text: 'racing-snapshot-marker' })
    await converge([phone.dev, glasses.dev, pc.dev], net)
    // The phone, cut off, compacts: its snapshot holds the memory. Meanwhile the pc forgets it…
    net.disconnect(phone.transport)
    await phone.dev.replica('personal')!.compactNow()
    await pc.dev.memory.forget(secret.id)
    await converge([glasses.dev, pc.dev], net)
    // …and is gone for good before the phone's snapshot reaches anyone.
    await pc.dev.close()
    net.reconnect(phone.transport)
    await converge([phone.dev, glasses.dev], net)
    const keys = keyringOf(phone.dev).heldKeys('personal')
    const leftIn = async (): Promise<string[]> => {
      const out: string[] = []
      for (const [i, d] of [phone.dev, glasses.dev].entries()) {
        const stored = new Y.Doc()
        for (const chunk of await stores[i]!.loadRange(['replica', room, 'log'])) Y.applyUpdate(stored, chunk.data)
        for (const [where, entries] of [['log', sealedLog(d.replica('personal')!.outer).toArray()], ['store', sealedLog(stored).toArray()]] as const) {
          if (entries.some((b) => Buffer.from(contentOf(b, room, keys) ?? []).includes('racing-snapshot-marker'))) out.push(`device ${i} ${where}`)
        }
      }
      return out
    }
    const deadline = Date.now() + 5_000
    while ((await leftIn()).length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50))
      await net.settle()
      await Promise.all([phone.dev, glasses.dev].map((d) => d.flush()))
    }
    expect(await leftIn()).toEqual([])
    for (const d of [phone.dev, glasses.dev]) expect(d.memory.get(secret.id)).toBeUndefined()
  })

  it('a replay refused just before a restart does not stay in the store as applied after it', async () => {
    fleet = await loopbackDevices([], { seed: 18, converge: false })
    const { account } = fleet
    net = fleet.net
    const store = memoryStorage()
    let phone = (await fleet.open('phone', store, { sync })).dev
    const room = roomOf(account, 'personal')
    const secret = await phone.memory.remember({ text: 'replayed-before-restart-marker' })
    await converge([phone], net)
    const captured = sealedLog(net.relayDoc(room)!).toArray().map((b) => b.slice())
    await phone.memory.forget(secret.id)
    await converge([phone], net)
    // One junk entry makes the phone sweep now, so the next sweep waits about a second…
    const doc = net.relayDoc(room)!
    Y.transact(doc, () => sealedLog(doc).push([randomBytes(40)]), 'relay')
    await converge([phone], net)
    // …and the replay arriving meanwhile is refused (10) but still in the log when the phone closes.
    Y.transact(doc, () => sealedLog(doc).push(captured), 'relay')
    await converge([phone], net)
    await phone.close()
    phone = fleet.track(await ContextSync.open({ storage: store, transports: [net.transport()], sync }))
    await converge([phone], net)
    await phone.flush()
    const keys = keyringOf(phone).heldKeys('personal')
    const carrying = (entries: Uint8Array[]) => entries.filter((b) => Buffer.from(contentOf(b, room, keys) ?? []).includes('replayed-before-restart-marker')).length
    const stored = new Y.Doc()
    for (const chunk of await store.loadRange(['replica', room, 'log'])) Y.applyUpdate(stored, chunk.data)
    expect({ log: carrying(sealedLog(phone.replica('personal')!.outer).toArray()), store: carrying(sealedLog(stored).toArray()) }).toEqual({ log: 0, store: 0 })
    expect(phone.memory.get(secret.id)).toBeUndefined()
  })

  it('a member offline through a rotation and a wiped registry room still gets the new keys: owners issue lockboxes again', async () => {
    fleet = await loopbackDevices([], { seed: 16, converge: false })
    const { account } = fleet
    net = fleet.net
    const phone = (await fleet.open('phone', memoryStorage(), { sync })).dev
    const car = await pairMember(phone, net, 'car', { sync })
    const glasses = await pairMember(phone, net, 'glasses', { sync })
    fleet.track(car.dev)
    fleet.track(glasses.dev)
    await converge([phone, car.dev, glasses.dev], net)
    net.disconnect(car.transport)
    await phone.devices.revoke(glasses.dev.deviceId)
    await converge([phone], net)
    // The relay loses the registry room's log and public statements (the lockboxes among them).
    const registryRoom = roomOf(account, 'registry')
    const relay = net.relayDoc(registryRoom)!
    Y.transact(relay, () => {
      sealedLog(relay).delete(0, sealedLog(relay).length)
      const statements = relay.getMap('public')
      for (const key of [...statements.keys()]) statements.delete(key)
    }, 'relay')
    await converge([phone], net)
    net.reconnect(car.transport)
    const later = await phone.memory.remember({ text: 'after the rotation' })
    await until(() => car.dev.memory.get(later.id)?.text === 'after the rotation', 'the car to read what the phone writes after the rotation')
    // The revocation is put back too (it may arrive a moment after the lockbox).
    await until(() => car.dev.registry.revocation(glasses.dev.deviceId) !== undefined, 'the car to learn of the revocation')
  })
})

/** The inner states of every checkpoint a store holds for a room, opened with the device's own at-rest key. */
async function checkpointsOf(account: Awaited<ReturnType<typeof createAccount>>, storage: StorageAdapter, roomId: string): Promise<Uint8Array[]> {
  const device = decodeDeviceKeys((await storage.load(['keys', 'device']))!)
  if (!device.ok) throw new Error('fixture: no device keys')
  const atRestKey = new DeviceKeyring(accountKeys(account), device.value.seeds.sign).atRestKey(roomId)
  const out: Uint8Array[] = []
  for (const chunk of await storage.loadRange(['replica', roomId, 'state'])) {
    const checkpoint = openCheckpoint(atRestKey, roomId, chunk.data)
    if (!checkpoint) throw new Error('a stored checkpoint does not open with the device key')
    out.push(checkpoint.state)
  }
  return out
}