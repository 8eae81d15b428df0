/**
 * Junk without keys (THREAT_MODEL.md, "The relay"): a relay holds no key, but it can put
 * structurally valid envelopes naming senders nobody knows into a room. A device holds such
 * envelopes (a certificate may still be on its way) — but only a bounded number and bytes per
 * room, refusing the rest with code 16 (`HoldLimit`), and it drops them once the hold time passes
 * without the registry vouching for their senders. Its store stays small throughout.
 */
import { afterEach, describe, expect, it, onTestFailed } from 'vitest'
import * as prng from 'lib0/prng'
import { createAccount, RejectCode } from '../../../src/index.js'
import { createDeviceKeys, EnvelopeType } from '../../../src/crypto/index.js'
import { caughtUp, eventually, eventuallyAsync, forgeEnvelope, IntegrityFixture, sleep, storedBytes, until, type IntegritySyncOptions } from '../../helpers/integrity.js'

let fixture: IntegrityFixture
afterEach(async () => {
  await fixture?.close()
})

const JUNK_COUNT = 300
const JUNK_BYTES = 10_000
const HOLD_TIMEOUT_MS = 1_000
const STORE_LIMIT = 1.5 * 1024 * 1024

describe('a keyless relay floods a room with envelopes from unknown senders', () => {
  it('the device holds a bounded number, refuses the rest with code 16, sweeps them after the hold time, and its store stays small', async () => {
    const seed = Number(process.env.CONTEXTSYNC_SEED ?? 0x5eed16)
    onTestFailed(() => console.error(`integrity-holding: junk drawn with seed ${seed} (CONTEXTSYNC_SEED=${seed} to replay)`))
    fixture = await IntegrityFixture.start()
    const account = await createAccount()
    const sync: IntegritySyncOptions = { hold: { timeoutMs: HOLD_TIMEOUT_MS } }
    const phone = await fixture.owner(account, 'phone', { sync })
    const personal = phone.dev.roomId('personal')
    const kept = await phone.dev.memory.remember({ text: 'a real memory among the junk' })

    const random = prng.create(seed)
    const junk: Uint8Array[] = []
    for (let i = 0; i < JUNK_COUNT; i++) {
      const stranger = createDeviceKeys()
      junk.push(
        forgeEnvelope({
          keys: stranger,
          roomId: personal,
          type: EnvelopeType.Update,
          epoch: 0,
          seq: 1,
          key: prng.uint8Array(random, 32),
          plaintext: prng.uint8Array(random, JUNK_BYTES),
        }),
      )
    }
    const room = fixture.relay.room(personal)
    for (let i = 0; i < junk.length; i += 50) room.inject(junk.slice(i, i + 50))

    // Every junk envelope reached the device (it opens each as it integrates it).
    const replica = phone.dev.replica('personal')!
    await until(() => caughtUp(replica.outer, room.doc), 20_000, `all ${JUNK_COUNT} junk envelopes on the phone`)
    await phone.dev.flush()
    const storeBytes = () => storedBytes(phone.storage, ['replica', personal])

    expect.soft(replica.heldCount, 'envelopes held for an unknown sender (cap 64)').toBeLessThanOrEqual(64)
    expect.soft(phone.dev.rejectionCounts()[RejectCode.HoldLimit] ?? 0, 'refused with code 16').toBeGreaterThanOrEqual(JUNK_COUNT - 64)
    const small = await eventuallyAsync(async () => (await storeBytes()) < STORE_LIMIT, 5_000)
    expect.soft(small, `bytes the store keeps for the room (${await storeBytes()}) stay under ${STORE_LIMIT}`).toBe(true)

    // Past the hold time the registry never vouched for them: swept, counted, store still small.
    await sleep(HOLD_TIMEOUT_MS + 500)
    const swept = await eventually(() => replica.heldCount === 0, 5_000)
    expect.soft(swept, `held envelopes after the hold time (${replica.heldCount})`).toBe(true)
    expect.soft(phone.dev.rejectionCounts()[RejectCode.HoldLimit] ?? 0, 'every junk envelope ends refused with code 16').toBeGreaterThanOrEqual(JUNK_COUNT)
    const stillSmall = await eventuallyAsync(async () => (await storeBytes()) < STORE_LIMIT, 5_000)
    expect.soft(stillSmall, `bytes the store keeps after the sweep (${await storeBytes()})`).toBe(true)
    expect(phone.dev.memory.get(kept.id)?.text).toBe('a real memory among the junk')
  })
})
