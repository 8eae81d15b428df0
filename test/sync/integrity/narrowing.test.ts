/**
 * Narrowing a scope is a revocation for that scope (THREAT_MODEL.md, "A member device"): when an
 * owner removes a device's kind from a scope's policy, the device loses the scope — its replica
 * closes and its local data for the scope is purged, its relay pass stops covering the room — and
 * everything written afterwards is sealed under an epoch it holds no key for, including after a
 * later revocation of the device.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { ClosedError, createAccount } from '../../../src/index.js'
import { verifyRelayPass } from '../../../src/crypto/index.js'
import { accountKeys } from '../../../src/facade/account.js'
import { listEntries } from '../../../src/testing/sealed-log-tamper.js'
import { eventually, eventuallyAsync, envelopesOpenedBy, heldKeys, IntegrityFixture, opensWithAny, until } from '../../helpers/integrity.js'

let fixture: IntegrityFixture
afterEach(async () => {
  await fixture?.close()
})

describe('an owner narrows a scope', () => {
  it('the removed glasses lose health: no replica, no local data, no pass for the room, no key for anything written afterwards', async () => {
    fixture = await IntegrityFixture.start()
    const account = await createAccount()
    const phone = await fixture.owner(account, 'phone')
    const glasses = await fixture.member(phone.dev, 'glasses')
    const before = await phone.dev.memory.remember({ text: 'HEALTH-BEFORE resting pulse 58', scope: 'health' })
    await until(() => glasses.dev.memory.get(before.id) !== undefined, 10_000, 'health on the glasses')
    const healthRoom = phone.dev.roomId('health')
    expect((await glasses.storage.loadRange(['replica', healthRoom])).length).toBeGreaterThan(0)

    await phone.dev.scopes.define('health', { kinds: ['phone'] })
    const dropped = await eventually(() => !glasses.dev.scopes.available().includes('health'), 5_000)
    expect.soft(dropped, 'the glasses no longer list health').toBe(true)
    // Only the seq reservation may stay (a counter, no content: seqs must not be reused if granted again).
    const contentLeft = async () => (await glasses.storage.loadRange(['replica', healthRoom])).filter((c) => c.key[2] !== 'meta').length
    const purged = await eventuallyAsync(async () => (await contentLeft()) === 0, 5_000)
    expect.soft(purged, 'the glasses store holds no log or checkpoint under [replica, <health room>]').toBe(true)
    const passRooms = (dev: typeof phone.dev) => {
      const pass = dev.registry.relayPass(glasses.dev.deviceId)
      const verified = pass ? verifyRelayPass(accountKeys(account), pass) : undefined
      return verified?.ok ? verified.value.rooms : []
    }
    const passNarrowed = await eventually(() => passRooms(phone.dev) !== 'all' && !passRooms(phone.dev).includes(healthRoom), 5_000)
    expect.soft(passNarrowed, 'the glasses’ newest relay pass no longer covers the health room').toBe(true)

    const unreadable = (marker: string) => {
      const log = listEntries(phone.dev.replica('health')!.outer)
      const carrying = envelopesOpenedBy(phone.dev, 'health', healthRoom, log, marker)
      expect(carrying.length, `the phone’s health log carries ${marker}`).toBeGreaterThan(0)
      return carrying
        .filter((e) => opensWithAny(e.bytes, healthRoom, heldKeys(glasses.dev, 'health', e.header!.epoch)))
        .map((e) => `epoch ${e.header!.epoch} seq ${e.header!.seq}`)
    }
    await phone.dev.memory.remember({ text: 'HEALTH-AFTER-NARROWING blood test on Monday', scope: 'health' })
    await phone.dev.flush()
    expect.soft(unreadable('HEALTH-AFTER-NARROWING'), 'envelopes written after the narrowing that the glasses can open').toEqual([])

    await phone.dev.devices.revoke(glasses.dev.deviceId)
    await phone.dev.memory.remember({ text: 'HEALTH-AFTER-REVOCATION new prescription', scope: 'health' })
    await phone.dev.flush()
    expect.soft(unreadable('HEALTH-AFTER-REVOCATION'), 'envelopes written after the later revocation that the glasses can open').toEqual([])
  })

  it('a turn the removed glasses were streaming in that scope ends with ClosedError, not a promise that never settles', async () => {
    fixture = await IntegrityFixture.start()
    const account = await createAccount()
    const phone = await fixture.owner(account, 'phone')
    const glasses = await fixture.member(phone.dev, 'glasses')
    const session = glasses.dev.sessions.start({ scope: 'health', title: 'run' })
    await session.append({ role: 'user', text: 'how was my pulse?' })
    const stream = glasses.dev.sessions.open(session.id).stream({ role: 'assistant' })
    stream.write('Your resting pulse ')
    await phone.dev.scopes.define('health', { kinds: ['phone'] })
    await until(() => !glasses.dev.scopes.available().includes('health'), 5_000, 'the glasses to lose health')
    stream.write('was 58.')
    const ended = await Promise.race([
      stream.end().then(
        () => 'resolved',
        (error: unknown) => (error instanceof ClosedError ? 'ClosedError' : String(error)),
      ),
      new Promise((r) => setTimeout(() => r('still pending after 5 s'), 5_000)),
    ])
    expect(ended).toBe('ClosedError')
  })
})
