/**
 * The campaign's checks can fail: each is shown passing on an honest run and failing on the
 * breach it exists to catch — a device cut off from a write, a forgotten text put back into a
 * store (as ciphertext and as plaintext), a revoked device holding the key its successors write
 * under. Without this a check that never fires would look like a passing campaign.
 */
import { afterEach, describe, expect, it } from 'vitest'
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import { ownerKeyring } from '../../src/crypto/index.js'
import { accountKeys } from '../../src/facade/account.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import { checkAcknowledged, checkConvergence, checkForgotten, checkRevoked } from './checks.js'
import { contentOf, envelopesInDoc, readStore } from './inspect.js'
import { openCheckpoint, sealCheckpoint } from '../../src/sync/checkpoint.js'
import { forgetOn, rememberOn, revokeOn, type RunningDevice } from './ops.js'
import { finish, runChecks } from './run.js'
import { keyringOf, World } from './world.js'
import type { DeviceName } from './model.js'

const sync = { repairDelayMs: 5, compaction: { maxEntries: 8, idleMs: 0 } }
let world: World | undefined
afterEach(async () => {
  await world?.close()
  world = undefined
})

async function start(seed: number): Promise<World> {
  world = await World.create(seed, prng.create(seed), { sync })
  await world.net.settle()
  return world
}

function running(w: World, name: DeviceName): RunningDevice {
  const device = w.get(name)
  if (!device.dev) throw new Error(`${name} is not running`)
  return device as RunningDevice
}

/** Remember a fresh marker on a device and wait until it is acknowledged. */
async function remember(w: World, step: number, name: DeviceName, scope = 'personal'): Promise<string> {
  const marker = w.model.marker()
  const { write, done } = rememberOn({ world: w, step }, running(w, name), scope, `${marker} text`, marker)
  await done
  await w.net.settle()
  expect(write?.acked, `${marker} acknowledged`).toBe(true)
  return marker
}

describe('campaign checks', () => {
  it('pass on an honest run; converge and acknowledged fail for a device cut off from a write', async () => {
    const w = await start(101)
    await remember(w, 1, 'phone')
    await remember(w, 2, 'car')
    await finish(w, 3_000)
    expect(await runChecks(w)).toEqual([])

    w.net.disconnect(w.get('pc').transport)
    const marker = await remember(w, 3, 'phone')
    const failures = [...checkConvergence(w), ...checkAcknowledged(w)]
    expect(failures.some((f) => f.check === 'converge' && f.message.includes('pc') && f.message.includes('personal'))).toBe(true)
    expect(failures.some((f) => f.check === 'acknowledged' && f.message.startsWith('pc lacks memory') && f.message.includes(marker))).toBe(true)
  })

  it('forgotten: finds a forgotten text put back into a store, as an envelope and as plaintext', async () => {
    const w = await start(102)
    const marker = await remember(w, 1, 'phone')
    await remember(w, 2, 'pc')
    const room = w.roomId('personal')
    const keys = ownerKeyring(accountKeys(w.account))
    const carrier = envelopesInDoc(room, w.net.relayDoc(room)!, 'relay').find((e) => {
      const content = contentOf(e, [keys.epochKey('personal', e.envelope.epoch)!])
      return content !== undefined && Buffer.from(content).includes(marker)
    })
    expect(carrier, 'the envelope carrying the marker').toBeDefined()
    const phone = running(w, 'phone')
    const id = phone.dev.memory.list().find((m) => m.text.startsWith(marker))!.id
    await forgetOn({ world: w, step: 3 }, phone, { id, scope: 'personal' }, false)
    await finish(w, 3_000)
    expect(w.model.forgottenMarkers().has(marker)).toBe(true)
    expect(await checkForgotten(w)).toEqual([])

    // The checkpoints are searched too: they open with the at-rest key derived from the store's keys.
    const pcStore = await readStore(w.get('pc').storage, 'pc store')
    expect(pcStore.unopenedCheckpoints).toEqual([])
    const checkpoint = pcStore.checkpointStates.find((c) => c.roomId === room)
    expect(checkpoint, "the pc's checkpoint of personal").toBeDefined()

    // What a relay replaying the old envelope into the pc's store would leave there.
    const doc = new Y.Doc()
    sealedLog(doc).push([carrier!.bytes])
    await w.get('pc').storage.save(['replica', room, 'log', '999999999999'], Y.encodeStateAsUpdate(doc))
    await w.get('car').storage.save(['replica', room, 'log', '999999999998'], new TextEncoder().encode(`leaked ${marker}`))
    // …and a checkpoint that kept the text (re-sealed with the device's own at-rest key).
    const phoneKey = keyringOf(phone.dev).atRestKey(room)
    const [sealed] = (await w.get('phone').storage.loadRange(['replica', room, 'state'])).map((c) => c.data)
    const opened = openCheckpoint(phoneKey, room, sealed!)!
    const kept = new Y.Doc()
    kept.getMap('memories').set('kept', `${marker} kept`)
    await w.get('phone').storage.save(['replica', room, 'state', '999999999999'], sealCheckpoint(phoneKey, room, { ...opened, state: Y.encodeStateAsUpdate(kept) }))
    const failures = await checkForgotten(w)
    expect(failures.some((f) => f.message.includes(marker) && f.message.includes('pc store'))).toBe(true)
    expect(failures.some((f) => f.message.includes(marker) && f.message.includes("phone's checkpoint of personal"))).toBe(true)
    expect(failures.some((f) => f.message.includes(marker) && f.message.includes("car's store as plaintext"))).toBe(true)
    expect(failures.every((f) => f.check === 'forgotten')).toBe(true)
  })

  it('revoked-decrypts: passes after a revocation, fails when the revoked device holds the key written under since', async () => {
    const w = await start(103)
    await remember(w, 1, 'phone')
    await revokeOn({ world: w, step: 2 }, running(w, 'phone'), w.get('car'))
    const after = await remember(w, 3, 'phone')
    await finish(w, 3_000)
    const removal = w.model.removals[0]!
    expect(w.model.postRemovalMarkers(removal).has(after)).toBe(true)
    expect(await checkRevoked(w)).toEqual([])

    // A lockbox of the new epoch reaching the car (as concurrent rotations can do): the car
    // learns the phone's (salted) start and the key derived for it.
    const phoneKeys = keyringOf(running(w, 'phone').dev)
    const room = w.roomId('personal')
    const epoch = phoneKeys.currentEpoch('personal')
    expect(epoch).toBeGreaterThan(0)
    const phoneStart = phoneKeys.canonicalStart(room, epoch)!
    const key = ownerKeyring(accountKeys(w.account)).deriveEpochKey('personal', epoch, phoneStart.salt)
    const carKeys = keyringOf(running(w, 'car').dev)
    carKeys.addStart({ roomId: room, epoch, startedAt: phoneStart.startedAt, ...(phoneStart.salt ? { salt: phoneStart.salt } : {}) })
    carKeys.addKey(room, epoch, key, phoneStart.salt)
    const failures = await checkRevoked(w)
    expect(failures.length).toBeGreaterThan(0)
    expect(failures.every((f) => f.check === 'revoked-decrypts' && f.message.startsWith('car (revoked by phone'))).toBe(true)
    expect(failures.some((f) => f.message.includes(after))).toBe(true)
  })
})
