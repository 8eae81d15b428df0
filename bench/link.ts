/**
 * Link benchmark (`BENCH=link npm run bench`): the glasses ⇄ phone link on the BLE simulator
 * (`contextsync/testing`, virtual time; BLE and power parameters with their sources in
 * `src/testing/radio-power.ts`), each figure beside its baseline in the same run.
 *
 * 1. **Bytes on the link per memory write.** A real E2EE replica on the glasses writes memories
 *    (sealed, signed envelopes in its sealed log); its outer doc is attached to `linkTransport`,
 *    the phone runs `linkServer`. Baseline: the plaintext Yjs update of the same write (the
 *    inner doc's update). Writes are batched the way a flush window batches them — B writes
 *    sealed as one envelope (B = 1, 5, 20) — and the link carries them with a radio window that
 *    holds them together. Figures count every byte of every packet, both directions (headers,
 *    credit and ack packets, sync framing), at MTU 185.
 * 2. **Radio wake-ups per hour of a scripted glasses day.** One hour: a memory every 3–5 min
 *    (glasses → phone), two conversations (a user turn from the glasses, then a streamed answer
 *    of 60 tokens at 80 ms from the phone), presence renewed every 15 s (what y-protocols'
 *    awareness does by itself: `outdatedTimeout / 2`). Envelopes are
 *    stand-ins of the sizes part 1 measures (a memory envelope, a stream-token envelope); the
 *    link does not look inside. Baseline: the same link with radio window 0 — plain y-protocols
 *    over it, each update sent at once. Subject: the glasses hold their updates for 2 s, 60 s or
 *    300 s (a power profile on battery); the phone holds its own for 0.5 s (answers stream).
 *    Both deliver the same data (checked). Wake-ups are connection events where the glasses'
 *    radio moved link data.
 *
 * Environment: BENCH_LINK_MTU (185), BENCH_LINK_INTERVAL_MS (30), BENCH_LINK_SEED (1),
 * BENCH_LINK_KEEPALIVE_MS (600 000).
 */
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { memoryStorage } from '../src/adapters/memory-storage.js'
import { linkServer } from '../src/adapters/link-server.js'
import { linkTransport } from '../src/adapters/link.js'
import { insertMemory, type MemoryItem } from '../src/crdt/memory.js'
import { createAccountKeys, createDeviceKeys, ownerKeyring, randomBytes, ready } from '../src/crypto/index.js'
import { Replica } from '../src/sync/replica.js'
import { bleLinkSimulator } from '../src/testing/ble-link.js'
import { fmt, printTable } from './table.js'

const MTU = Number(process.env.BENCH_LINK_MTU ?? 185)
const INTERVAL = Number(process.env.BENCH_LINK_INTERVAL_MS ?? 30)
const SEED = Number(process.env.BENCH_LINK_SEED ?? 1)
/**
 * Keepalive on both ends, equal for baseline and subject: on BLE the link layer's supervision
 * timeout (at most 32 s, Core v5.3 Vol 6 Part B §4.5.2) already catches a dead link, so the link's
 * own keepalive is a backstop and runs slowly; owed acks ride on it (or on the next burst).
 */
const KEEPALIVE_MS = Number(process.env.BENCH_LINK_KEEPALIVE_MS ?? 600_000)

function memory(i: number, deviceId: string): MemoryItem {
  const now = 1_767_225_600_000 + i * 60_000
  return {
    id: `m${i.toString(36).padStart(6, '0')}`,
    text: `Remembered fact number ${i}: prefers the window seat on morning trains, ${i % 2 ? 'tea' : 'coffee'} at ${i % 24}:00`,
    scope: 'personal',
    kind: 'fact',
    tags: [`t${i % 10}`],
    createdAt: now,
    updatedAt: now,
    source: { deviceId },
  }
}

interface WriteFigures {
  plaintext: number
  envelope: number
  glassesToPhone: number
  bothWays: number
}

/** Part 1: `writes` memories in batches of `batch`, over the link; bytes per write. */
async function bytesPerWrite(batch: number, writes: number): Promise<WriteFigures> {
  await ready()
  const account = createAccountKeys()
  const keyring = ownerKeyring(account)
  const device = createDeviceKeys()
  const roomId = keyring.roomId('personal')
  const replica = new Replica({
    scope: 'personal',
    roomId,
    keyring,
    directory: { resolve: (id: string) => (id === device.deviceId ? { status: 'known', signPublicKey: device.signPublicKey } : { status: 'unknown' }) },
    storage: memoryStorage(),
    atRestKey: randomBytes(32),
    signer: { sender: device.deviceIdBytes, senderId: device.deviceId, signSecretKey: device.signSecretKey },
    compaction: { maxEntries: 1_000_000 },
  })
  await replica.load()
  const sim = bleLinkSimulator({ seed: SEED, mtu: MTU, connectionIntervalMs: INTERVAL })
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: 2_000 })
  const glasses = linkTransport({ clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: 2_000 })
  const link = sim.connect()
  const phoneSide = hub.accept(link.central)
  const glassesSide = glasses.connect(link.peripheral)
  glasses.attach({ roomId, doc: replica.outer, awareness: new Awareness(replica.outer) })
  await sim.settle()

  let plaintext = 0
  let envelope = 0
  const onInner = (update: Uint8Array): void => void (plaintext += update.length)
  const onOuter = (update: Uint8Array, origin: unknown): void => void (origin === undefined || origin === null ? (envelope += update.length) : undefined)
  replica.inner.on('update', onInner)
  const log = replica.outer.getArray<Uint8Array>('log')
  const countEnvelopes = (): number => log.toArray().reduce((sum, entry) => sum + entry.length, 0)
  const envelopesBefore = countEnvelopes()
  replica.outer.on('update', onOuter)
  const before = { g: glassesSide.stats.bytesSent, p: phoneSide.stats.bytesSent }
  for (let i = 0; i < writes; i += batch) {
    // One flush window's worth of writes: separate transactions, sealed as one envelope.
    for (let j = i; j < Math.min(writes, i + batch); j++) replica.inner.transact(() => insertMemory(replica.inner, memory(j, device.deviceId)))
    await replica.whenFlushed()
    await sim.advance(60_000)
  }
  await sim.settle(KEEPALIVE_MS * 4)
  replica.inner.off('update', onInner)
  replica.outer.off('update', onOuter)
  const hubLog = hub.room(roomId)!.doc.getArray<Uint8Array>('log')
  if (hubLog.length !== log.length) throw new RangeError(`the phone holds ${hubLog.length} envelopes, the glasses ${log.length}`)
  const g = glassesSide.stats.bytesSent - before.g
  const p = phoneSide.stats.bytesSent - before.p
  envelope = countEnvelopes() - envelopesBefore
  glasses.close()
  hub.close()
  await replica.close()
  return { plaintext: plaintext / writes, envelope: envelope / writes, glassesToPhone: g / writes, bothWays: (g + p) / writes }
}

interface DayFigures {
  wakeUps: number
  receiveOnly: number
  radioOnMs: number
  energyMj: number
  linkBytes: number
  delivered: number
  bursts: number
}

/** Part 2: one scripted hour with radio window `windowMs` on both ends. */
async function glassesHour(glassesWindowMs: number, phoneWindowMs: number, memoryEnvelope: number, tokenEnvelope: number): Promise<DayFigures> {
  const sim = bleLinkSimulator({ seed: SEED, mtu: MTU, connectionIntervalMs: INTERVAL })
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: phoneWindowMs })
  const glasses = linkTransport({ clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: glassesWindowMs })
  const link = sim.connect()
  hub.accept(link.central)
  const glassesSide = glasses.connect(link.peripheral)
  const memories = new Y.Doc()
  const sessions = new Y.Doc()
  const presence = new Awareness(memories)
  glasses.attach({ roomId: 'memories', doc: memories, awareness: presence })
  const sessionsPresence = new Awareness(sessions)
  glasses.attach({ roomId: 'sessions', doc: sessions, awareness: sessionsPresence })
  await sim.settle()
  const phoneSessions = hub.room('sessions')!.doc
  const start = { radio: link.radio.peripheral, bursts: glassesSide.stats.bursts }
  const gen = prng.create(SEED)
  const filler = (size: number): Uint8Array => {
    const bytes = new Uint8Array(size)
    for (let i = 0; i < size; i++) bytes[i] = prng.uint32(gen, 0, 255)
    return bytes
  }
  // The script, as (time ms, action) pairs, in virtual time.
  const script: Array<[number, () => void]> = []
  for (let t = prng.uint32(gen, 180_000, 300_000); t < 3_600_000; t += prng.uint32(gen, 180_000, 300_000)) {
    script.push([t, () => memories.getArray<Uint8Array>('log').push([filler(memoryEnvelope)])])
  }
  for (const at of [900_000, 2_700_000]) {
    script.push([at, () => sessions.getArray<Uint8Array>('log').push([filler(memoryEnvelope)])])
    for (let token = 0; token < 60; token++) {
      script.push([at + 1_500 + token * 80, () => phoneSessions.getArray<Uint8Array>('log').push([filler(tokenEnvelope)])])
    }
  }
  // y-protocols renews a device's presence every 15 s (outdatedTimeout / 2); here in virtual time.
  const state = { presence: 'sealed-presence-'.padEnd(96, 'x') }
  for (let t = 15_000; t < 3_600_000; t += 15_000) script.push([t, () => presence.setLocalState(state)])
  script.sort((a, b) => a[0] - b[0])
  for (const [at, action] of script) {
    await sim.advance(Math.max(0, at - sim.clock.now()))
    action()
  }
  await sim.advance(Math.max(0, 3_600_000 - sim.clock.now()))
  await sim.settle(KEEPALIVE_MS * 2)
  const phone = hub.room('memories')!
  const delivered = phone.doc.getArray('log').length + sessions.getArray('log').length
  const expected = memories.getArray('log').length + phoneSessions.getArray('log').length
  if (delivered !== expected || sessions.getArray('log').length !== phoneSessions.getArray('log').length) {
    throw new RangeError(`windows ${glassesWindowMs}/${phoneWindowMs} ms delivered ${delivered} of ${expected} envelopes`)
  }
  const end = link.radio.peripheral
  const figures = {
    wakeUps: end.wakeUps - start.radio.wakeUps,
    receiveOnly: end.receiveOnlyWakeUps - start.radio.receiveOnlyWakeUps,
    radioOnMs: (end.radioOnMicros - start.radio.radioOnMicros) / 1000,
    energyMj: (end.energyMicroJoules - start.radio.energyMicroJoules) / 1000,
    linkBytes: end.bytesSent + end.bytesReceived - start.radio.bytesSent - start.radio.bytesReceived,
    delivered,
    bursts: glassesSide.stats.bursts - start.bursts,
  }
  glasses.close()
  hub.close()
  // Awareness keeps a timer until destroyed: without this the process never exits.
  presence.destroy()
  sessionsPresence.destroy()
  return figures
}

/** Run the link benchmark and print its tables. */
export async function benchLink(): Promise<void> {
  const rows: string[][] = []
  let single: WriteFigures | undefined
  for (const batch of [1, 5, 20]) {
    const figures = await bytesPerWrite(batch, 60)
    single ??= figures
    rows.push([
      `${batch} write${batch > 1 ? 's' : ''} per envelope`,
      fmt(figures.plaintext, 'B'),
      fmt(figures.envelope, 'B'),
      fmt(figures.glassesToPhone, 'B'),
      fmt(figures.bothWays, 'B'),
      fmt(figures.glassesToPhone / figures.plaintext, '×'),
      fmt(figures.bothWays / figures.plaintext, '×'),
    ])
  }
  printTable(
    `Link bytes per memory write (MTU ${MTU}, ${INTERVAL} ms interval, radio window 2 s; baseline: the plaintext Yjs update of the write)`,
    ['batching', 'plaintext update', 'sealed envelope', 'link glasses→phone', 'link both ways', 'g→p vs plaintext', 'both vs plaintext'],
    rows,
  )

  const memoryEnvelope = Math.round(single!.envelope)
  const tokenEnvelope = Math.max(100, Math.round(single!.envelope * 0.6))
  const baseline = await glassesHour(0, 0, memoryEnvelope, tokenEnvelope)
  const dayRows: string[][] = []
  for (const [name, glassesWindowMs, phoneWindowMs] of [
    ['plain y-protocols, each update at once (baseline)', 0, 0],
    ['link, windows glasses 2 s / phone 0.5 s', 2_000, 500],
    ['link, windows glasses 60 s / phone 0.5 s', 60_000, 500],
    ['link, windows glasses 300 s / phone 0.5 s', 300_000, 500],
  ] as const) {
    const f = glassesWindowMs === 0 ? baseline : await glassesHour(glassesWindowMs, phoneWindowMs, memoryEnvelope, tokenEnvelope)
    dayRows.push([
      name,
      String(f.delivered),
      String(f.wakeUps),
      String(f.receiveOnly),
      fmt(baseline.wakeUps / f.wakeUps, '×'),
      fmt(f.radioOnMs, 'ms'),
      fmt(baseline.radioOnMs / f.radioOnMs, '×'),
      fmt(f.energyMj, 'mJ'),
      fmt(f.linkBytes / 1024, 'KiB'),
    ])
  }
  printTable(
    `Glasses radio per hour of a scripted day (memory every 3–5 min, 2 streamed answers × 60 tokens, presence renewed every 15 s; envelopes ${memoryEnvelope} B / token ${tokenEnvelope} B)`,
    ['subject', 'envelopes', 'wake-ups', 'receive-only', 'fewer vs baseline', 'radio on', 'less vs baseline', 'energy', 'link bytes'],
    dayRows,
  )
}
