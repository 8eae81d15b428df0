/**
 * Root-signed statements (WIRE.md "Signed statements") through every verifier: certificates (1),
 * relay passes (2, 13), revocations (3, 8), scope definitions (4), grants (5, 11), lockboxes (6,
 * 10), epoch starts (7, 9) and device terms (12) — `verifyStatement`, the verifier of the statement's type, one other
 * verifier, `lockboxRecipient` and `openLockbox`. None may throw; refusals carry a RejectCode.
 *
 * Mutated bodies are signed again with the campaign's account root, so they get past the
 * signature and reach the body readers and their bounds (4096 rooms, 65 536 ranges per cutoff,
 * 262 144 in all, 4096 recipients, 64 kinds).
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import {
  issueLockbox,
  issueRelayPass,
  lockboxRecipient,
  openLockbox,
  signDeviceTerm,
  signEndCutoff,
  signEpochStart,
  signGrant,
  signRevocation,
  signScopeDefinition,
  signStatement,
  signTypedStatement,
  StatementType,
  verifyCertificate,
  verifyDeviceTerm,
  verifyEndCutoff,
  verifyEpochStart,
  verifyGrant,
  verifyLockbox,
  verifyRelayPass,
  verifyRevocation,
  verifyScopeDefinition,
  verifyStatement,
  type AccountKeys,
  type Checked,
} from '../../../src/crypto/index.js'
import { MAX_CUTOFF_RANGES, MAX_CUTOFF_ROOMS, MAX_CUTOFF_TOTAL_RANGES, MAX_EPOCH_RECIPIENTS } from '../../../src/crypto/grants.js'
import { SeqSet } from '../../../src/sync/seq-set.js'
import { fixture, FUZZ_NOW } from '../fixture.js'
import { HUGE_VALUES, mutate, randomInput } from '../mutators.js'
import { bytes, chance, int, pick, seededBytes, weighted, type Rng } from '../rng.js'
import { checkedOutcome, expectThat, type Target } from '../target.js'
import { writeCraftedSeqSet } from './crafted.js'

type Verifier = (account: AccountKeys, bytes: Uint8Array) => Checked<unknown>

const VERIFIERS: Record<number, Verifier> = {
  [StatementType.DeviceCertificate]: verifyCertificate,
  [StatementType.RelayPass]: verifyRelayPass,
  [StatementType.Revocation]: verifyRevocation,
  [StatementType.ScopeDefinition]: verifyScopeDefinition,
  [StatementType.Grant]: verifyGrant,
  [StatementType.Lockbox]: verifyLockbox,
  [StatementType.EpochStart]: verifyEpochStart,
  [StatementType.RevocationV2]: verifyRevocation,
  [StatementType.EpochStartV2]: verifyEpochStart,
  [StatementType.LockboxV2]: verifyLockbox,
  [StatementType.GrantV2]: verifyGrant,
  [StatementType.DeviceTerm]: verifyDeviceTerm,
  [StatementType.RelayPassV2]: verifyRelayPass,
  [StatementType.EndCutoff]: verifyEndCutoff,
}
const ALL_VERIFIERS = Object.values(VERIFIERS)

/** `u8 version · u8 type · varbytes body` of a statement, or undefined when it does not split so. */
function split(statement: Uint8Array): { type: number; body: Uint8Array } | undefined {
  try {
    const dec = decoding.createDecoder(statement)
    decoding.readUint8(dec)
    const type = decoding.readUint8(dec)
    return { type, body: decoding.readVarUint8Array(dec).slice() }
  } catch {
    return undefined
  }
}

/** A revocation body (type 8) with counts near or past its bounds. */
function craftedRevocationBody(gen: Rng, deviceId: Uint8Array): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8Array(enc, deviceId)
  encoding.writeVarUint(enc, FUZZ_NOW)
  const rooms = weighted<number>(gen, [
    [6, int(gen, 0, 4)],
    [1, MAX_CUTOFF_ROOMS + 1],
    [2, pick(gen, HUGE_VALUES)],
  ])
  encoding.writeVarUint(enc, rooms)
  const written = Math.min(rooms, int(gen, 0, 5))
  // Sometimes cutoffs large enough to run into the per-revocation total.
  const big = chance(gen, 0.01)
  for (let i = 0; i < written; i++) {
    encoding.writeVarString(enc, chance(gen, 0.9) ? `room-${i}` : 'room-0')
    encoding.writeVarUint(enc, int(gen, 0, 3))
    if (big) writeCraftedSeqSet(gen, enc, MAX_CUTOFF_RANGES, MAX_CUTOFF_RANGES)
    else writeCraftedSeqSet(gen, enc, chance(gen, 0.3) ? pick(gen, [MAX_CUTOFF_RANGES, MAX_CUTOFF_RANGES + 1, MAX_CUTOFF_TOTAL_RANGES + 1]) : undefined)
  }
  return encoding.toUint8Array(enc)
}

export const statementsTarget: Target = {
  name: 'statements',
  description: 'verifyStatement and every typed verifier: certificates, passes 2/13, revocations 3/8, scopes, grants 5/11, lockboxes 6/10, epoch starts 7/9, device terms, end cutoffs',
  weight: 16,
  async setup(seed) {
    const fx = fixture(seed)
    const { account } = fx
    const seqs = SeqSet.fromRanges([[1, 40], [45, 45], [100, 180]])
    const salt = seededBytes(seed, 'salt')
    const samples: Uint8Array[] = [
      fx.certificate,
      fx.memberCertificate,
      fx.ownerPass,
      fx.memberPass,
      signRevocation(account, {
        deviceId: fx.revoked.deviceId,
        revokedAt: FUZZ_NOW,
        cutoffs: new Map([
          [fx.roomId, { epoch: 1, seqs }],
          [fx.keyring.roomId('location'), { epoch: 2, seqs: SeqSet.fromRanges([[3, 9]]) }],
        ]),
      }),
      signTypedStatement(account, StatementType.Revocation, (enc) => {
        encoding.writeUint8Array(enc, fx.revoked.deviceIdBytes)
        encoding.writeVarUint(enc, FUZZ_NOW)
        encoding.writeVarUint(enc, 1)
        encoding.writeVarString(enc, fx.roomId)
        encoding.writeVarUint(enc, 1)
        encoding.writeVarUint(enc, 77)
      }),
      signScopeDefinition(account, { name: 'family', roomId: fx.keyring.roomId('family'), kinds: ['phone', 'pc', 'car'], retentionMs: 86_400_000, definedAt: FUZZ_NOW }),
      signGrant(account, { scope: 'health', deviceId: fx.member.deviceId, grantedAt: FUZZ_NOW }),
      signGrant(account, { scope: 'health', deviceId: fx.member.deviceId, grantedAt: FUZZ_NOW, until: FUZZ_NOW + 86_400_000 }),
      signDeviceTerm(account, { deviceId: fx.member.deviceId, until: FUZZ_NOW + 86_400_000, issuedAt: FUZZ_NOW }),
      signEndCutoff(account, { deviceId: fx.member.deviceId, roomId: fx.roomId, endedAt: FUZZ_NOW, epoch: 1, seqs }),
      issueRelayPass(account, fx.member, { rooms: [fx.roomId, fx.keyring.roomId('location')], issuedAt: FUZZ_NOW, until: FUZZ_NOW + 3_600_000, roomsUntil: { [fx.roomId]: FUZZ_NOW + 60_000 } }),
      signEpochStart(account, { roomId: fx.roomId, epoch: 2, startedAt: FUZZ_NOW, salt, recipients: [fx.member.deviceId, fx.device.deviceId], excluded: [fx.revoked.deviceId] }),
      signEpochStart(account, { roomId: fx.roomId, epoch: 1, startedAt: FUZZ_NOW }),
      issueLockbox(account, { deviceId: fx.device.deviceId, boxPublicKey: fx.device.boxPublicKey }, fx.roomId, 2, fx.key, salt),
      issueLockbox(account, { deviceId: fx.member.deviceId, boxPublicKey: fx.member.boxPublicKey }, fx.roomId, 0, fx.key),
    ]
    const bodies = samples.map((s) => split(s)!).filter((s) => s !== undefined)
    return {
      generate(gen) {
        return weighted<() => Uint8Array>(gen, [
          [4, () => mutate(gen, pick(gen, samples), samples)],
          [
            6,
            () => {
              const { type, body } = pick(gen, bodies)
              const newType = chance(gen, 0.93) ? type : int(gen, 0, 15)
              return signStatement(account, newType as StatementType, mutate(gen, body, bodies.map((b) => b.body)))
            },
          ],
          [2, () => signStatement(account, StatementType.RevocationV2, craftedRevocationBody(gen, fx.revoked.deviceIdBytes))],
          [1, () => signStatement(account, pick(gen, Object.values(StatementType)), bytes(gen, int(gen, 0, 80)))],
          [1, () => randomInput(gen, [1])],
        ])()
      },
      run(input) {
        const outer = checkedOutcome(verifyStatement(account, input), 'verifyStatement')
        const type = input[1] ?? -1
        const typed = VERIFIERS[type]
        let label = outer
        if (typed) {
          const result = typed(account, input)
          label = `type ${type} ${checkedOutcome(result, `verifier of type ${type}`)}`
          if (result.ok) checkAccepted(type, result.value)
        }
        // Any verifier on a statement of another type refuses it with a code, never a throw.
        checkedOutcome(ALL_VERIFIERS[input.length % ALL_VERIFIERS.length]!(account, input), 'a verifier of another type')
        const recipient = lockboxRecipient(input)
        expectThat(recipient === undefined || /^[0-9a-f]{32}$/.test(recipient), `lockboxRecipient returned ${String(recipient)}`)
        if (type === StatementType.Lockbox || type === StatementType.LockboxV2) {
          const lockbox = verifyLockbox(account, input)
          if (lockbox.ok) {
            const key = openLockbox(lockbox.value, fx.device)
            expectThat(key === undefined || key.length === 32, 'openLockbox returned a key of the wrong length')
          }
        }
        return label
      },
    }
  },
}

/** Bounds the readers promise on what they accept. */
function checkAccepted(type: number, value: unknown): void {
  if (type === StatementType.RevocationV2) {
    const { cutoffs } = value as { cutoffs: Map<string, { seqs: SeqSet; epoch: number }> }
    expectThat(cutoffs.size <= MAX_CUTOFF_ROOMS, `accepted a revocation of ${cutoffs.size} rooms`)
    let total = 0
    for (const cutoff of cutoffs.values()) {
      expectThat(cutoff.seqs.rangeCount() <= MAX_CUTOFF_RANGES, 'accepted a cutoff past its ranges bound')
      total += cutoff.seqs.rangeCount()
    }
    expectThat(total <= MAX_CUTOFF_TOTAL_RANGES, 'accepted a revocation past its total ranges bound')
  } else if (type === StatementType.EndCutoff) {
    const { seqs } = value as { seqs: SeqSet }
    expectThat(seqs.rangeCount() <= MAX_CUTOFF_RANGES, 'accepted an end cutoff past its ranges bound')
  } else if (type === StatementType.EpochStartV2) {
    const start = value as { recipients?: string[]; excluded?: string[]; salt?: Uint8Array }
    expectThat((start.recipients?.length ?? 0) <= MAX_EPOCH_RECIPIENTS && (start.excluded?.length ?? 0) <= MAX_EPOCH_RECIPIENTS, 'accepted too many recipients')
    expectThat(start.salt?.length === 32, 'accepted an epoch start without a 32-byte salt')
  }
}
