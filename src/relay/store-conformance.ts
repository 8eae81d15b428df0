/**
 * The shared conformance suite every {@link RelayStore} runs: the atomicity the relay relies on
 * (`store.ts`) — dense per-room seqs under concurrent appends, the account quota checked with the
 * append, compaction replacing exactly what it covers (and never twice at once), revocations, the
 * newest pass per device and spent nonces — plus durability across a reopen where the store keeps anything. A new store is
 * one file plus a three-line test.
 *
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { passBytes, type RelayStore, type StoredPass, type StoredRevocation } from './store.js'

/** What the `setup` callback of {@link runRelayStoreTests} returns for each test. */
export interface RelayStoreTestContext {
  /** A fresh, empty store. */
  store: RelayStore
  /** A second handle on the same data (another node, or the store reopened after `close`). */
  reopen?: () => Promise<RelayStore>
  /** Called after the stores were closed; remove temp files or databases here. */
  teardown?: () => Promise<void>
}

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values)
const text = (s: string): Uint8Array => new TextEncoder().encode(s)
const decode = (b: Uint8Array): string => new TextDecoder().decode(b)

/**
 * Registers the relay store conformance suite with vitest. `setup` runs before every test.
 *
 * @example
 * ```ts
 * runRelayStoreTests(async () => ({ store: memoryStore() }), 'memoryStore')
 * ```
 */
export function runRelayStoreTests(setup: () => Promise<RelayStoreTestContext>, name = 'relay store'): void {
  describe(`${name} — RelayStore conformance`, () => {
    let context: RelayStoreTestContext
    let store: RelayStore
    const extra: RelayStore[] = []

    beforeEach(async () => {
      context = await setup()
      store = context.store
    })

    afterEach(async () => {
      for (const other of extra.splice(0)) await other.close()
      await store.close()
      await context.teardown?.()
    })

    const reopen = async (): Promise<RelayStore | undefined> => {
      if (!context.reopen) return undefined
      const other = await context.reopen()
      extra.push(other)
      return other
    }

    it('starts empty and answers a ping', async () => {
      await store.ping()
      expect(await store.summary()).toEqual([])
      expect(await store.load('acct.room')).toEqual([])
      expect(await store.accountSize('acct')).toBe(0)
      expect(await store.revocations()).toEqual([])
      expect(await store.passes()).toEqual([])
    })

    it('gives each room dense seqs from 1 and loads rows in seq order, or above a seq', async () => {
      for (let i = 0; i < 5; i++) expect(await store.append('acct.a', text(`a${i}`))).toEqual({ ok: true, seq: i + 1 })
      expect(await store.append('acct.b', text('b0'))).toEqual({ ok: true, seq: 1 })
      const rows = await store.load('acct.a')
      expect(rows.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5])
      expect(rows.map((r) => decode(r.data))).toEqual(['a0', 'a1', 'a2', 'a3', 'a4'])
      expect((await store.load('acct.a', 3)).map((r) => decode(r.data))).toEqual(['a3', 'a4'])
      expect(await store.load('acct.a', 5)).toEqual([])
      expect([...(await store.heads(['acct.a', 'acct.b', 'acct.none']))].sort()).toEqual([
        ['acct.a', 5],
        ['acct.b', 1],
      ])
      const summary = (await store.summary()).sort((x, y) => x.roomId.localeCompare(y.roomId))
      expect(summary).toEqual([
        { roomId: 'acct.a', rows: 5, bytes: 10, head: 5 },
        { roomId: 'acct.b', rows: 1, bytes: 2, head: 1 },
      ])
    })

    it('never hands out one seq twice, even to concurrent appends (and to another handle on the store)', async () => {
      const other = (await reopenShared()) ?? store
      const results = await Promise.all(
        Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? store : other).append('acct.race', bytes(i))),
      )
      const seqs = results.map((r) => (r.ok ? r.seq : -1)).sort((a, b) => a - b)
      expect(seqs).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
      const rows = await store.load('acct.race')
      expect(rows.map((r) => r.seq)).toEqual(seqs)
      // Each row holds the update that was given its seq.
      for (const result of results) if (result.ok) expect(rows[result.seq - 1]!.data.length).toBe(1)
    })

    async function reopenShared(): Promise<RelayStore | undefined> {
      return store.shared ? reopen() : undefined
    }

    it('refuses an append that would pass the account quota, writing nothing', async () => {
      expect(await store.append('acct.q', new Uint8Array(60), { growth: 60, maxAccountSize: 100 })).toMatchObject({ ok: true })
      expect(await store.accountSize('acct')).toBe(60)
      expect(await store.append('acct.q2', new Uint8Array(50), { growth: 50, maxAccountSize: 100 })).toEqual({ ok: false, reason: 'quota' })
      expect(await store.load('acct.q2')).toEqual([])
      expect(await store.accountSize('acct')).toBe(60)
      // Another account is not affected; an update that shrinks the room always passes.
      expect(await store.append('other.q', new Uint8Array(90), { growth: 90, maxAccountSize: 100 })).toMatchObject({ ok: true })
      expect(await store.append('acct.q', new Uint8Array(10), { growth: -20, maxAccountSize: 50 })).toEqual({ ok: true, seq: 2 })
      expect(await store.accountSize('acct')).toBe(40)
      // Concurrent appends cannot pass it together either.
      const racing = await Promise.all(Array.from({ length: 10 }, () => store.append('acct.q3', new Uint8Array(20), { growth: 20, maxAccountSize: 100 })))
      expect(racing.filter((r) => r.ok)).toHaveLength(3)
      expect(await store.accountSize('acct')).toBe(100)
    })

    it('appends a batch under consecutive seqs in one step; the first refused entry and the rest are not written', async () => {
      expect(await store.append('acct.batch', text('zero'))).toEqual({ ok: true, seq: 1 })
      const quota = (growth: number) => ({ growth, maxAccountSize: 100 })
      const results = await store.appendBatch('acct.batch', [
        { update: new Uint8Array(30), quota: quota(30) },
        { update: new Uint8Array(40), quota: quota(40) },
        { update: new Uint8Array(40), quota: quota(40) },
        { update: new Uint8Array(1), quota: quota(-5) },
      ])
      expect(results).toEqual([{ ok: true, seq: 2 }, { ok: true, seq: 3 }, { ok: false, reason: 'quota' }, { ok: false, reason: 'quota' }])
      expect((await store.load('acct.batch')).map((row) => [row.seq, row.data.length])).toEqual([
        [1, 4],
        [2, 30],
        [3, 40],
      ])
      expect(await store.accountSize('acct')).toBe(74)
      expect(await store.appendBatch('acct.batch', [])).toEqual([])
      // Concurrent batches (from another handle too) interleave whole, with no seq twice.
      const other = (await reopenShared()) ?? store
      const batches = await Promise.all(
        Array.from({ length: 8 }, (_, b) => (b % 2 === 0 ? store : other).appendBatch('acct.batch2', Array.from({ length: 5 }, (_, i) => ({ update: bytes(b, i) })))),
      )
      const seqs = batches.flat().map((r) => (r.ok ? r.seq : 0))
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1))
      for (const batch of batches) {
        const first = batch[0]!.ok ? batch[0]!.seq : 0
        expect(batch.map((r) => (r.ok ? r.seq : 0))).toEqual([first, first + 1, first + 2, first + 3, first + 4])
      }
    })

    it('refuses the first row of a room past the room caps (per account and in total), counting every room with rows', async () => {
      const caps = { growth: 1, maxAccountSize: 1_000, maxRoomsPerAccount: 2, maxRooms: 3 }
      expect(await store.append('acct.r1', bytes(1), caps)).toMatchObject({ ok: true })
      expect(await store.append('acct.r2', bytes(1), caps)).toMatchObject({ ok: true })
      expect(await store.append('acct.r3', bytes(1), caps)).toEqual({ ok: false, reason: 'roomsPerAccount' })
      expect(await store.load('acct.r3')).toEqual([])
      // Rooms that already hold rows take more.
      expect(await store.append('acct.r1', bytes(2), caps)).toMatchObject({ ok: true })
      expect(await store.append('other.r1', bytes(1), caps)).toMatchObject({ ok: true })
      expect(await store.append('third.r1', bytes(1), caps)).toEqual({ ok: false, reason: 'rooms' })
      expect(await store.usage()).toMatchObject({ rooms: 3 })
      // A removed room no longer counts.
      await store.remove('acct.r2')
      expect(await store.usage()).toMatchObject({ rooms: 2 })
      expect(await store.append('acct.r3', bytes(1), caps)).toMatchObject({ ok: true })
    })

    it('reports relay-wide usage: rooms with rows and the summed counted size', async () => {
      expect(await store.usage()).toEqual({ rooms: 0, size: 0 })
      await store.append('acct.u', new Uint8Array(10))
      await store.append('other.u', new Uint8Array(5))
      expect(await store.usage()).toEqual({ rooms: 2, size: 15 })
    })

    it('compaction replaces the rows it covers by one merged row and keeps newer rows', async () => {
      for (let i = 0; i < 6; i++) await store.append('acct.c', new Uint8Array(10).fill(i))
      const result = await store.compact('acct.c', 4, text('merged'))
      expect(result).toEqual({ status: 'merged', rows: 4, bytes: 40 })
      const rows = await store.load('acct.c')
      expect(rows.map((r) => r.seq)).toEqual([4, 5, 6])
      expect(decode(rows[0]!.data)).toBe('merged')
      // Rows above a seq include the merged row when it covers seqs above it.
      expect((await store.load('acct.c', 2)).map((r) => r.seq)).toEqual([4, 5, 6])
      expect(await store.accountSize('acct')).toBe(6 + 20)
      // Appends continue the seq; a compaction that covers nothing new changes nothing.
      expect(await store.append('acct.c', bytes(1))).toEqual({ ok: true, seq: 7 })
      expect(await store.compact('acct.c', 4, text('again'))).toEqual({ status: 'stale' })
      expect(await store.compact('acct.c', 7, text('all'))).toMatchObject({ status: 'merged', rows: 4 })
      expect((await store.load('acct.c')).map((r) => [r.seq, decode(r.data)])).toEqual([[7, 'all']])
      expect(await store.summary()).toEqual([{ roomId: 'acct.c', rows: 1, bytes: 3, head: 7 }])
    })

    it('two compactions of one room at once leave one merged row and lose no newer row', async () => {
      for (let i = 0; i < 10; i++) await store.append('acct.cc', bytes(i))
      const other = (await reopenShared()) ?? store
      const [a, b] = await Promise.all([store.compact('acct.cc', 8, text('first')), other.compact('acct.cc', 8, text('second'))])
      const statuses = [a.status, b.status].sort()
      expect(statuses.filter((s) => s === 'merged')).toHaveLength(1)
      const rows = await store.load('acct.cc')
      expect(rows.map((r) => r.seq)).toEqual([8, 9, 10])
      expect(['first', 'second']).toContain(decode(rows[0]!.data))
    })

    it('removes a room and its bytes', async () => {
      await store.append('acct.gone', new Uint8Array(30))
      await store.append('acct.kept', new Uint8Array(5))
      await store.remove('acct.gone')
      expect(await store.load('acct.gone')).toEqual([])
      expect((await store.summary()).map((r) => r.roomId)).toEqual(['acct.kept'])
      expect(await store.accountSize('acct')).toBe(5)
    })

    it('keeps one revocation per account and device, counted against the account', async () => {
      const revocation: StoredRevocation = { accountId: 'acct', deviceId: 'dev', rootPublicKey: bytes(1, 2, 3), statement: bytes(4, 5, 6, 7) }
      await store.saveRevocation(revocation)
      await store.saveRevocation({ ...revocation, statement: bytes(9) })
      const kept = await store.revocations()
      expect(kept).toHaveLength(1)
      expect(kept[0]).toMatchObject({ accountId: 'acct', deviceId: 'dev' })
      expect([...kept[0]!.statement]).toEqual([4, 5, 6, 7])
      expect([...kept[0]!.rootPublicKey]).toEqual([1, 2, 3])
      expect(await store.accountSize('acct')).toBe('acct'.length + 'dev'.length + 3 + 4)
    })

    it('keeps the newest pass per account and device, replacing it only by a later one, counted against the account', async () => {
      const pass = (issuedAt: number, statement: Uint8Array, deviceId = 'dev', accountId = 'acct'): StoredPass => ({
        accountId,
        deviceId,
        issuedAt,
        rootPublicKey: bytes(1, 2, 3),
        statement,
      })
      const first = pass(1_000, bytes(4, 5, 6, 7))
      expect(await store.savePass(first)).toEqual({ kept: true, growth: passBytes(first) })
      // Issued at the same time or earlier: nothing changes.
      expect(await store.savePass(pass(1_000, bytes(8)))).toEqual({ kept: false })
      expect(await store.savePass(pass(999, bytes(8)))).toEqual({ kept: false })
      const later = pass(2_000, bytes(9, 9))
      expect(await store.savePass(later)).toEqual({ kept: true, growth: passBytes(later) - passBytes(first) })
      await store.savePass(pass(5, bytes(1), 'other'))
      await store.savePass(pass(5, bytes(1), 'dev', 'else'))
      const kept = (await store.passes('acct')).sort((a, b) => a.deviceId.localeCompare(b.deviceId))
      expect(kept.map((p) => [p.deviceId, p.issuedAt, [...p.statement], [...p.rootPublicKey]])).toEqual([
        ['dev', 2_000, [9, 9], [1, 2, 3]],
        ['other', 5, [1], [1, 2, 3]],
      ])
      expect((await store.passes()).map((p) => p.accountId).sort()).toEqual(['acct', 'acct', 'else'])
      expect(await store.passes('none')).toEqual([])
      expect(await store.accountSize('acct')).toBe(passBytes(later) + passBytes(pass(5, bytes(1), 'other')))
      // Concurrent saves of one device (another handle too) keep the newest, counted once.
      const other = (await reopenShared()) ?? store
      const racing = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? store : other).savePass(pass(3_000 + i, bytes(i), 'race'))))
      expect(racing.some((r) => r.kept)).toBe(true)
      const race = (await store.passes('acct')).find((p) => p.deviceId === 'race')
      expect(race?.issuedAt).toBe(3_009)
      expect(await store.accountSize('acct')).toBe(passBytes(later) + passBytes(pass(5, bytes(1), 'other')) + passBytes(pass(3_009, bytes(9), 'race')))
    })

    it('spends a nonce once until it may be forgotten, also under concurrent claims', async () => {
      expect(await store.claimNonce('n1', 2_000, 1_000)).toBe(true)
      expect(await store.claimNonce('n1', 2_000, 1_500)).toBe(false)
      expect((await store.spentNonces(1_500)).map((n) => n.nonce)).toEqual(['n1'])
      expect(await store.spentNonces(2_000)).toEqual([])
      // Past its keep-until it may be claimed again.
      expect(await store.claimNonce('n1', 5_000, 2_001)).toBe(true)
      const other = (await reopenShared()) ?? store
      const claims = await Promise.all(Array.from({ length: 10 }, (_, i) => (i % 2 ? store : other).claimNonce('n2', 9_000, 1_000)))
      expect(claims.filter(Boolean)).toHaveLength(1)
    })

    it('keeps rows, seqs, revocations and spent nonces across a reopen (stores that keep data)', async () => {
      if (!context.reopen) return
      await store.append('acct.d', text('one'))
      await store.append('acct.d', text('two'))
      await store.saveRevocation({ accountId: 'acct', deviceId: 'dev', rootPublicKey: bytes(1), statement: bytes(2) })
      const kept: StoredPass = { accountId: 'acct', deviceId: 'car', issuedAt: 7_000, rootPublicKey: bytes(1), statement: bytes(3) }
      await store.savePass(kept)
      const far = Date.now() + 60_000
      await store.claimNonce('spent', far, Date.now())
      if (!store.shared) await store.close()
      const again = await reopen()
      if (!again) return
      expect((await again.load('acct.d')).map((r) => [r.seq, decode(r.data)])).toEqual([
        [1, 'one'],
        [2, 'two'],
      ])
      expect(await again.append('acct.d', text('three'))).toEqual({ ok: true, seq: 3 })
      expect(await again.revocations()).toHaveLength(1)
      expect((await again.passes('acct')).map((p) => [p.deviceId, p.issuedAt])).toEqual([['car', 7_000]])
      expect(await again.savePass({ ...kept, issuedAt: 6_000 })).toEqual({ kept: false })
      expect(await again.claimNonce('spent', far, Date.now())).toBe(false)
      expect(await again.accountSize('acct')).toBe(3 + 3 + 5 + 'acct'.length + 'dev'.length + 2 + passBytes(kept))
    })

    it('close is idempotent', async () => {
      await store.close()
      await store.close()
    })
  })
}
