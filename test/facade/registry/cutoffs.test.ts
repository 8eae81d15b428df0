/**
 * Revocation cutoffs (THREAT_MODEL "A revoked device"): a revocation lists, per room, the exact
 * seqs of the revoked device that the revoking owner applied. Anything else from it — a seq in a
 * gap, a room the owner never held, a new epoch — is refused with code 5 on every device.
 */
import { describe, expect, it } from 'vitest'
import { ContextSync, RejectCode, type LoopbackNetwork, type RejectedEvent } from '../../../src/index.js'
import { ownerKeyring, signTypedStatement, StatementType } from '../../../src/crypto/index.js'
import { accountKeys } from '../../../src/facade/account.js'
import { revocationKey, statementsMap } from '../../../src/crdt/registry.js'
import * as encoding from 'lib0/encoding'
import { fromHex } from '../../../src/util/bytes.js'
import { converge } from '../../helpers/devices.js'
import { deviceKeysOf, forgeEnvelope, memoryUpdate } from '../../helpers/forge.js'
import { inject, pairMember } from '../../helpers/keys.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

/** Phone and PC (owners; the PC holds no `location`), glasses and a car (members). */
async function setup(seed: number) {
  const fleet = await loopbackDevices(['phone', 'pc'], { seed, converge: false })
  net = fleet.net
  const [phone, pc] = fleet.all as [ContextSync, ContextSync]
  const glasses = await pairMember(phone, net, 'glasses')
  const car = await pairMember(phone, net, 'car', { scopes: ['personal', 'location'] })
  fleet.track(glasses.dev)
  fleet.track(car.dev)
  await converge([phone, pc, glasses.dev, car.dev], net)
  const { account } = fleet
  return { account, fleet, phone, pc, glasses, car, keyring: ownerKeyring(accountKeys(account)) }
}

describe('revocation cutoffs', () => {
  it('a revoked car injecting in seq gaps, under old epochs and in rooms the revoking owner never held is refused everywhere', async () => {
    const { fleet, phone, pc, glasses, car, keyring } = await setup(41)
    await car.dev.memory.remember({ text: 'car personal 1' })
    await car.dev.memory.remember({ text: 'car location 1', scope: 'location' })
    await converge([phone, pc, glasses.dev, car.dev], net)
    // A restart moves the car to a new seq block: its seqs now have a gap.
    await car.dev.close()
    const carAgain = fleet.track(await ContextSync.open({ storage: car.storage, transports: [net.transport({ name: 'car-again' })] }))
    const afterRestart = await carAgain.memory.remember({ text: 'car personal after restart' })
    await converge([phone, pc, glasses.dev, carAgain], net)
    const carSeqs = phone.replica('personal')!.appliedSeqs().get(carAgain.deviceId)!.toRanges()
    expect(carSeqs.length).toBe(2) // [1,1] and [1025+,…]: a gap in between

    // The PC revokes the car. It holds `personal` (it applied the car's seqs) but not `location`.
    await pc.devices.revoke(carAgain.deviceId)
    await converge([phone, pc, glasses.dev], net)
    expect(phone.registry.revocation(carAgain.deviceId)).toBeDefined()
    expect(glasses.dev.registry.revocation(carAgain.deviceId)).toBeDefined()

    const rejected: Array<[string, RejectedEvent]> = []
    for (const [name, dev] of [['phone', phone], ['pc', pc], ['glasses', glasses.dev]] as const) dev.on('rejected', (e) => rejected.push([name, e]))
    const keys = await deviceKeysOf(car.storage)
    const gapSeq = carSeqs[0]![1] + 10
    const forged: Array<[scope: string, seq: number, text: string]> = [
      ['personal', gapSeq, 'FORGED-IN-A-GAP'],
      ['location', 2, 'FORGED-IN-AN-UNHELD-ROOM'],
      ['location', 900, 'FORGED-BELOW-ANY-MAXSEQ'],
    ]
    for (const [scope, seq, text] of forged) {
      const bytes = forgeEnvelope({ keys, roomId: keyring.roomId(scope), epoch: 0, seq, key: keyring.epochKey(scope, 0)!, plaintext: memoryUpdate({ id: `forged-${seq}-${scope}`, text, scope, sourceDeviceId: phone.deviceId }) })
      // Delivered once, by the relay, to the phone; the glasses and the PC get it by sync.
      inject(phone, scope, bytes)
    }
    await converge([phone, pc, glasses.dev], net)
    for (const dev of [phone, pc, glasses.dev]) {
      for (const [scope, seq] of forged) expect(dev.memory.get(`forged-${seq}-${scope}`), `${dev.kind} ${scope} ${seq}`).toBeUndefined()
    }
    expect(rejected.map(([name, e]) => [name, e.code, e.scope]).sort()).toEqual(
      [
        ['glasses', RejectCode.RevokedSender, 'location'],
        ['glasses', RejectCode.RevokedSender, 'location'],
        ['glasses', RejectCode.RevokedSender, 'personal'],
        ['phone', RejectCode.RevokedSender, 'location'],
        ['phone', RejectCode.RevokedSender, 'location'],
        ['pc', RejectCode.RevokedSender, 'personal'],
        ['phone', RejectCode.RevokedSender, 'personal'],
      ].sort(),
    )
    // What the PC applied before the revocation stays history everywhere.
    expect(glasses.dev.memory.get(afterRestart.id)?.text).toBe('car personal after restart')
    const directory = phone.registry.directoryFor('personal', keyring.roomId('personal'))
    expect(directory.resolve(carAgain.deviceId, carSeqs[1]![0], 0).status).toBe('known')
    expect(directory.resolve(carAgain.deviceId, gapSeq, 0).status).toBe('revoked')
    expect(phone.registry.directoryFor('location', keyring.roomId('location')).resolve(carAgain.deviceId, 1, 0).status).toBe('revoked')
  })

  it('a legacy revocation (type 3, maxSeq cutoffs) still revokes, and accepts nothing from the device', async () => {
    const { account, phone, glasses, car, keyring } = await setup(42)
    await car.dev.memory.remember({ text: 'before' })
    await converge([phone, glasses.dev, car.dev], net)
    // What an older build wrote: per room `epoch · maxSeq`, here generous ones.
    const legacy = signTypedStatement(accountKeys(account), StatementType.Revocation, (enc) => {
      encoding.writeUint8Array(enc, fromHex(car.dev.deviceId)!)
      encoding.writeVarUint(enc, Date.now())
      encoding.writeVarUint(enc, 1)
      encoding.writeVarString(enc, keyring.roomId('personal'))
      encoding.writeVarUint(enc, 5)
      encoding.writeVarUint(enc, 1_000_000)
    })
    const registry = phone.replica('@registry')!
    registry.inner.transact(() => statementsMap(registry.inner).set(revocationKey(car.dev.deviceId), legacy))
    await converge([phone, glasses.dev], net)
    for (const dev of [phone, glasses.dev]) {
      expect(dev.registry.revocation(car.dev.deviceId), dev.kind).toBeDefined()
      const directory = dev.registry.directoryFor('personal', keyring.roomId('personal'))
      expect(directory.resolve(car.dev.deviceId, 1, 0).status).toBe('revoked')
      expect(directory.resolve(car.dev.deviceId, 500, 0).status).toBe('revoked')
    }
  })
})
