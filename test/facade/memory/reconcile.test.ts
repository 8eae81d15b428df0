import { describe, expect, it } from 'vitest'
import { ValidationError, type ContextSync, type LoopbackNetwork } from '../../../src/index.js'
import type { ReconcileDecision, ReconcileInput, RecallHit } from '../../../src/facade/memory-types.js'
import { converge } from '../../helpers/devices.js'
import { loopbackDevices } from '../../helpers/loopback-devices.js'

/** The network of the current test's devices. */
let net: LoopbackNetwork

async function pair(): Promise<[ContextSync, ContextSync]> {
  const fleet = await loopbackDevices(['phone', 'pc'], { seed: 101, converge: false })
  net = fleet.net
  return [fleet.all[0]!, fleet.all[1]!]
}

/** A stand-in for the host's LLM: records what it was shown, answers what the test says. */
function host(answer: (input: ReconcileInput, similar: RecallHit[]) => ReconcileDecision | Promise<ReconcileDecision>) {
  const calls: Array<{ input: ReconcileInput; similar: string[] }> = []
  const reconcile = async (input: ReconcileInput, similar: RecallHit[]) => {
    calls.push({ input, similar: similar.map((h) => h.item.text) })
    return answer(input, similar)
  }
  return { calls, reconcile }
}

describe('remember(input, { reconcile })', () => {
  it('shows the host the new memory and the most similar existing ones, and each answer does what it says', async () => {
    const [phone, pc] = await pair()
    const seat = await phone.memory.remember({ text: 'Prefers aisle seats on flights', kind: 'preference', tags: ['travel'] })
    const coffee = await phone.memory.remember({ text: 'Drinks coffee black', kind: 'preference', tags: ['food'] })
    const home = await phone.memory.remember({ text: 'Lives in Berlin', tags: ['home'] })
    await phone.memory.remember({ text: 'Walks the dog at 7', scope: 'work' })

    // ADD
    const add = host(() => ({ action: 'ADD' }))
    const added = await phone.memory.remember({ text: 'Allergic to peanuts', kind: 'fact', tags: ['food'] }, { reconcile: add.reconcile, candidates: 3 })
    expect(added.action).toBe('ADD')
    expect(added.item).toMatchObject({ text: 'Allergic to peanuts', tags: ['food'], source: { deviceId: phone.deviceId } })
    expect(add.calls[0]!.input).toMatchObject({ text: 'Allergic to peanuts', scope: 'personal', kind: 'fact', tags: ['food'] })
    expect(add.calls[0]!.input).not.toHaveProperty('id')

    // UPDATE (with merged text from the host)
    const update = host((_input, similar) => ({ action: 'UPDATE', id: similar[0]!.item.id, text: 'Prefers aisle seats, except on night flights' }))
    const updated = await phone.memory.remember({ text: 'Likes a window seat on night flights', tags: ['flights'] }, { reconcile: update.reconcile })
    expect(update.calls[0]!.similar[0]).toBe('Prefers aisle seats on flights')
    expect(updated).toMatchObject({ action: 'UPDATE', item: { id: seat.id, text: 'Prefers aisle seats, except on night flights', tags: ['travel', 'flights'] }, previous: { text: seat.text } })
    // The scope's other items were candidates; the work-scope item was not.
    expect(update.calls[0]!.similar).not.toContain('Walks the dog at 7')

    // SUPERSEDE
    const supersede = host(() => ({ action: 'SUPERSEDE', id: home.id }))
    const moved = await phone.memory.remember({ text: 'Lives in Lisbon', tags: ['home'] }, { reconcile: supersede.reconcile })
    expect(moved.action).toBe('SUPERSEDE')
    expect(moved.item).toMatchObject({ text: 'Lives in Lisbon', supersedes: home.id })
    expect(moved.previous?.id).toBe(home.id)

    // NOOP (with and without an id)
    const noop = host((_i, similar) => ({ action: 'NOOP', id: similar[0]!.item.id }))
    const same = await phone.memory.remember({ text: 'Drinks black coffee' }, { reconcile: noop.reconcile })
    expect(same).toEqual({ action: 'NOOP', item: expect.objectContaining({ id: coffee.id }) })
    const nothing = await phone.memory.remember({ text: 'Said hello' }, { reconcile: async () => ({ action: 'NOOP' }) })
    expect(nothing).toEqual({ action: 'NOOP', item: undefined })

    await converge([phone, pc], net)
    expect(pc.memory.list({ scope: 'personal' }).map((m) => m.text).sort()).toEqual(
      ['Allergic to peanuts', 'Drinks coffee black', 'Lives in Lisbon', 'Prefers aisle seats, except on night flights'].sort(),
    )
    expect(pc.memory.history(moved.item!.id).map((m) => m.text)).toEqual(['Lives in Berlin', 'Lives in Lisbon'])
    expect(pc.memory.recall({ text: 'hello', limit: 5 })).toEqual([])
  })

  it('passes embeddings to similarity search and the host', async () => {
    const [phone] = await pair()
    const a = await phone.memory.remember({ text: 'Birthday is in May', embedding: [1, 0, 0, 0] })
    await phone.memory.remember({ text: 'Sister is called Ana', embedding: [0, 1, 0, 0] })
    const h = host((_i, similar) => ({ action: 'NOOP', id: similar[0]!.item.id }))
    const result = await phone.memory.remember({ text: 'born 12 May', embedding: [0.9, 0.1, 0, 0] }, { reconcile: h.reconcile })
    expect(result.item?.id).toBe(a.id)
    expect(h.calls[0]!.similar[0]).toBe('Birthday is in May')
    expect([...h.calls[0]!.input.embedding!]).toEqual([...Float32Array.from([0.9, 0.1, 0, 0])])
  })

  it('refuses bad answers with ValidationError and writes nothing', async () => {
    const [phone] = await pair()
    const work = await phone.memory.remember({ text: 'Standup at 9', scope: 'work' })
    const v1 = await phone.memory.remember({ text: 'Old address' })
    await phone.memory.supersede(v1.id, { text: 'New address' })
    const before = phone.memory.list({ includeSuperseded: true }).length
    const bad = (answer: unknown) => phone.memory.remember({ text: 'Something new' }, { reconcile: async () => answer as ReconcileDecision })
    await expect(bad(undefined)).rejects.toThrow(/reconcile must resolve to \{ action: 'ADD' \}/)
    await expect(bad({ action: 'DELETE', id: v1.id })).rejects.toThrow(/got action "DELETE"/)
    await expect(bad({ action: 'UPDATE' })).rejects.toThrow(/reconcile UPDATE id must be a non-empty string id/)
    await expect(bad({ action: 'UPDATE', id: 'made-up' })).rejects.toThrow(/no such memory on this device/)
    await expect(bad({ action: 'UPDATE', id: work.id })).rejects.toThrow(/of scope 'work', but the new memory is in scope 'personal'/)
    await expect(bad({ action: 'UPDATE', id: v1.id, text: '' })).rejects.toThrow(/text must not be empty/)
    await expect(bad({ action: 'SUPERSEDE', id: v1.id })).rejects.toThrow(/already superseded/)
    await expect(bad({ action: 'NOOP', id: 42 })).rejects.toThrow(ValidationError)
    await expect(phone.memory.remember({ text: 'x' }, { reconcile: 'yes' as never })).rejects.toThrow(/reconcile must be a function/)
    // The host's own failure propagates untouched.
    await expect(phone.memory.remember({ text: 'x' }, { reconcile: async () => Promise.reject(new Error('LLM down')) })).rejects.toThrow('LLM down')
    expect(phone.memory.list({ includeSuperseded: true }).length).toBe(before)
  })
})
