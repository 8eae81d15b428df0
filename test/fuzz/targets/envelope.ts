/**
 * Envelopes through the receiver's checks as `src/crypto/envelope.ts` exposes them
 * (WIRE.md "Envelope v1"): `parseEnvelope` (never throws, codes 1–3), then — for a sender the
 * fixture knows — `verifyEnvelope` / `decryptEnvelope` / `openEnvelope` (never throw; 7, 9), then
 * the payload decoder of the type: `decodeSnapshotChecked` (2, 11) or `decodePresence`.
 *
 * @module
 */
import * as Y from 'yjs'
import { decryptEnvelope, EnvelopeType, openEnvelope, parseEnvelope, RejectCode, verifyEnvelope } from '../../../src/crypto/index.js'
import { decodePresence } from '../../../src/sync/presence.js'
import { decodeSnapshotChecked } from '../../../src/sync/snapshot.js'
import { fixture } from '../fixture.js'
import { setupRng } from '../rng.js'
import { checkedOutcome, expectThat, refusedLabel, type Target } from '../target.js'
import { envelopeSamples, generateEnvelope } from './envelopes.js'
import { checkSnapshot } from './snapshot.js'

export const envelopeTarget: Target = {
  name: 'envelope',
  description: 'parseEnvelope → verifyEnvelope / decryptEnvelope / openEnvelope → payload decoders (src/crypto/envelope.ts)',
  weight: 14,
  async setup(seed) {
    const fx = fixture(seed)
    const samples = envelopeSamples(setupRng(seed, 'envelope'), fx)
    const senders = new Map([
      [fx.device.deviceId, fx.device.signPublicKey],
      [fx.member.deviceId, fx.member.signPublicKey],
    ])
    return {
      generate: (gen) => generateEnvelope(gen, fx, samples),
      run(input) {
        const parsed = parseEnvelope(input)
        const label = checkedOutcome(parsed, 'parseEnvelope')
        if (!parsed.ok) return label
        const env = parsed.value
        expectThat(Number.isSafeInteger(env.seq) && env.seq >= 1 && Number.isSafeInteger(env.epoch) && env.epoch >= 0, 'parsed seq/epoch out of range')
        expectThat(env.sender.length === 16 && env.nonce.length === 24 && env.signatureStart + 64 === input.length, 'parsed field lengths wrong')
        expectThat(env.headerEnd < env.signatureStart && env.ciphertext.length <= input.length, 'parsed offsets wrong')
        if (env.senderId === fx.revoked.deviceId) {
          // A revoked sender's envelope is still parsed and verified before it is refused.
          verifyEnvelope(env, fx.roomId, fx.revoked.signPublicKey)
          return refusedLabel(RejectCode.RevokedSender)
        }
        const signPublicKey = senders.get(env.senderId)
        if (!signPublicKey) return refusedLabel(RejectCode.UnknownSender)
        if (env.epoch !== 0) return refusedLabel(RejectCode.UnknownEpoch)
        // Keys of the wrong length must be refused by the primitives, not thrown on.
        expectThat(decryptEnvelope(env, fx.roomId, fx.key.subarray(0, 31)) === undefined, 'decrypted under a 31-byte key')
        const opened = openEnvelope(env, fx.roomId, signPublicKey, fx.key)
        const openLabel = checkedOutcome(opened, 'openEnvelope')
        if (!opened.ok) return openLabel
        const plaintext = opened.value
        if (env.type === EnvelopeType.Snapshot) return `snapshot ${checkSnapshot(decodeSnapshotChecked(plaintext))}`
        if (env.type === EnvelopeType.Presence) return decodePresence(plaintext) ? 'accepted presence' : refusedLabel(RejectCode.BadPayload)
        try {
          Y.decodeUpdate(plaintext)
        } catch {
          return refusedLabel(RejectCode.BadPayload)
        }
        return 'accepted update'
      },
    }
  },
}
