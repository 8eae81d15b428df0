/**
 * Revocation and key epochs against an attacker (THREAT_MODEL.md, "A revoked device", "The
 * relay"):
 *
 * - a revoked car, holding its old keys, injects envelopes under the old epoch — with a fresh
 *   seq in a room the revoking owner held no replica of, with an unused seq inside the range the
 *   revoking owner had applied, and in a room no owner holds — and names the phone as the source:
 *   every receiver refuses each with code 5, nothing is applied;
 * - two owners revoking two devices while partitioned must not leave either revoked device able
 *   to open what the remaining devices write after they meet again;
 * - a member kept unaware of a rotation (the relay withholds the registry from it) cannot keep
 *   writing under the old epoch past the grace window (code 15), and a relay withholding the
 *   registry from a member is noticed (`sync-lag` on `@registry`).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createAccount, RejectCode } from '../../../src/index.js'
import { sealedLog } from '../../../src/crdt/sealed-log.js'
import { parseEnvelope } from '../../../src/crypto/index.js'
import { converge, roomOf, type TestDevice } from '../../helpers/devices.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'
import { pairMember } from '../../helpers/keys.js'
import {
  caughtUp,
  deviceKeysOf,
  eventually,
  forgeEnvelope,
  heldKeys,
  IntegrityFixture,
  keyringOf,
  memoryUpdate,
  opensWithAny,
  scopeKey,
  sleep,
  until,
  type IntegritySyncOptions,
} from '../../helpers/integrity.js'

let fixture: IntegrityFixture | undefined
afterEach(async () => {
  await fixture?.close()
  fixture = undefined
})

describe('a revoked device injects envelopes with its old keys', () => {
  it('is refused everywhere with code 5 — under the old epoch, in a seq gap, in a room no owner held — whatever source it names', async () => {
    const f = (fixture = await IntegrityFixture.start())
    const account = await createAccount()
    const phone = await f.owner(account, 'phone')
    const pc = await f.owner(account, 'pc')
    // A scope only members hold: no owner keeps a replica of its room.
    await phone.dev.scopes.define('dashcam', { kinds: ['car', 'glasses'] })
    let car = await f.member(phone.dev, 'car', { scopes: ['personal', 'location', 'dashcam'] })
    const glasses = await f.member(phone.dev, 'glasses')
    const seen = [
      await car.dev.memory.remember({ text: 'car personal before' }),
      await car.dev.memory.remember({ text: 'car location before', scope: 'location' }),
      await car.dev.memory.remember({ text: 'car dashcam before', scope: 'dashcam' }),
    ]
    await until(() => pc.dev.memory.get(seen[0]!.id) !== undefined && glasses.dev.memory.get(seen[2]!.id) !== undefined, 15_000, 'the car’s writes')
    // A restart continues after the reserved seq block: the seqs in between are never used.
    car = await f.reopen(car)
    const afterRestart = await car.dev.memory.remember({ text: 'car personal after restart' })
    await until(() => pc.dev.memory.get(afterRestart.id) !== undefined, 15_000, 'the car’s write after its restart on the pc')
    const applied = pc.dev.replica('personal')!.appliedSeqs().get(car.dev.deviceId)!
    let gapSeq = applied.max() - 1
    while (gapSeq > 1 && applied.has(gapSeq)) gapSeq--
    expect(applied.has(gapSeq)).toBe(false)
    expect(gapSeq).toBeGreaterThan(1)

    // The pc revokes the car; the pc holds no location and no dashcam replica.
    expect(pc.dev.replica('location')).toBeUndefined()
    await pc.dev.devices.revoke(car.dev.deviceId)
    const everyone = [phone, pc, glasses]
    await until(
      () => everyone.every((d) => d.dev.devices.list().find((x) => x.deviceId === car.dev.deviceId)?.revoked === true),
      15_000,
      'the revocation everywhere',
    )

    const keys = await deviceKeysOf(car.storage)
    const forge = (scope: string, seq: number, id: string) => ({
      scope,
      id,
      roomId: roomOf(account, scope),
      bytes: forgeEnvelope({
        keys,
        roomId: roomOf(account, scope),
        epoch: 0,
        seq,
        key: scopeKey(account, scope, 0),
        // The forged memory claims the phone wrote it.
        plaintext: memoryUpdate({ id, text: `FORGED by the revoked car (${scope})`, scope, sourceDeviceId: phone.dev.deviceId, kind: 'instruction' }),
      }),
    })
    const attacks = [
      { ...forge('location', 5_000_000, 'forgedLocationAAAAAAAA'), receivers: [phone, glasses], what: '(a) old epoch, fresh seq, a room the revoking owner held no replica of' },
      { ...forge('personal', gapSeq, 'forgedPersonalAAAAAAAA'), receivers: [phone, pc, glasses], what: `(b) old epoch, unused seq ${gapSeq} below the cutoff` },
      { ...forge('dashcam', 5_000_000, 'forgedDashcamAAAAAAAAA'), receivers: [glasses], what: '(c) a room no owner held' },
    ]
    await f.shut(car)
    for (const attack of attacks) f.relay.room(attack.roomId).inject([attack.bytes])
    for (const attack of attacks) {
      const relayDoc = f.relay.room(attack.roomId).doc
      await until(() => attack.receivers.every((d) => caughtUp(d.dev.replica(attack.scope)!.outer, relayDoc)), 10_000, `${attack.scope} injection delivered`)
    }
    await sleep(200)
    for (const attack of attacks) {
      for (const d of attack.receivers) {
        const refused = d.rejected.some((e) => e.code === RejectCode.RevokedSender && e.senderId === car.dev.deviceId && e.scope === attack.scope)
        expect.soft(refused, `${attack.what}: ${d.kind} refuses it with code 5`).toBe(true)
        expect.soft(d.dev.memory.get(attack.id), `${attack.what}: not applied on ${d.kind}`).toBeUndefined()
      }
    }
    for (const d of everyone) {
      const forged = d.dev.scopes
        .available()
        .flatMap((scope) => d.dev.memory.list({ scope }))
        .filter((m) => m.text.startsWith('FORGED'))
      expect.soft(forged.map((m) => `${m.scope}: ${m.text} (source ${m.source.deviceId === phone.dev.deviceId ? 'phone' : m.source.deviceId})`), `${d.kind} holds no forged memory`).toEqual([])
    }
  })
})

describe('two owners revoke two devices while partitioned', () => {
  it('no personal envelope sealed after they meet again opens with any key the car or the glasses hold', async () => {
    const fleet = await loopbackDevices(['phone', 'pc'], { seed: 61, layout: 'mesh', converge: false })
    const { account, net } = fleet
    const [phone, pc] = fleet.devs as [TestDevice, TestDevice]
    const car = await pairMember(phone.dev, net, 'car', { scopes: ['personal', 'location'] })
    const glasses = await pairMember(phone.dev, net, 'glasses')
    fleet.track(car.dev)
    fleet.track(glasses.dev)
    const all = [phone.dev, pc.dev, car.dev, glasses.dev]
    await phone.dev.memory.remember({ text: 'before the partition' })
    await converge(all, net)

    net.partition([phone.transport, car.transport], [pc.transport, glasses.transport])
    await Promise.all([pc.dev.devices.revoke(car.dev.deviceId), phone.dev.devices.revoke(glasses.dev.deviceId)])
    await converge(all, net)
    const personalRoom = phone.dev.roomId('personal')
    const sealedBefore = new Set<string>()
    for (const dev of all) for (const bytes of sealedLog(dev.replica('personal')!.outer).toArray()) sealedBefore.add(Buffer.from(bytes).toString('base64'))

    net.heal()
    await converge(all, net)
    const fromPhone = await phone.dev.memory.remember({ text: 'POST-HEAL from the phone' })
    const fromPc = await pc.dev.memory.remember({ text: 'POST-HEAL from the pc' })
    await converge([phone.dev, pc.dev], net)
    expect(phone.dev.memory.get(fromPc.id)?.text).toBe('POST-HEAL from the pc')
    expect(pc.dev.memory.get(fromPhone.id)?.text).toBe('POST-HEAL from the phone')

    const sealedAfter = new Map<string, Uint8Array>()
    for (const dev of [phone.dev, pc.dev]) {
      for (const bytes of sealedLog(dev.replica('personal')!.outer).toArray()) {
        const key = Buffer.from(bytes).toString('base64')
        if (!sealedBefore.has(key)) sealedAfter.set(key, bytes)
      }
    }
    expect(sealedAfter.size).toBeGreaterThan(0)
    const leaks: string[] = []
    for (const bytes of sealedAfter.values()) {
      const parsed = parseEnvelope(bytes)
      expect(parsed.ok).toBe(true)
      if (!parsed.ok) continue
      const { epoch, senderId, seq } = parsed.value
      // Non-vacuous: the remaining owners can open what they wrote.
      expect(opensWithAny(bytes, personalRoom, [...heldKeys(phone.dev, 'personal', epoch), ...heldKeys(pc.dev, 'personal', epoch)])).toBe(true)
      for (const [name, dev] of [['car', car.dev], ['glasses', glasses.dev]] as const) {
        if (opensWithAny(bytes, personalRoom, heldKeys(dev, 'personal', epoch))) {
          leaks.push(`${name} opens epoch ${epoch} (sender ${senderId === phone.dev.deviceId ? 'phone' : 'pc'}, seq ${seq})`)
        }
      }
    }
    expect(leaks).toEqual([])
  })
})

describe('old epochs and a relay that withholds the registry', () => {
  it('a member unaware of a rotation is refused with code 15 past the grace window, and its writes arrive once it learns the new epoch', async () => {
    const f = (fixture = await IntegrityFixture.start())
    const account = await createAccount()
    const receiverSync: IntegritySyncOptions = { epochGraceMs: 200 }
    const phone = await f.owner(account, 'phone', { sync: receiverSync })
    const car = await f.member(phone.dev, 'car', { scopes: ['personal', 'location'], store: 'memory' })
    const glasses = await f.member(phone.dev, 'glasses', { store: 'memory' })
    const warmup = await car.dev.memory.remember({ text: 'car before the rotation' })
    await until(() => phone.dev.memory.get(warmup.id) !== undefined, 10_000, 'the car’s first write on the phone')

    // The relay keeps the car from learning anything new in the registry.
    const registryRoom = `${account.accountId}.registry`
    const hold = f.relay.withhold({ roomId: registryRoom, to: car.dev.deviceId })
    await phone.dev.devices.revoke(glasses.dev.deviceId)
    expect(keyringOf(phone.dev).currentEpoch('personal')).toBeGreaterThan(0)
    expect(keyringOf(car.dev).currentEpoch('personal')).toBe(0)
    await sleep(500)

    const stale = await car.dev.memory.remember({ text: 'written under the old epoch' })
    const refused = await eventually(() => phone.rejected.some((e) => e.code === RejectCode.StaleEpoch && e.senderId === car.dev.deviceId), 5_000)
    expect.soft(refused, 'the phone refuses the car’s old-epoch envelope with code 15').toBe(true)
    expect.soft(phone.dev.memory.get(stale.id), 'not applied while sealed under the old epoch').toBeUndefined()
    expect.soft(phone.dev.rejectionCounts()[RejectCode.StaleEpoch] ?? 0, 'code 15 is counted').toBeGreaterThan(0)

    hold.release()
    await until(() => keyringOf(car.dev).currentEpoch('personal') > 0, 10_000, 'the car learns the new epoch')
    await until(() => phone.dev.memory.get(stale.id)?.text === 'written under the old epoch', 10_000, 'the car’s write, republished under the new epoch')
  })

  it('a member reports sync-lag on @registry when the relay withholds the owner’s registry envelopes from it', async () => {
    const f = (fixture = await IntegrityFixture.start())
    const account = await createAccount()
    const sync = { lagTimeoutMs: 300 }
    const phone = await f.owner(account, 'phone', { sync, store: 'memory' })
    const car = await f.member(phone.dev, 'car', { scopes: ['personal', 'location'], sync, store: 'memory' })
    const registryRoom = `${account.accountId}.registry`
    f.relay.withhold({ roomId: registryRoom, to: car.dev.deviceId, envelope: (e) => e.header?.senderId === phone.dev.deviceId })
    await phone.dev.scopes.define('trips', { kinds: ['car', 'phone'] })
    const lagging = () => car.lags.some((e) => e.scope === '@registry' && e.state === 'behind' && e.deviceId === phone.dev.deviceId)
    await eventually(lagging, 5_000)
    expect(lagging(), 'the car reports sync-lag behind the phone on @registry').toBe(true)
  })
})
