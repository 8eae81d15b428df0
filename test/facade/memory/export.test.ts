import { afterEach, describe, expect, it } from 'vitest'
import { ContextSync, createAccount, memoryStorage, RejectCode, type Account, type MemoryItem, type RejectedEvent } from '../../../src/index.js'
import { accountKeys } from '../../../src/facade/account.js'
import { exportSigner } from '../../../src/facade/memory-file/export.js'
import { headerLine, memoryLine } from '../../../src/facade/memory-file/format.js'
import type { DeviceIdentity } from '../../../src/facade/identity.js'
import { createDeviceKeys, issueCertificate } from '../../../src/crypto/index.js'
import { converge } from '../../helpers/devices.js'
import { loopbackDevices, type LoopbackDevices } from '../../helpers/loopback-devices.js'

/** The current test's source phone and its network (closed when the test ends). */
let fleet: LoopbackDevices
/** Devices of other accounts, opened without a network. */
const open: ContextSync[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()))
})

async function source(): Promise<{ phone: ContextSync; items: MemoryItem[]; account: Account }> {
  fleet = await loopbackDevices(['phone'], { seed: 121, converge: false })
  const { account } = fleet
  const phone = fleet.all[0]!
  const s = phone.sessions.start()
  const a = await phone.memory.remember({ text: 'Prefers aisle seats', kind: 'preference', tags: ['travel'], confidence: 0.8, source: { sessionId: s.id } })
  const b = await phone.memory.remember({ text: 'Lives in Berlin', validFrom: 1_600_000_000_000, embedding: [0.5, -0.25, 1, 0] })
  const c = await phone.memory.supersede(b.id, { text: 'Lives in Lisbon', validFrom: 1_700_000_000_000, embedding: [0.25, 0.5, 1, 0], embeddingModel: 'm1' })
  await phone.memory.remember({ text: 'Only on the phone', scope: 'health' })
  return { phone, items: [a, phone.memory.get(b.id)!, c], account }
}

const lines = (text: string) => text.split('\n').filter((l) => l.length > 0)

describe('memory export / import', () => {
  it('refuses, whole, an export of its own account signed by a device revoked since', async () => {
    const { phone } = await source()
    const pc = (await fleet.open('pc')).dev
    await converge([phone, pc], fleet.net)
    const file = await pc.memory.export({ scope: 'personal' }).text()
    // Before the revocation the phone accepts the pc's export (every memory is already here).
    expect(await phone.memory.import(file)).toMatchObject({ imported: 0, skipped: 3, rejected: [] })
    await phone.devices.revoke(pc.deviceId)
    const report = await phone.memory.import(file)
    expect(report.imported).toBe(0)
    expect(report.skipped).toBe(0)
    expect(new Set(report.rejected.map((r) => r.code))).toEqual(new Set([RejectCode.RevokedSender]))
    expect(report.rejected).toHaveLength(lines(file).length)
  })

  it('exports signed JSONL; a fresh account trusting it imports it, verified on its own, idempotently', async () => {
    const { phone, items } = await source()
    const file = await phone.memory.export({ scope: 'personal' }).text()
    const [header, ...rest] = lines(file)
    expect(JSON.parse(header!)).toMatchObject({
      format: 'contextsync/memory-export',
      version: 2,
      accountId: phone.accountId,
      signer: phone.deviceId,
      scope: 'personal',
      count: 3,
    })
    expect(rest).toHaveLength(3)
    expect(file).not.toContain('Only on the phone')

    const fresh = await ContextSync.open({ account: await createAccount(), device: { kind: 'pc' }, storage: memoryStorage() })
    open.push(fresh)
    const trust = { trust: [phone.accountId] }
    const report = await fresh.memory.import(file, trust)
    expect(report).toEqual({ accountId: phone.accountId, signer: phone.deviceId, imported: 3, skipped: 0, rejected: [] })
    // Marked as the other account's; everything else as exported.
    for (const item of items) expect(fresh.memory.get(item.id)).toEqual({ ...item, source: { ...item.source, accountId: phone.accountId } })
    expect(fresh.memory.history(items[2]!.id).map((m) => m.text)).toEqual(['Lives in Berlin', 'Lives in Lisbon'])
    expect(fresh.memory.recall({ embedding: [0.25, 0.5, 1, 0], limit: 1 })[0]?.id).toBe(items[2]!.id)

    // Again: nothing new.
    expect(await fresh.memory.import(file, trust)).toMatchObject({ imported: 0, skipped: 3, rejected: [] })
    expect(fresh.memory.list({ includeSuperseded: true })).toHaveLength(3)
  })

  it('rejects a tampered line with a code and imports the rest; a bad header rejects everything', async () => {
    const { phone, items } = await source()
    const exported = lines(await phone.memory.export({ scope: 'personal' }).text())
    const tampered = [...exported]
    // Lines are in export order, which does not follow the order of writing: find the line.
    const at = tampered.findIndex((l) => l.includes('Lives in Berlin'))
    expect(at).toBeGreaterThan(0)
    tampered[at] = tampered[at]!.replace('Lives in Berlin', 'Lives in Paris')
    // Another line garbled in place (lines are bound to their position, so none is inserted).
    const garbled = at === 3 ? 1 : 3
    tampered[garbled] = '{"memory":'
    const bad = [
      [at + 1, RejectCode.BadSignature],
      [garbled + 1, RejectCode.Malformed],
    ].sort((x, y) => x[0]! - y[0]!) as Array<[number, RejectCode]>
    // …and after the last line, the two memories the signed header promises that never arrived.
    bad.push([5, RejectCode.Malformed])
    const fresh = await ContextSync.open({ account: await createAccount(), device: { kind: 'pc' }, storage: memoryStorage() })
    open.push(fresh)
    // As a stream of arbitrary chunks.
    const text = tampered.join('\n') + '\n'
    async function* chunks() {
      for (let i = 0; i < text.length; i += 37) yield new TextEncoder().encode(text.slice(i, i + 37))
    }
    const reported: RejectedEvent[] = []
    fresh.on('rejected', (e) => reported.push(e))
    const trust = { trust: [phone.accountId] }
    const report = await fresh.memory.import(chunks(), trust)
    expect(report.imported).toBe(1)
    // Refused lines are reported and counted like any refused input.
    expect(reported.map((e) => [e.source, e.line, e.code, e.senderId])).toEqual(bad.map(([line, code]) => ['import', line, code, phone.deviceId]))
    expect(fresh.rejectionCounts()).toEqual({ [RejectCode.BadSignature]: 1, [RejectCode.Malformed]: 2 })
    expect(report.rejected[2]!.reason).toMatch(/2 of its 3 memories missing/)
    expect(report.rejected).toEqual(bad.map(([line, code]) => ({ line, code, reason: expect.any(String) })))
    expect(fresh.memory.get(items[1]!.id)).toBeUndefined()
    expect(fresh.memory.list().map((m) => m.text).join()).not.toContain('Paris')

    // A header whose signer key was swapped: every line refused.
    const header = JSON.parse(exported[0]!) as Record<string, unknown>
    const other = JSON.parse(lines(await fresh.memory.export({ scope: 'personal' }).text())[0]!) as Record<string, unknown>
    const forged = [JSON.stringify({ ...header, signPublicKey: other.signPublicKey }), ...exported.slice(1)]
    const forgedReport = await fresh.memory.import(forged, trust)
    expect(forgedReport.imported).toBe(0)
    expect(forgedReport.rejected.map((r) => [r.line, r.code])).toEqual([
      [1, RejectCode.BadSignature],
      [2, RejectCode.BadSignature],
      [3, RejectCode.BadSignature],
      [4, RejectCode.BadSignature],
    ])
    // A certificate field edited after signing breaks the header signature.
    const swapped = [JSON.stringify({ ...header, certificate: other.certificate }), ...exported.slice(1)]
    expect((await fresh.memory.import(swapped, trust)).rejected[0]).toMatchObject({ line: 1, code: RejectCode.BadSignature })
    // A self-consistent file by a device whose certificate is not signed by the named account's root.
    const victim = accountKeys(await createAccount())
    const intruder = createDeviceKeys()
    const signer = {
      accountId: victim.accountId,
      rootPublicKey: victim.rootPublicKey,
      deviceId: intruder.deviceId,
      signPublicKey: intruder.signPublicKey,
      signSecretKey: intruder.signSecretKey,
      certificate: issueCertificate(accountKeys(await createAccount()), intruder, { kind: 'pc', name: 'x', role: 'owner' }),
    }
    const fake = headerLine(signer, 'personal', 1, Date.now(), 'e1') + memoryLine(signer, items[0]!, { exportId: 'e1', index: 1 })
    expect((await fresh.memory.import(fake, { trust: [victim.accountId] })).rejected.map((r) => [r.line, r.code])).toEqual([
      [1, RejectCode.UnknownSender],
      [2, RejectCode.UnknownSender],
    ])
    // Pinning the account.
    expect((await fresh.memory.import(exported, { accountId: fresh.accountId })).rejected[0]).toMatchObject({ code: RejectCode.WrongAccount })
    expect((await fresh.memory.import('not json')).rejected).toEqual([{ line: 1, code: RejectCode.Malformed, reason: expect.any(String) }])
  })

  it('binds every line to its export and number: spliced and missing lines are reported, order does not matter', async () => {
    const { phone } = await source()
    const exported = lines(await phone.memory.export({ scope: 'personal' }).text())
    const other = lines(await phone.memory.export({ scope: 'personal' }).text())
    expect(exported.length).toBe(4)
    const fresh = await ContextSync.open({ account: await createAccount(), device: { kind: 'pc' }, storage: memoryStorage() })
    open.push(fresh)
    const trust = { trust: [phone.accountId] }
    const codes = async (file: string[]) => (await fresh.memory.import(file, trust)).rejected.map((r) => [r.line, r.code])
    // A line of another export by the same device: not this export's (and its memory is missing).
    expect(await codes([exported[0]!, other[1]!, exported[2]!, exported[3]!])).toEqual([
      [2, RejectCode.BadSignature],
      [5, RejectCode.Malformed],
    ])
    // A line lost in the middle costs only itself: the others import, the gap is named.
    const gap = await fresh.memory.import([exported[0]!, exported[1]!, exported[3]!], trust)
    expect(gap.imported + gap.skipped).toBe(2)
    expect(gap.rejected).toEqual([{ line: 4, code: RejectCode.Malformed, reason: expect.stringMatching(/1 of its 3 memories missing \(n = 2\)/) }])
    // Reordered lines are fine: each states its number.
    const again = await ContextSync.open({ account: await createAccount(), device: { kind: 'pc' }, storage: memoryStorage() })
    open.push(again)
    const reordered = await again.memory.import([exported[0]!, exported[3]!, exported[1]!, exported[2]!], trust)
    expect(reordered).toMatchObject({ imported: 3, rejected: [] })
    // A line claiming a number the header does not have.
    const forgedN = JSON.stringify({ ...JSON.parse(exported[1]!), n: 9 })
    expect(await codes([exported[0]!, forgedN])).toEqual([
      [2, RejectCode.Malformed],
      [3, RejectCode.Malformed],
    ])
  })

  it('checks imported fields exactly as remember() does (BadPayload with the reason)', async () => {
    const { phone, items } = await source()
    const signer = exportSigner((phone.memory as unknown as { context: DeviceIdentity }).context)
    const base = items[0]!
    const bad: MemoryItem[] = [
      { ...base, id: 'b1', tags: ['  '] },
      { ...base, id: 'b2', embedding: new Float32Array(4) },
      { ...base, id: 'b4', createdAt: -5 },
      { ...base, id: 'b3', validFrom: 20, validTo: 10 },
    ]
    const file = [headerLine(signer, 'personal', bad.length + 1, Date.now(), 'e2')]
    bad.forEach((item, i) => file.push(memoryLine(signer, item, { exportId: 'e2', index: i + 1 })))
    file.push(memoryLine(signer, { ...base, id: 'good' }, { exportId: 'e2', index: bad.length + 1 }))
    const fresh = await ContextSync.open({ account: await createAccount(), device: { kind: 'pc' }, storage: memoryStorage() })
    open.push(fresh)
    const report = await fresh.memory.import(file.join(''), { trust: [phone.accountId] })
    expect(report.imported).toBe(2)
    expect(report.rejected.map((r) => [r.line, r.code])).toEqual([2, 3, 4].map((line) => [line, RejectCode.BadPayload]))
    expect(report.rejected.map((r) => r.reason)).toEqual([
      expect.stringMatching(/tags must contain non-empty strings/),
      expect.stringMatching(/embedding must not be all zeros/),
      expect.stringMatching(/createdAt must be a number between 0/),
    ])
    // An inverted validity window can come from merging two devices' edits: it is restored as held.
    expect(fresh.memory.get('b3')).toMatchObject({ validFrom: 20, validTo: 10 })
  })

  it('imports within the same account (registry-known signer), into another scope, and skips scopes the device lacks', async () => {
    const { phone } = await source()
    const car = (await fleet.open('car')).dev
    await converge([phone, car], fleet.net)
    const health = await phone.memory.export({ scope: 'health' }).text()
    // The car does not hold health: refused per line with NotGranted.
    const report = await car.memory.import(health)
    expect(report.rejected).toEqual([{ line: 2, code: RejectCode.NotGranted, reason: expect.stringContaining("scope 'health'") }])
    // …unless it imports into a scope it holds.
    const into = await car.memory.import(health, { scope: 'location' })
    expect(into).toMatchObject({ accountId: phone.accountId, imported: 1, rejected: [] })
    expect(car.memory.list({ scope: 'location' }).map((m) => m.text)).toEqual(['Only on the phone'])
  })
})

