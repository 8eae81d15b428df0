import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import {
  ContextSync,
  createAccount,
  loopbackNetwork,
  memoryStorage,
  PairingError,
  PermissionError,
  RejectCode,
  ScopeAccessError,
  type LoopbackNetwork,
  type RejectedEvent,
} from '../../src/index.js'
import { publicStatementsMap, statementsMap } from '../../src/crdt/registry.js'
import {
  createAccountKeys,
  createDeviceKeys,
  issueCertificate,
  issueLockbox,
  MAX_PAIRING_ATTEMPTS,
  pairingCommitment,
  pairingKey,
  pairingRoomId,
  PairingMessageType,
  parseInviteCode,
  randomBytes,
  signRevocation,
} from '../../src/crypto/index.js'
import { openPairingChannel } from '../../src/facade/pairing-channel.js'

async function until(predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 10))
  }
}
import { converge, openDevice } from '../helpers/devices.js'
import { loopbackDevices, type LoopbackDevices } from '../helpers/loopback-devices.js'

/** The current test's devices (closed when it ends) and their network. */
let fleet: LoopbackDevices
let net: LoopbackNetwork

async function ownerAndNet() {
  fleet = await loopbackDevices(['phone'], { seed: 21, converge: false })
  net = fleet.net
  return { account: fleet.account, phone: fleet.all[0]! }
}

async function pair(owner: ContextSync, kind: 'car' | 'glasses' | 'pc', scopes?: string[]) {
  const transport = net.transport({ name: `${kind}-member` })
  let ownerSas = ''
  const invite = await owner.devices.invite({ kind, name: `Member ${kind}`, ...(scopes && { scopes }), confirm: ({ sas }) => ((ownerSas = sas), true) })
  let sas = ''
  const storage = memoryStorage()
  const dev = fleet.track(await ContextSync.join({ invite: invite.code, device: { kind, name: `Member ${kind}` }, storage, transports: [transport], onSas: (s) => (sas = s), timeoutMs: 10_000 }))
  return { dev, transport, storage, invite, sas, ownerSas }
}

/**
 * Two users comparing screens: each side's confirm callback resolves once both sides showed
 * their digits, with whether they are equal.
 */
function comparingUsers() {
  const shown: { owner?: string; joiner?: string } = {}
  let both!: () => void
  const ready = new Promise<void>((r) => (both = r))
  const show = (side: 'owner' | 'joiner', sas: string) => {
    shown[side] = sas
    if (shown.owner !== undefined && shown.joiner !== undefined) both()
    return ready.then(() => shown.owner === shown.joiner)
  }
  return { shown, owner: ({ sas }: { sas: string }) => show('owner', sas), joiner: (sas: string) => show('joiner', sas) }
}

describe('pairing', () => {
  it('a paired device joins with a code, both sides show the same SAS, and it syncs what it is granted', async () => {
    const { phone } = await ownerAndNet()
    const personal = await phone.memory.remember({ text: 'Likes jazz on long drives' })
    const health = await phone.memory.remember({ text: 'Blood pressure 120/80', scope: 'health' })
    const wire: Buffer[] = []
    net.on('message', (m) => wire.push(Buffer.from(m.bytes)))
    const { dev: car, invite, sas, ownerSas } = await pair(phone, 'car', ['personal', 'location'])
    expect(sas).toMatch(/^\d{3} \d{3}$/)
    expect(sas).toBe(ownerSas)
    await expect(invite.result()).resolves.toEqual({ deviceId: car.deviceId })
    expect(invite.code).toMatch(/^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$/)
    expect(car.isOwner).toBe(false)
    expect(car.kind).toBe('car')
    expect(car.scopes.available().sort()).toEqual(['local', 'location', 'personal'])
    await converge([phone, car], net)
    expect(car.memory.get(personal.id)?.text).toBe('Likes jazz on long drives')
    expect(car.memory.get(health.id)).toBeUndefined()
    expect(car.replica('health')).toBeUndefined()
    await expect(car.memory.remember({ text: 'x', scope: 'health' })).rejects.toThrow(ScopeAccessError)
    // The car can write to its scopes and the phone reads it.
    const fromCar = await car.memory.remember({ text: 'Charging stop at Aire de Lyon', scope: 'location' })
    await converge([phone, car], net)
    expect(phone.memory.get(fromCar.id)?.text).toBe('Charging stop at Aire de Lyon')
    // The code never travelled: neither as typed nor without dashes.
    const all = Buffer.concat(wire)
    expect(all.includes(invite.code)).toBe(false)
    expect(all.includes(invite.code.replace(/-/g, ''))).toBe(false)
    // The car never joined the health room.
    const healthRoom = phone.roomId('health')
    expect(wire.length).toBeGreaterThan(0)
    const carRooms = new Set<string>()
    net.on('message', (m) => carRooms.add(m.roomId))
    await converge([phone, car], net)
    expect(phone.devices.list().find((d) => d.deviceId === car.deviceId)).toMatchObject({ kind: 'car', role: 'member', revoked: false })
    expect(phone.devices.list().find((d) => d.deviceId === car.deviceId)?.scopes.sort()).toEqual(['local', 'location', 'personal'])
    expect(car.replica('health')?.roomId ?? '').not.toBe(healthRoom)
  })

  it('codes are single use, expire, and a wrong code fails cleanly', async () => {
    const { phone } = await ownerAndNet()
    const invite = await phone.devices.invite({ kind: 'glasses' })
    const first = fleet.track(await ContextSync.join({ invite: invite.code, device: { kind: 'glasses' }, storage: memoryStorage(), transports: [net.transport()], timeoutMs: 10_000 }))
    await expect(
      ContextSync.join({ invite: invite.code, device: { kind: 'glasses' }, storage: memoryStorage(), transports: [net.transport()], timeoutMs: 2_000 }),
    ).rejects.toThrow(PairingError)
    const short = await phone.devices.invite({ kind: 'pc', expiresIn: 1 })
    await new Promise((r) => setTimeout(r, 20))
    await expect(
      ContextSync.join({ invite: short.code, device: { kind: 'pc' }, storage: memoryStorage(), transports: [net.transport()], timeoutMs: 500 }),
    ).rejects.toThrow(PairingError)
    await expect(
      ContextSync.join({ invite: 'AAAA-BBBB-CCCC-DDDD', device: { kind: 'pc' }, storage: memoryStorage(), transports: [net.transport()], timeoutMs: 300 }),
    ).rejects.toMatchObject({ name: 'PairingError', reason: 'timeout' })
    await expect(
      ContextSync.join({ invite: 'not a code', device: { kind: 'pc' }, storage: memoryStorage(), transports: [net.transport()] }),
    ).rejects.toThrow(/XXXX-XXXX-XXXX-XXXX/)
    await expect(first.devices.invite({ kind: 'car' })).rejects.toThrow(PermissionError)
  })

  it('the owner admits the device only once both users confirmed the same digits', async () => {
    const { phone } = await ownerAndNet()
    const users = comparingUsers()
    let ownerConfirm!: (ok: boolean) => void
    const ownerDecision = new Promise<boolean>((r) => (ownerConfirm = r))
    const invite = await phone.devices.invite({ kind: 'glasses', confirm: async (request) => (await users.owner(request)) && ownerDecision })
    const joining = ContextSync.join({ invite: invite.code, device: { kind: 'glasses' }, storage: memoryStorage(), transports: [net.transport()], confirmSas: users.joiner, timeoutMs: 10_000 })
    // Both screens show digits, the same ones; the owner's user has not pressed "match" yet.
    await until(() => users.shown.owner !== undefined && users.shown.joiner !== undefined)
    expect(users.shown.owner).toBe(users.shown.joiner)
    await new Promise((r) => setTimeout(r, 50))
    expect(phone.devices.list().map((d) => d.kind)).toEqual(['phone'])
    ownerConfirm(true)
    const glasses = fleet.track(await joining)
    expect(phone.devices.list().map((d) => d.deviceId)).toContain(glasses.deviceId)
  })

  it('someone holding the code in the middle is caught on both sides: the digits differ, both abort, the invite is over', async () => {
    // The owner and the joiner reach each other only through the attacker, who knows the code:
    // it asks the owner to join with its own keys, and answers the joiner with its own root key.
    const { phone } = await ownerAndNet()
    const other = loopbackNetwork({ seed: 22 })
    try {
      const users = comparingUsers()
      const invite = await phone.devices.invite({ kind: 'car', confirm: users.owner })
      const secret = parseInviteCode(invite.code)!
      const key = pairingKey(secret)
      const room = pairingRoomId(secret)
      const towardsOwner = openPairingChannel(room, key, [net.transport({ name: 'mitm-a' })])
      const towardsJoiner = openPairingChannel(room, key, [other.transport({ name: 'mitm-b' })])
      const fake = { device: createDeviceKeys(), root: createAccountKeys(), nonce: randomBytes(32), ownerNonce: randomBytes(32) }
      let joinerId: Uint8Array | undefined
      towardsJoiner.onMessage((m) => {
        if (m.type === PairingMessageType.JoinRequest) {
          joinerId = m.request!.deviceIdBytes
          towardsOwner.sendRequest(fake.device, 'car', 'Car', pairingCommitment(fake.nonce))
          const offer = new Uint8Array(64)
          offer.set(fake.root.rootPublicKey)
          offer.set(fake.ownerNonce, 32)
          towardsJoiner.send(PairingMessageType.Offer, joinerId, offer)
        } else if (m.type === PairingMessageType.Reveal) {
          towardsOwner.send(PairingMessageType.Reveal, fake.device.deviceIdBytes, fake.nonce)
        } else if (m.type === PairingMessageType.Confirm) {
          towardsOwner.send(PairingMessageType.Confirm, fake.device.deviceIdBytes)
        }
      })
      const joining = ContextSync.join({ invite: invite.code, device: { kind: 'car' }, storage: memoryStorage(), transports: [other.transport()], confirmSas: users.joiner, timeoutMs: 10_000 })
      await expect(joining).rejects.toMatchObject({ name: 'PairingError', reason: 'mismatch' })
      await expect(invite.result()).rejects.toMatchObject({ name: 'PairingError', reason: 'mismatch' })
      expect(users.shown.owner).not.toBe(users.shown.joiner)
      // Nobody was admitted, and the code answers nobody any more.
      expect(phone.devices.list().map((d) => d.kind)).toEqual(['phone'])
      towardsOwner.close()
      towardsJoiner.close()
      await expect(
        ContextSync.join({ invite: invite.code, device: { kind: 'car' }, storage: memoryStorage(), transports: [net.transport()], timeoutMs: 5_000 }),
      ).rejects.toMatchObject({ reason: 'refused' })
    } finally {
      other.destroy()
    }
  })

  it('an invite answers at most three requests', async () => {
    const { phone } = await ownerAndNet()
    const invite = await phone.devices.invite({ kind: 'car' })
    const secret = parseInviteCode(invite.code)!
    const channel = openPairingChannel(pairingRoomId(secret), pairingKey(secret), [net.transport()])
    const offers: string[] = []
    channel.onMessage((m) => m.type === PairingMessageType.Offer && offers.push(m.deviceId))
    // Three requests that never go on (someone trying digits): each takes an attempt.
    for (let i = 0; i < MAX_PAIRING_ATTEMPTS; i++) channel.sendRequest(createDeviceKeys(), 'car', 'Car', pairingCommitment(randomBytes(32)))
    await until(() => offers.length === MAX_PAIRING_ATTEMPTS)
    channel.close()
    await expect(
      ContextSync.join({ invite: invite.code, device: { kind: 'car' }, storage: memoryStorage(), transports: [net.transport()], timeoutMs: 5_000 }),
    ).rejects.toMatchObject({ reason: 'refused' })
  })

  it('invite scopes are the exact set: a scope outside the kind\'s policy, or one left out of it, is refused with the policy named', async () => {
    const { phone } = await ownerAndNet()
    await phone.memory.remember({ text: 'Resting heart rate 58', scope: 'health' })
    // health is for phones and glasses: a car invited to it would otherwise receive health data.
    await expect(phone.devices.invite({ kind: 'car', scopes: ['personal', 'location', 'health'] })).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringMatching(/car cannot be invited to health: its policy is for phone, glasses/),
    })
    // location holds cars by policy: an invite that leaves it out cannot withhold it.
    await expect(phone.devices.invite({ kind: 'car', scopes: ['personal'] })).rejects.toMatchObject({
      name: 'ValidationError',
      message: expect.stringMatching(/car holds location by policy, but the invite does not list it/),
    })
    await expect(phone.devices.invite({ kind: 'car', scopes: ['personal', 'location', 'nope'] })).rejects.toThrow(/unknown scope "nope"/)

    // The exact set is accepted (local may be listed or not), and that is what the car holds.
    const { dev: car } = await pair(phone, 'car', ['personal', 'location', 'local'])
    expect(car.scopes.available().sort()).toEqual(['local', 'location', 'personal'])
    // Once the owner widens the policy, the invite may name it.
    await phone.scopes.define('health', { kinds: ['phone', 'glasses', 'car'] })
    const { dev: second } = await pair(phone, 'car', ['personal', 'location', 'health'])
    expect(second.scopes.available().sort()).toEqual(['health', 'local', 'location', 'personal'])
  })
})

describe('revocation', () => {
  it('a revoked car reads nothing written afterwards, even holding the sealed logs; the others carry on', async () => {
    const { phone } = await ownerAndNet()
    const pcDevice = (await fleet.open('pc')).dev
    const { dev: glasses } = await pair(phone, 'glasses')
    const { dev: car } = await pair(phone, 'car', ['personal', 'location'])
    const before = await phone.memory.remember({ text: 'Before the revocation' })
    await converge([phone, pcDevice, glasses, car], net)
    expect(car.memory.get(before.id)?.text).toBe('Before the revocation')

    const revoked: string[] = []
    car.on('revoked', (e) => revoked.push(e.deviceId))
    await phone.devices.revoke(car.deviceId)
    await converge([phone, pcDevice, glasses, car], net)
    expect(revoked).toEqual([car.deviceId])
    expect(phone.devices.list().find((d) => d.deviceId === car.deviceId)).toMatchObject({ revoked: true, scopes: [] })

    const after = await glasses.memory.remember({ text: 'AFTER-REVOCATION-9f1e' })
    const fromPc = await pcDevice.memory.remember({ text: 'pc after revocation' })
    await converge([phone, pcDevice, glasses], net)
    expect(phone.memory.get(after.id)?.text).toBe('AFTER-REVOCATION-9f1e')
    expect(glasses.memory.get(fromPc.id)?.text).toBe('pc after revocation')
    // Hand the car every byte of the new sealed log: it holds no key for the new epoch.
    const carPersonal = car.replica('personal')!
    Y.applyUpdate(carPersonal.outer, Y.encodeStateAsUpdate(phone.replica('personal')!.outer))
    expect(car.memory.get(after.id)).toBeUndefined()
    expect(carPersonal.heldCount).toBeGreaterThan(0)
    // Old history stays readable for everyone else; the car's own old writes too.
    expect(glasses.memory.get(before.id)?.text).toBe('Before the revocation')
  })

  it('a device offline across two rotations catches up and reads everything it is granted', async () => {
    const { phone } = await ownerAndNet()
    const { dev: glasses, transport: glassesTransport } = await pair(phone, 'glasses')
    const { dev: car } = await pair(phone, 'car')
    const { dev: pc } = await pair(phone, 'pc')
    await converge([phone, glasses, car, pc], net)
    net.disconnect(glassesTransport)
    await phone.devices.revoke(car.deviceId)
    const m1 = await phone.memory.remember({ text: 'after first rotation' })
    await phone.devices.revoke(pc.deviceId)
    const m2 = await phone.memory.remember({ text: 'after second rotation', scope: 'health' })
    await converge([phone], net)
    net.reconnect(glassesTransport)
    await converge([phone, glasses], net)
    expect(glasses.memory.get(m1.id)?.text).toBe('after first rotation')
    expect(glasses.memory.get(m2.id)?.text).toBe('after second rotation')
    const later = await glasses.memory.remember({ text: 'glasses write under the newest epoch' })
    await converge([phone, glasses], net)
    expect(phone.memory.get(later.id)?.text).toBe('glasses write under the newest epoch')
  })
})

describe('forged statements', () => {
  it('a member forging a certificate, grant, revocation or lockbox changes nothing', async () => {
    const { phone } = await ownerAndNet()
    const { dev: car } = await pair(phone, 'car')
    const { dev: glasses } = await pair(phone, 'glasses')
    await converge([phone, car, glasses], net)
    const rejected: Array<{ code: number; key: string }> = []
    phone.registry.events.on('rejected', (e) => rejected.push(e))
    const rejectedOnCar: Array<{ code: number; key: string }> = []
    car.registry.events.on('rejected', (e) => rejectedOnCar.push(e))
    const rejectedEnvelopes: RejectedEvent[] = []
    phone.on('rejected', (e) => rejectedEnvelopes.push(e))

    // The car has no root key; it signs with a key of its own making.
    const fake = createAccountKeys()
    const stranger = createDeviceKeys()
    const registryOuter = car.replica('@registry')!.outer
    Y.transact(registryOuter, () => {
      const pub = publicStatementsMap(registryOuter)
      pub.set(`revoke/${glasses.deviceId}`, signRevocation(fake, { deviceId: glasses.deviceId, revokedAt: Date.now(), cutoffs: new Map() }))
      pub.set(`lockbox/${phone.roomId('health')}/0/${car.deviceId}`, issueLockbox(fake, { deviceId: car.deviceId, boxPublicKey: stranger.boxPublicKey }, phone.roomId('health'), 0, new Uint8Array(32)))
      pub.set(`cert/${stranger.deviceId}`, issueCertificate(fake, stranger, { kind: 'phone', name: 'evil', role: 'owner' }))
    })
    // Writing the private registry needs the root key too: the car's inner change is never sealed.
    car.replica('@registry')!.inner.transact(() => statementsMap(car.replica('@registry')!.inner).set(`grant/health/${car.deviceId}`, new Uint8Array([1, 2, 3])))
    await converge([phone, car, glasses], net)
    // The phone checks the forged revocation; only the car (the lockbox's addressee) checks the lockbox.
    expect(rejected.map((r) => [r.code, r.key.split('/')[0]])).toEqual([[RejectCode.BadSignature, 'revoke']])
    // (The car also refuses its own junk grant, which never leaves it: it cannot seal registry envelopes.)
    expect(rejectedOnCar.map((r) => [r.code, r.key.split('/')[0]]).sort()).toEqual([
      [RejectCode.Malformed, 'grant'],
      [RejectCode.BadSignature, 'lockbox'],
      [RejectCode.BadSignature, 'revoke'],
    ])
    expect(phone.devices.list().find((d) => d.deviceId === glasses.deviceId)?.revoked).toBe(false)
    expect(phone.devices.list().some((d) => d.deviceId === stranger.deviceId)).toBe(false)
    expect(car.scopes.available()).not.toContain('health')
    expect(glasses.memory.list()).toEqual([])
    const m = await phone.memory.remember({ text: 'still fine' })
    await converge([phone, car, glasses], net)
    expect(glasses.memory.get(m.id)?.text).toBe('still fine')
    // The forged statement is reported and counted on the device too; no envelope was refused.
    expect(rejectedEnvelopes.map((e) => [e.source, e.code, e.scope])).toEqual([['statement', RejectCode.BadSignature, '@registry']])
    expect(phone.rejectionCounts()).toEqual({ [RejectCode.BadSignature]: 1 })
  })
})

describe('recovery', () => {
  it('a recovery code restores owner rights on a fresh phone, which can revoke the lost one', async () => {
    fleet = await loopbackDevices(['phone'], { seed: 22, converge: false })
    net = fleet.net
    const { account } = fleet
    const lost = fleet.all[0]!
    const kept = await lost.memory.remember({ text: 'Passport number is in the safe', scope: 'payments' })
    await converge([lost], net)
    const code = account.exportRecoveryCode()
    expect(code).toMatch(/^([0-9A-Z]{4}-){13}[0-9A-Z]{3}$/)
    // One mistyped character is caught by the checksum (not a different account).
    const typo = code.slice(0, 10) + (code[10] === 'A' ? 'B' : 'A') + code.slice(11)
    await expect(createAccount({ recoveryCode: typo })).rejects.toThrow(/recovery code/)
    const restored = await createAccount({ recoveryCode: code.toLowerCase() })
    expect(restored.accountId).toBe(account.accountId)
    const phone = fleet.track((await openDevice(restored, net, 'phone')).dev)
    await converge([lost, phone], net)
    expect(phone.isOwner).toBe(true)
    expect(phone.memory.get(kept.id)?.text).toBe('Passport number is in the safe')
    await phone.devices.revoke(lost.deviceId)
    await converge([lost, phone], net)
    expect(phone.devices.list().find((d) => d.deviceId === lost.deviceId)?.revoked).toBe(true)
  })
})

