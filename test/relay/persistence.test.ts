import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ready } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import type { Transport } from '../../src/adapters/transport.js'
import Database from 'better-sqlite3'
import { DATABASE_FILE, sqliteBackend, type Relay } from '../../src/relay/index.js'
import { EnvelopeType, ownerKeyring, sealEnvelope } from '../../src/crypto/index.js'
import {
  closeRelays,
  containsBytes,
  fakeEnvelope,
  makeAccount,
  NodeWebSocket,
  sealedLog,
  startRelay,
  waitFor,
  type TestAccount,
} from './helpers.js'

beforeAll(async () => {
  await ready()
})

const transports: Transport[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const t of transports.splice(0)) await t.close()
  await closeRelays()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-relay-'))
  dirs.push(dir)
  return dir
}

async function device(relay: Relay, who: TestAccount, roomId: string) {
  const transport = websocketTransport({ url: relay.url, token: who.token, WebSocketPolyfill: NodeWebSocket })
  transports.push(transport)
  const room = sealedLog(roomId)
  const attachment = transport.attach(room)
  await waitFor(() => attachment.status === 'synced', 5000, 'synced')
  return { ...room, transport, attachment }
}

/** The database file plus its WAL, as one buffer. */
function diskBytes(dir: string): Uint8Array {
  const parts = [DATABASE_FILE, `${DATABASE_FILE}-wal`]
    .map((name) => join(dir, name))
    .filter((path) => existsSync(path))
    .map((path) => readFileSync(path))
  return Buffer.concat(parts)
}

const marker = (text: string) => new TextEncoder().encode(text)

describe('relay persistence (SQLite)', () => {
  it('serves the full history to a brand-new device after a restart from the same data dir', async () => {
    const dataDir = tempDir()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const healthRoom = alice.roomId('health')

    const first = await startRelay({ dataDir })
    const phone = await device(first, alice, roomId)
    for (let i = 0; i < 50; i++) phone.log.push([fakeEnvelope(`entry-${i}`, 80)])
    const phoneHealth = await device(first, alice, healthRoom)
    phoneHealth.log.push([fakeEnvelope('health-entry', 80)])
    await waitFor(() => first.metrics().storedBytes > 50 * 80, 5000, 'stored')
    await phone.transport.close()
    await phoneHealth.transport.close()
    await first.close()

    const second = await startRelay({ dataDir })
    expect(second.metrics().storedBytes).toBeGreaterThan(50 * 80)
    const glasses = await device(second, alice, roomId)
    expect(glasses.log.toArray()).toEqual(phone.log.toArray())
    const glassesHealth = await device(second, alice, healthRoom)
    expect(glassesHealth.log.toArray()).toEqual([fakeEnvelope('health-entry', 80)])
  })

  it('merges stored updates so deleted envelopes leave the database file and its WAL', async () => {
    const dataDir = tempDir()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const relay = await startRelay({ dataDir, persistence: { mergeIntervalMs: 100 } })
    const phone = await device(relay, alice, roomId)
    const deleted = Array.from({ length: 20 }, (_, i) => `DELETED-ENVELOPE-${i}-${Math.random().toString(36).slice(2)}`)
    const kept = Array.from({ length: 5 }, (_, i) => `KEPT-ENVELOPE-${i}-${Math.random().toString(36).slice(2)}`)
    // One write per transaction: 25 update rows, like a device flushing over time.
    for (const text of [...deleted, ...kept]) phone.log.push([fakeEnvelope(text, 300)])
    await waitFor(() => relay.metrics().storedBytes >= 25 * 300, 5000, 'all stored')
    await waitFor(() => relay.metrics().merges >= 1, 5000, 'a merge')
    const before = diskBytes(dataDir)
    expect(deleted.every((m) => containsBytes(before, marker(m)))).toBe(true)

    // Compaction on the device: delete the first 20 entries in one transaction.
    phone.log.delete(0, 20)
    const merges = relay.metrics().merges
    await waitFor(() => relay.metrics().merges > merges, 5000, 'merge after delete')
    await waitFor(() => relay.metrics().storedBytes < 10 * 300, 5000, 'stored bytes shrink')
    // Let the merge timer run its checkpoint.
    await new Promise((resolve) => setTimeout(resolve, 300))
    const after = diskBytes(dataDir)
    const leaked = deleted.filter((m) => containsBytes(after, marker(m)))
    expect(leaked).toEqual([])
    expect(kept.every((m) => containsBytes(after, marker(m)))).toBe(true)

    // And it still serves the compacted log after a restart.
    await phone.transport.close()
    await relay.close()
    const afterClose = diskBytes(dataDir)
    expect(deleted.filter((m) => containsBytes(afterClose, marker(m)))).toEqual([])
    const again = await startRelay({ dataDir })
    const car = await device(again, alice, roomId)
    expect(car.log.length).toBe(5)
  })

  it('flushes on graceful shutdown: writes acknowledged just before close survive', async () => {
    const dataDir = tempDir()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const relay = await startRelay({ dataDir, persistence: { mergeIntervalMs: 60_000, mergeEveryUpdates: 10_000 } })
    const pc = await device(relay, alice, roomId)
    const watcher = await device(relay, alice, roomId)
    for (let i = 0; i < 200; i++) pc.log.push([fakeEnvelope(`late-${i}`, 40)])
    await waitFor(() => watcher.log.length === 200, 5000, 'relayed')
    await relay.close()
    const restarted = await startRelay({ dataDir })
    const fresh = await device(restarted, alice, roomId)
    expect(fresh.log.length).toBe(200)
    // The shutdown merge left one row: storage tracks the log, not its history of 200 updates.
    expect(restarted.metrics().storedBytes).toBeLessThan(200 * 60)
  })

  it('converges every device after writes made while the relay was down', async () => {
    const dataDir = tempDir()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const first = await startRelay({ dataDir })
    const port = first.port
    const make = () => {
      const transport = websocketTransport({
        url: first.url,
        token: alice.token,
        WebSocketPolyfill: NodeWebSocket,
        maxBackoffTime: 100,
      })
      transports.push(transport)
      const room = sealedLog(roomId)
      return { ...room, attachment: transport.attach(room) }
    }
    const phone = make()
    const car = make()
    await waitFor(() => phone.attachment.status === 'synced' && car.attachment.status === 'synced', 5000, 'synced')
    phone.log.push([fakeEnvelope('before-outage')])
    await waitFor(() => car.log.length === 1, 5000, 'before outage')

    await first.close()
    await waitFor(() => phone.attachment.status !== 'synced' && car.attachment.status !== 'synced', 5000, 'noticed outage')
    phone.log.push([fakeEnvelope('phone-offline')])
    car.log.push([fakeEnvelope('car-offline')])
    car.log.delete(0, 1)

    // Same port and data dir: the transports reconnect on their own, each with a fresh token.
    const second = await startRelay({ dataDir, port })
    await waitFor(() => phone.log.length === 2 && car.log.length === 2, 10_000, 'converged after the outage')
    expect(phone.log.toArray()).toEqual(car.log.toArray())
    const want = [fakeEnvelope('phone-offline'), fakeEnvelope('car-offline')]
    expect(phone.log.toArray().every((e) => want.some((w) => Buffer.compare(w, e) === 0))).toBe(true)
    expect(second.metrics().rejections).toEqual({})
  })

  it('keeps only ciphertext on disk: sealed envelopes are stored, their plaintext is not', async () => {
    const dataDir = tempDir()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const relay = await startRelay({ dataDir, persistence: { mergeIntervalMs: 100 } })
    const phone = await device(relay, alice, roomId)
    const key = ownerKeyring(alice.account).epochKey('personal', 0)!
    const secrets = Array.from({ length: 10 }, (_, i) => `PLAINTEXT-MEMORY-${i}: takes lisinopril 10mg`)
    const envelopes = secrets.map((text, i) =>
      sealEnvelope({
        roomId,
        type: EnvelopeType.Update,
        epoch: 0,
        seq: i + 1,
        sender: alice.device.deviceIdBytes,
        signSecretKey: alice.device.signSecretKey,
        key,
        plaintext: marker(text),
      }),
    )
    for (const envelope of envelopes) phone.log.push([envelope])
    await waitFor(() => relay.metrics().storedBytes >= envelopes.reduce((n, e) => n + e.length, 0), 5000, 'stored')
    await phone.transport.close()
    await relay.close()
    const disk = diskBytes(dataDir)
    expect(envelopes.every((envelope) => containsBytes(disk, envelope))).toBe(true)
    expect(containsBytes(disk, marker('PLAINTEXT-MEMORY'))).toBe(false)
    expect(containsBytes(disk, marker('lisinopril'))).toBe(false)
  })
})

describe('SQLite relay backend: batched commits', () => {
  const nextTurn = () => new Promise((resolve) => setImmediate(resolve))
  const rowsOnDisk = (dir: string): number => {
    const db = new Database(join(dir, DATABASE_FILE), { readonly: true })
    try {
      return (db.prepare('SELECT COUNT(*) AS n FROM updates').get() as { n: number }).n
    } finally {
      db.close()
    }
  }

  it('commits every update appended in one event-loop turn in one transaction, and reads see them at once', async () => {
    const dir = tempDir()
    const backend = sqliteBackend(dir)
    for (let i = 0; i < 100; i++) backend.append('acct.room', marker(`update-${i}`))
    // Not committed yet: another connection sees nothing of the batch…
    expect(rowsOnDisk(dir)).toBe(0)
    await nextTurn()
    // …then all of it at once.
    expect(rowsOnDisk(dir)).toBe(100)
    // Reads and merges commit pending appends first, so they never miss one or reorder.
    backend.append('acct.room', marker('update-100'))
    const loaded = backend.load('acct.room').map((u) => new TextDecoder().decode(u))
    expect(loaded).toEqual(Array.from({ length: 101 }, (_, i) => `update-${i}`))
    backend.append('acct.room', marker('merged-away'))
    backend.replace('acct.room', marker('merged'))
    await nextTurn()
    expect(backend.load('acct.room').map((u) => new TextDecoder().decode(u))).toEqual(['merged'])
    // Closing commits what is pending.
    backend.append('acct.other', marker('last'))
    backend.close()
    const reopened = sqliteBackend(dir)
    expect([...reopened.summary()].map((r) => [r.roomId, r.rows]).sort()).toEqual([
      ['acct.other', 1],
      ['acct.room', 1],
    ])
    reopened.close()
  })

  it('a batch that cannot be written is reported with its size, and later batches still commit', async () => {
    const dir = tempDir()
    const failures: Array<{ rows: number; message: string }> = []
    const backend = sqliteBackend(dir, {
      onAppendError: (error, rows) => failures.push({ rows, message: error instanceof Error ? error.message : String(error) }),
    })
    backend.append('acct.room', marker('first'))
    await nextTurn()
    // Another process breaks the schema under the relay (as a failing disk would fail a write).
    const other = new Database(join(dir, DATABASE_FILE))
    other.exec('ALTER TABLE updates RENAME TO updates_moved')
    backend.append('acct.room', marker('lost-1'))
    backend.append('acct.room', marker('lost-2'))
    await nextTurn()
    expect(failures).toEqual([{ rows: 2, message: expect.stringContaining('updates') }])
    other.exec('ALTER TABLE updates_moved RENAME TO updates')
    other.close()
    backend.append('acct.room', marker('second'))
    await nextTurn()
    expect(backend.load('acct.room').map((u) => new TextDecoder().decode(u))).toEqual(['first', 'second'])
    expect(failures).toHaveLength(1)
    backend.close()
    expect(() => backend.append('acct.room', marker('after close'))).toThrow(/closed/)
  })
})
