import { afterEach, describe, expect, it } from 'vitest'
import { ContextSync, createAccount, loopbackNetwork, memoryStorage, RejectCode, type Account, type LoopbackNetwork, type MemoryItem, type RejectedEvent } from '../src/index.js'
import { accountKeys } from '../src/facade/account.js'
import { headerLine, memoryLine } from '../src/facade/memory-export.js'
import { createDeviceKeys, issueCertificate } from '../src/crypto/index.js'
import { converge, openDevice } from './helpers/devices.js'

let net: LoopbackNetwork | undefined
const open: ContextSync[] = []
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()))
  net?.destroy()
  net = undefined
})

async function source(): Promise<{ phone: ContextSync; items: MemoryItem[]; account: Account }> {
  const account = await createAccount()
  net = loopbackNetwork({ seed: 121 })
  const phone = (await openDevice(account, net, 'phone')).dev
  open.push(phone)
  const s = phone.sessions.start()
  const a = await phone.memory.remember({ text: 'Prefers aisle seats', kind: 'preference', tags: ['travel'], confidence: 0.8, source: { sessionId: s.id } })
  const b = await phone.memory.remember({ text: 'Lives in Berlin', validFrom: 1_600_000_000_000, embedding: [0.5, -0.25, 1, 0] })
  const c = await phone.memory.supersede(b.id, { text: 'Lives in Lisbon', validFrom: 1_700_000_000_000, embedding: [0.25, 0.5, 1, 0], embeddingModel: 'm1' })
  await phone.memory.remember({ text: 'Only on the phone', scope: 'health' })
  return { phone, items: [a, phone.memory.get(b.id)!, c], account }
}

const lines = (text: string) => text.split('\n').filter((l) => l.length > 0)

describe('memory export / import', () => {
  it('exports signed JSONL; a fresh account imports it, verified on its own, idempotently', async () => {
    const { phone, items } = await source()
    const file = await phone.memory.export({ scope: 'personal' }).text()
    const [header, ...rest] = lines(file)
    expect(JSON.parse(header!)).toMatchObject({
      format: 'contextsync/memory-export',
      version: 1,
      accountId: phone.accountId,
      signer: phone.deviceId,
      scope: 'personal',
      count: 3,
    })
    expect(rest).toHaveLength(3)
    expect(file).not.toContain('Only on the phone')

    const fresh = await ContextSync.open({ account: await createAccount(), device: { kind: 'pc' }, storage: memoryStorage() })
    open.push(fresh)
    const report = await fresh.memory.import(file)
    expect(report).toEqual({ accountId: phone.accountId, signer: phone.deviceId, imported: 3, skipped: 0, rejected: [] })
    for (const item of items) expect(fresh.memory.get(item.id)).toEqual(item)
    expect(fresh.memory.history(items[2]!.id).map((m) => m.text)).toEqual(['Lives in Berlin', 'Lives in Lisbon'])
    expect(fresh.memory.recall({ embedding: [0.25, 0.5, 1, 0], limit: 1 })[0]?.id).toBe(items[2]!.id)

    // Again: nothing new.
    expect(await fresh.memory.import(file)).toMatchObject({ imported: 0, skipped: 3, rejected: [] })
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
    tampered.splice(at + 1, 0, '{"memory":') // broken JSON right after it
    const fresh = await ContextSync.open({ account: await createAccount(), device: { kind: 'pc' }, storage: memoryStorage() })
    open.push(fresh)
    // As a stream of arbitrary chunks.
    const text = tampered.join('\n') + '\n'
    async function* chunks() {
      for (let i = 0; i < text.length; i += 37) yield new TextEncoder().encode(text.slice(i, i + 37))
    }
    const reported: RejectedEvent[] = []
    fresh.on('rejected', (e) => reported.push(e))
    const report = await fresh.memory.import(chunks())
    expect(report.imported).toBe(2)
    // Refused lines are reported and counted like any refused input.
    expect(reported.map((e) => [e.source, e.line, e.code, e.senderId])).toEqual([
      ['import', at + 1, RejectCode.BadSignature, phone.deviceId],
      ['import', at + 2, RejectCode.Malformed, phone.deviceId],
    ])
    expect(fresh.rejectionCounts()).toEqual({ [RejectCode.BadSignature]: 1, [RejectCode.Malformed]: 1 })
    expect(report.rejected).toEqual([
      { line: at + 1, code: RejectCode.BadSignature, reason: expect.any(String) },
      { line: at + 2, code: RejectCode.Malformed, reason: expect.any(String) },
    ])
    expect(fresh.memory.get(items[1]!.id)).toBeUndefined()
    expect(fresh.memory.list().map((m) => m.text).join()).not.toContain('Paris')

    // A header whose signer key was swapped: every line refused.
    const header = JSON.parse(exported[0]!) as Record<string, unknown>
    const other = JSON.parse(lines(await fresh.memory.export({ scope: 'personal' }).text())[0]!) as Record<string, unknown>
    const forged = [JSON.stringify({ ...header, signPublicKey: other.signPublicKey }), ...exported.slice(1)]
    const forgedReport = await fresh.memory.import(forged)
    expect(forgedReport.imported).toBe(0)
    expect(forgedReport.rejected.map((r) => [r.line, r.code])).toEqual([
      [1, RejectCode.BadSignature],
      [2, RejectCode.BadSignature],
      [3, RejectCode.BadSignature],
      [4, RejectCode.BadSignature],
    ])
    // A certificate field edited after signing breaks the header signature.
    const swapped = [JSON.stringify({ ...header, certificate: other.certificate }), ...exported.slice(1)]
    expect((await fresh.memory.import(swapped)).rejected[0]).toMatchObject({ line: 1, code: RejectCode.BadSignature })
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
    const fake = headerLine(signer, 'personal', 1, Date.now()) + memoryLine(signer, items[0]!)
    expect((await fresh.memory.import(fake)).rejected.map((r) => [r.line, r.code])).toEqual([
      [1, RejectCode.UnknownSender],
      [2, RejectCode.UnknownSender],
    ])
    // Pinning the account.
    expect((await fresh.memory.import(exported, { accountId: fresh.accountId })).rejected[0]).toMatchObject({ code: RejectCode.WrongAccount })
    expect((await fresh.memory.import('not json')).rejected).toEqual([{ line: 1, code: RejectCode.Malformed, reason: expect.any(String) }])
  })

  it('imports within the same account (registry-known signer), into another scope, and skips scopes the device lacks', async () => {
    const { phone, account } = await source()
    const car = (await openDevice(account, net!, 'car')).dev
    open.push(car)
    await converge([phone, car], net!)
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

