/**
 * Awareness states through `openPresence` (src/sync/presence.ts, WIRE.md "Presence and seq
 * announcements"): never throws; the result is opened, refused with a RejectCode, or held (4, 8)
 * naming the sender. Opened ones then go through `PresenceSeqs.check`.
 *
 * Input layout: `u8 form · payload`. Form 0: the payload is a presence envelope, put in the state
 * as `{ e: base64url }` (mutated envelopes, envelopes whose signed part was mutated and signed
 * again, presence plaintexts mutated and sealed again). Form 1: the payload is the state's JSON
 * text (as y-protocols hands it over after `JSON.parse`), mutated structurally.
 *
 * @module
 */
import { EnvelopeType } from '../../../src/crypto/index.js'
import { openPresence, PresenceSeqs, sealPresence, type PresenceKeys } from '../../../src/sync/presence.js'
import { fromUtf8, toBase64Url, utf8 } from '../../../src/util/bytes.js'
import { fixture } from '../fixture.js'
import { mutateJson, mutateJsonText, toText } from '../json-mutators.js'
import { int, pick, setupRng, weighted } from '../rng.js'
import { checkedOutcome, expectThat, isRejectCode, PropertyViolation, refusedLabel, type Target } from '../target.js'
import { envelopeSamples, generateEnvelope } from './envelopes.js'

function framed(form: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1)
  out[0] = form
  out.set(payload, 1)
  return out
}

export const presenceTarget: Target = {
  name: 'presence',
  description: 'openPresence on awareness states, then PresenceSeqs.check (src/sync/presence.ts)',
  weight: 8,
  async setup(seed) {
    const fx = fixture(seed)
    const gen0 = setupRng(seed, 'presence')
    const samples = envelopeSamples(gen0, fx)
    const states = [
      sealPresence({ roomId: fx.roomId, epoch: 0, key: fx.key, sender: fx.device.deviceIdBytes, signSecretKey: fx.device.signSecretKey, seq: 1_800_000_000_000, payload: { at: 1, activity: 'cycling', logSeq: 3 } }),
      sealPresence({ roomId: fx.roomId, epoch: 0, key: fx.key, sender: fx.member.deviceIdBytes, signSecretKey: fx.member.signSecretKey, seq: 5, payload: { at: 2 } }),
    ]
    const keys: PresenceKeys = {
      roomId: fx.roomId,
      sender(senderId) {
        if (senderId === fx.device.deviceId) return { status: 'known', signPublicKey: fx.device.signPublicKey }
        if (senderId === fx.member.deviceId) return { status: 'known', signPublicKey: fx.member.signPublicKey }
        if (senderId === fx.revoked.deviceId) return { status: 'revoked' }
        return { status: 'unknown' }
      },
      // Epoch 1 has two concurrent starts' keys; only the second opens anything.
      epochKeys: (epoch) => (epoch === 0 ? [fx.key] : epoch === 1 ? [fx.otherKey, fx.key] : []),
    }
    const seqs = new PresenceSeqs()
    return {
      generate(gen) {
        return weighted<() => Uint8Array>(gen, [
          [6, () => framed(0, generateEnvelope(gen, fx, samples, pick(gen, [EnvelopeType.Presence, EnvelopeType.Presence, EnvelopeType.Presence, EnvelopeType.Update])))],
          [3, () => framed(1, utf8(toText(gen, mutateJson(gen, pick(gen, states)))))],
          [1, () => framed(1, utf8(mutateJsonText(gen, JSON.stringify(pick(gen, states)))))],
          [1, () => framed(1, utf8(pick(gen, ['null', '[]', '{}', '{"e":null}', '{"e":""}', `{"e":"${'A'.repeat(int(gen, 4090, 4100))}"}`])))],
        ])()
      },
      run(input) {
        let state: unknown
        if (input[0] === 1) {
          try {
            state = JSON.parse(fromUtf8(input.subarray(1)))
          } catch {
            // y-protocols would have refused the awareness update before presence sees it.
            return 'not JSON'
          }
        } else {
          state = { e: toBase64Url(input.subarray(1)) }
        }
        const result = openPresence(state, keys)
        if (!result.ok && 'held' in result) {
          expectThat(isRejectCode(result.code) && (result.code === 4 || result.code === 8), `held with code ${result.code}`)
          expectThat(typeof result.senderId === 'string' && result.senderId.length === 32, 'held without a sender id')
          return `held ${refusedLabel(result.code).slice('refused '.length)}`
        }
        const label = checkedOutcome(result, 'openPresence')
        if (!result.ok) return label
        const verdict = seqs.check(result.value)
        if (!['new', 'same', 'stale', 'replay'].includes(verdict)) throw new PropertyViolation(`PresenceSeqs.check said ${String(verdict)}`)
        const { payload } = result.value
        expectThat(Number.isSafeInteger(payload.at) && (payload.activity?.length ?? 0) <= 200 && (payload.activeSessionId?.length ?? 0) <= 200, 'opened presence out of bounds')
        return `accepted ${verdict}`
      },
    }
  },
}
