/**
 * A forged snapshot cannot censor (THREAT_MODEL.md, "A member device"): a member seals, with its
 * own keys and the scope key it legitimately holds, a snapshot whose coverage claims another
 * device's seqs 1..2^40 and whose state is empty. Receivers cannot check such a claim, so it must
 * change nothing for that device: its later writes still apply everywhere, compaction does not
 * delete them from anyone's log, and a relay that withholds one of them is still noticed.
 */
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { createAccount, RejectCode } from '../../../src/index.js'
import { EnvelopeType } from '../../../src/crypto/index.js'
import { SeqSet } from '../../../src/sync/seq-set.js'
import { encodeSnapshot } from '../../../src/sync/snapshot.js'
import { logContains } from '../../helpers/devices.js'
import { caughtUp, deviceKeysOf, eventually, forgeEnvelope, IntegrityFixture, scopeKey, sleep, until } from '../../helpers/integrity.js'

let fixture: IntegrityFixture
afterEach(async () => {
  await fixture?.close()
})

describe('a member forges a snapshot claiming another device’s seqs', () => {
  it('changes nothing for that device: its writes apply everywhere, survive compaction, and withholding is still noticed', async () => {
    fixture = await IntegrityFixture.start()
    const account = await createAccount()
    const sync = { lagTimeoutMs: 300 }
    const phone = await fixture.owner(account, 'phone', { sync })
    const pc = await fixture.owner(account, 'pc', { sync })
    const car = await fixture.member(phone.dev, 'car', { scopes: ['personal', 'location'], sync })
    const receivers = [pc, car]
    const first = await phone.dev.memory.remember({ text: 'before the forgery' })
    await until(() => receivers.every((d) => d.dev.memory.get(first.id) !== undefined), 10_000, 'first write everywhere')

    // The car's own keys (from its store) and the personal key it holds: an authentic envelope.
    const carKeys = await deviceKeysOf(car.storage)
    const personal = phone.dev.roomId('personal')
    const coverage = new Map<string, SeqSet>()
    const claimed = new SeqSet()
    claimed.addRange(1, 2 ** 40)
    coverage.set(phone.dev.deviceId, claimed)
    const forged = forgeEnvelope({
      keys: carKeys,
      roomId: personal,
      type: EnvelopeType.Snapshot,
      epoch: 0,
      seq: 1_000_000,
      key: scopeKey(account, 'personal', 0),
      plaintext: encodeSnapshot({ coverage, state: Y.encodeStateAsUpdate(new Y.Doc()) }),
    })
    const room = fixture.relay.room(personal)
    room.inject([forged])
    await until(() => [phone, ...receivers].every((d) => caughtUp(d.dev.replica('personal')!.outer, room.doc)), 10_000, 'the forgery on every device')

    const markers = ['AFTER-FORGERY-1', 'AFTER-FORGERY-2']
    const later = [await phone.dev.memory.remember({ text: markers[0]! }), await phone.dev.memory.remember({ text: markers[1]! })]
    await eventually(() => receivers.every((d) => later.every((m) => d.dev.memory.get(m.id) !== undefined)), 8_000)
    for (const d of receivers) {
      expect.soft(later.filter((m) => d.dev.memory.get(m.id) !== undefined).length, `${d.kind} applies the phone’s later writes`).toBe(2)
      const replays = d.rejected.filter((e) => e.code === RejectCode.Replay && e.senderId === phone.dev.deviceId)
      expect.soft(replays.length, `${d.kind} refuses none of the phone’s envelopes as replays`).toBe(0)
    }

    // A compaction on the pc (forget compacts at once) must not drop the phone's entries unread.
    const scratch = await pc.dev.memory.remember({ text: 'scratch' })
    await pc.dev.memory.forget(scratch.id)
    await until(() => caughtUp(room.doc, pc.dev.replica('personal')!.outer), 10_000, 'the pc’s compaction at the relay')
    await sleep(300)
    for (const marker of markers) {
      expect.soft(logContains(room.doc, account, 'personal', marker), `the relay’s log still carries ${marker}`).toBe(true)
      for (const d of [phone, ...receivers]) {
        expect.soft(logContains(d.dev.replica('personal')!.outer, account, 'personal', marker), `${d.kind}’s log still carries ${marker}`).toBe(true)
      }
    }

    // The relay withholds the phone's next envelope: every receiver still notices.
    fixture.relay.withhold({ roomId: personal, from: phone.dev.deviceId })
    await phone.dev.memory.remember({ text: 'withheld by the relay' })
    const behind = (d: typeof pc) => d.lags.some((e) => e.state === 'behind' && e.scope === 'personal' && e.deviceId === phone.dev.deviceId)
    await eventually(() => receivers.every(behind), 5_000)
    for (const d of receivers) expect.soft(behind(d), `${d.kind} reports sync-lag behind the phone`).toBe(true)
  })
})
