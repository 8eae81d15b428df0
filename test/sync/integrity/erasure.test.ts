/**
 * Erasure and resurrection by the relay (THREAT_MODEL.md, "The relay"): the shared sealed log is
 * an untrusted exchange medium; a device's own store is the authority for what it has applied.
 * The relay here is the tampering relay of `contextsync/testing`, the devices are on SQLite files.
 *
 * - A relay that wipes every room — sealed logs and the registry's public statements — while the
 *   devices run takes nothing from them, now or after a restart; they report the erasure
 *   (`RejectCode.Erased`) and republish, so a device paired afterwards still gets everything.
 * - A relay that kept the envelopes it saw (the one carrying a memory that is then forgotten among
 *   them), wipes the log and replays them brings nothing back, on any device, in any log, after a
 *   restart. (It replays the history too: an update alone would stay pending in Yjs without the
 *   earlier updates of its writer, which would hide the resurrection instead of preventing it.)
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createAccount, RejectCode, type Account } from '../../../src/index.js'
import { logContains } from '../../helpers/devices.js'
import { caughtUp, deletesArrived, envelopeWith, eventually, IntegrityFixture, sleep, until, type FixtureDevice } from '../../helpers/integrity.js'

let fixture: IntegrityFixture
afterEach(async () => {
  await fixture?.close()
})

interface Written {
  id: string
  text: string
  scope: string
}

/** Phone and PC (owners) and a car (member: personal, location), on SQLite, with memories from each. */
async function threeDevices() {
  fixture = await IntegrityFixture.start()
  const account = await createAccount()
  const phone = await fixture.owner(account, 'phone')
  const pc = await fixture.owner(account, 'pc')
  const car = await fixture.member(phone.dev, 'car', { scopes: ['personal', 'location'] })
  const written: Written[] = []
  const remember = async (device: FixtureDevice, text: string, scope: string) => {
    const item = await device.dev.memory.remember({ text, scope })
    written.push({ id: item.id, text, scope })
  }
  await remember(phone, 'phone: prefers aisle seats', 'personal')
  await remember(phone, 'phone: parks at level 3', 'location')
  await remember(pc, 'pc: works late on Thursdays', 'personal')
  await remember(car, 'car: likes the heated seat on', 'personal')
  await remember(car, 'car: charging stop at Aire de Lyon', 'location')
  const devices = [phone, pc, car]
  await until(() => devices.every((d) => holdsAll(d, written)), 15_000, 'every memory on every device that holds its scope')
  return { account, phone, pc, car, devices, written }
}

/** Memories of the scopes `device` holds. */
function visibleTo(device: FixtureDevice, written: Written[]): Written[] {
  const scopes = device.dev.scopes.available()
  return written.filter((w) => scopes.includes(w.scope))
}

function holdsAll(device: FixtureDevice, written: Written[]): boolean {
  return visibleTo(device, written).every((w) => device.dev.memory.get(w.id)?.text === w.text)
}

/** Wipe every room of the account on the relay (sealed logs and public statements); returns what held entries. */
function wipeEverything(account: Account): string[] {
  const rooms = fixture.relay.rooms().filter((roomId) => roomId.startsWith(`${account.accountId}.`))
  const hadEntries = rooms.filter((roomId) => fixture.relay.room(roomId).entries().length > 0)
  for (const roomId of rooms) fixture.relay.room(roomId).wipe()
  return hadEntries
}

/** Wait until the wipe reached every room of every device, then let the stores settle. */
async function wipeArrived(devices: FixtureDevice[]): Promise<void> {
  const arrived = (d: FixtureDevice) =>
    [...d.dev.scopes.available().filter((s) => s !== 'local'), '@registry'].every((scope) => {
      const replica = d.dev.replica(scope)
      return !replica || deletesArrived(replica.outer, fixture.relay.room(replica.roomId).doc)
    })
  await until(() => devices.every(arrived), 15_000, 'the wipe on every device')
  await Promise.all(devices.map((d) => d.dev.flush()))
  // Stores rewrite themselves after a deletion on the next tick; give that a moment.
  await sleep(300)
}

describe('a relay wipes every room, registry included, while the devices run', () => {
  it('every device keeps every memory and reports the erasure with code 14 (envelopes and public statements)', async () => {
    const { account, devices, written } = await threeDevices()
    wipeEverything(account)
    await wipeArrived(devices)
    for (const d of devices) expect(holdsAll(d, written), `${d.kind} still reads every memory`).toBe(true)
    const reported = (d: FixtureDevice, source: 'envelope' | 'statement') =>
      d.rejected.some((e) => e.code === RejectCode.Erased && (e.source ?? 'envelope') === source)
    await eventually(() => devices.every((d) => reported(d, 'envelope') && reported(d, 'statement')), 8_000)
    for (const d of devices) {
      expect.soft(reported(d, 'envelope'), `${d.kind} reports erased log entries (code 14, source 'envelope')`).toBe(true)
      expect.soft(reported(d, 'statement'), `${d.kind} reports erased public registry statements (code 14, source 'statement')`).toBe(true)
      expect.soft(d.dev.rejectionCounts()[RejectCode.Erased] ?? 0, `${d.kind} counts code 14`).toBeGreaterThan(0)
    }
  })

  it('after a restart from SQLite alone every device still has everything, and the member keeps its keys and writes', async () => {
    const { account, phone, pc, car, devices, written } = await threeDevices()
    const scopesBefore = new Map(devices.map((d) => [d.kind, d.dev.scopes.available().sort()]))
    wipeEverything(account)
    await wipeArrived(devices)
    const reopened: FixtureDevice[] = []
    for (const d of [phone, pc, car]) {
      // No `device:` option: an app restarting reads everything from its store.
      const result = await fixture.reopen(d).catch((error: unknown) => error as Error)
      if (result instanceof Error) {
        expect.soft(result.message, `${d.kind} reopens from its store`).toBe('(opened)')
        continue
      }
      reopened.push(result)
    }
    for (const d of reopened) {
      expect.soft(d.dev.scopes.available().sort(), `${d.kind} holds the same scopes after the restart`).toEqual(scopesBefore.get(d.kind))
      const all = await eventually(() => holdsAll(d, written) && visibleTo(d, written).length > 0, 5_000)
      expect.soft(all, `${d.kind} reads every memory after the restart`).toBe(true)
    }
    const car2 = reopened.find((d) => d.kind === 'car')
    const phone2 = reopened.find((d) => d.kind === 'phone')
    expect(car2, 'the car reopened').toBeDefined()
    const after = await car2!.dev.memory.remember({ text: 'car: written after the restart', scope: 'location' })
    if (phone2) await until(() => phone2.dev.memory.get(after.id) !== undefined, 10_000, 'the car’s new write on the phone')
  })

  it('the devices republish: the relay’s rooms fill again and a device paired after the wipe receives every memory', async () => {
    const { account, phone, devices, written } = await threeDevices()
    const hadEntries = wipeEverything(account)
    await wipeArrived(devices)
    const refilled = await eventually(() => hadEntries.every((roomId) => fixture.relay.room(roomId).entries().length > 0), 8_000)
    const empty = hadEntries.filter((roomId) => fixture.relay.room(roomId).entries().length === 0)
    expect.soft(refilled, `rooms still empty on the relay: ${empty.map((r) => r.slice(33)).join(', ')}`).toBe(true)
    const glasses = await fixture.member(phone.dev, 'glasses')
    await until(() => holdsAll(glasses, written), 15_000, 'every memory of its scopes on the new glasses')
    expect(visibleTo(glasses, written).length).toBeGreaterThanOrEqual(4)
  })
})

describe('a relay replays the envelope of a forgotten memory after wiping the log', () => {
  it('the memory stays forgotten on every device, in every log, and after a restart from SQLite', async () => {
    const { account, phone, pc, car, devices } = await threeDevices()
    const marker = `FORGET-ME-${Math.random().toString(36).slice(2)}`
    const m = await phone.dev.memory.remember({ text: `${marker} door code 4711` })
    await until(() => devices.every((d) => d.dev.memory.get(m.id) !== undefined), 10_000, 'the memory on every device')
    const personal = phone.dev.roomId('personal')
    const room = fixture.relay.room(personal)
    // What the relay kept: every envelope it saw before the forget, the one carrying the memory
    // among them (the others too, so the replayed update finds the history it builds on).
    const kept = room.captured()
    expect(envelopeWith(account, 'personal', kept, marker), 'the relay captured the envelope carrying the memory').toBeDefined()

    await phone.dev.memory.forget(m.id)
    await until(() => devices.every((d) => d.dev.memory.get(m.id) === undefined), 10_000, 'forgotten everywhere')
    await until(() => !logContains(room.doc, account, 'personal', marker), 10_000, 'compacted out of the relay’s log')

    room.wipe()
    room.replay(kept.map((e) => e.bytes))
    await until(() => devices.every((d) => caughtUp(d.dev.replica('personal')!.outer, room.doc)), 10_000, 'the replay on every device')
    await sleep(300)
    for (const d of devices) expect.soft(d.dev.memory.get(m.id), `${d.kind}: the memory stays forgotten`).toBeUndefined()
    const clean = await eventually(
      () => devices.every((d) => !logContains(d.dev.replica('personal')!.outer, account, 'personal', marker)) && !logContains(room.doc, account, 'personal', marker),
      5_000,
    )
    const dirty: string[] = [...devices.filter((d) => logContains(d.dev.replica('personal')!.outer, account, 'personal', marker)).map((d) => d.kind)]
    if (logContains(room.doc, account, 'personal', marker)) dirty.push('relay')
    expect.soft(clean, `the replayed envelope is still in the logs of: ${dirty.join(', ')}`).toBe(true)

    await Promise.all(devices.map((d) => d.dev.flush()))
    await sleep(300)
    for (const d of [phone, pc, car]) {
      const again = await fixture.reopen(d)
      await sleep(500)
      expect.soft(again.dev.memory.get(m.id), `${d.kind} after the restart: the memory stays forgotten`).toBeUndefined()
      expect.soft(logContains(again.dev.replica('personal')!.outer, account, 'personal', marker), `${d.kind} after the restart: not in its log`).toBe(false)
    }
  })
})
