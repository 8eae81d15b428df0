/**
 * `AppliedLedger` (src/sync/applied-ledger.ts): the replica's own record of what it applied. What
 * the rest relies on: a snapshot's claims never count as applied, a copy of the applied seqs is a
 * copy, and compaction may delete only entries that were applied or refused — never held ones.
 */
import { describe, expect, it } from 'vitest'
import { EnvelopeType, type ParsedEnvelope } from '../../src/crypto/envelope.js'
import { AppliedLedger } from '../../src/sync/applied-ledger.js'
import { SeqSet } from '../../src/sync/seq-set.js'

function envelope(senderId: string, seq: number, epoch = 0, type: EnvelopeType = EnvelopeType.Update): ParsedEnvelope {
  return { senderId, seq, epoch, type } as ParsedEnvelope
}

function seqs(...values: number[]): SeqSet {
  const set = new SeqSet()
  for (const v of values) set.add(v)
  return set
}

describe('AppliedLedger', () => {
  it('counts a snapshot claim for gap detection but never as applied here', () => {
    const ledger = new AppliedLedger()
    ledger.recordApplied(new Uint8Array([1]), envelope('a', 1))
    ledger.addClaims('a', seqs(2, 3))
    expect(ledger.appliedHas('a', 1)).toBe(true)
    expect(ledger.appliedHas('a', 2)).toBe(false)
    expect(ledger.hasApplied('a', 2)).toBe(true)
    expect(ledger.maxApplied('a')).toBe(1)
    expect(ledger.coversApplied(new Map([['a', seqs(1)]]))).toBe(true)
    expect(ledger.coversApplied(new Map([['a', seqs(2, 3)]]))).toBe(false)
  })

  it('lets compaction delete applied and refused entries, never held or unknown ones', () => {
    const ledger = new AppliedLedger()
    const applied = new Uint8Array([1])
    const refused = new Uint8Array([2])
    const held = new Uint8Array([3])
    ledger.recordSealed(applied, 'me', 1, EnvelopeType.Update)
    ledger.entries.set(refused, { state: 'rejected' })
    ledger.entries.set(held, { state: 'held' })
    expect([applied, refused, held, new Uint8Array([4])].map((b) => ledger.isCovered(b))).toEqual([true, true, false, false])
  })

  it('tracks applied snapshots and the newest epoch per sender; appliedSeqs is a copy', () => {
    const ledger = new AppliedLedger()
    const snapshot = new Uint8Array([9])
    ledger.recordApplied(snapshot, envelope('a', 5, 2, EnvelopeType.Snapshot))
    ledger.recordApplied(new Uint8Array([8]), envelope('a', 6, 1))
    expect(ledger.snapshotEntries.has(snapshot)).toBe(true)
    expect(ledger.appliedEpochs.get('a')).toEqual({ epoch: 2, seq: 5 })
    const copy = ledger.appliedSeqs()
    copy.get('a')!.add(100)
    expect(ledger.appliedHas('a', 100)).toBe(false)
    // A republished copy is an applied entry but adds no seq.
    const republished = new Uint8Array([7])
    ledger.recordCopy(republished, envelope('b', 1))
    expect(ledger.appliedHas('b', 1)).toBe(false)
    expect(ledger.entries.get(republished)?.state).toBe('applied')
  })
})
