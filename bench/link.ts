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
 *    awareness does by itself: `outdatedTimeout / 2`). Envelopes are random bytes of measured
 *    sizes: a memory envelope from part 1, the answer's envelopes sealed by a real replica (one
 *    per token, or one per 1 s of tokens); the link does not look inside. Baseline: the same link
 *    with radio window 0 — plain y-protocols over it, each update sent at once. Subjects: timer
 *    windows of 2 s, 60 s or 300 s on the glasses (a power profile on battery) and 0.5 s on the
 *    phone; riding radio events (`rideRadioEvents`). All deliver the same data (checked) and
 *    report the delivery delays that cost, in virtual time.
 *
 * 3. **Presence during a large sync** on the same channel (the priority lane), vs an idle link.
 * 4. **Handoff offer bytes** on the link for a 20-turn session, vs Apple Handoff's 3 KB budget.
 * 5. **Token latency** of a streamed answer phone → glasses through the link (simulator, virtual
 *    time) vs a direct WebSocket over real sockets on 127.0.0.1 (wall time).
 *
 * Part 2 runs twice: table A without peripheral latency (the glasses attend every event; events
 * with data counted — the figures before latency was modelled), table B with peripheral latency
 * 30 at 30 ms and every event the radio attends counted, against the same run's idle link.
 *
 * Environment: BENCH_LINK_MTU (185), BENCH_LINK_INTERVAL_MS (30), BENCH_LINK_SEED (1),
 * BENCH_LINK_KEEPALIVE_MS (600 000), BENCH_LINK_LATENCY (30), BENCH_LINK_SUPERVISION_MS (6 000).
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as prng from 'lib0/prng'
import * as syncProtocol from 'y-protocols/sync'
import { WebSocket, WebSocketServer } from 'ws'
import { MessageType } from '../src/wire/messages.js'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { memoryStorage } from '../src/adapters/memory-storage.js'
import { linkServer } from '../src/adapters/link-server.js'
import { linkTransport } from '../src/adapters/link.js'
import { insertMemory, type MemoryItem } from '../src/crdt/memory.js'
import { insertOffer } from '../src/crdt/session-leases.js'
import { insertSession, insertTurns, sessionMap, type NewTurn } from '../src/crdt/sessions.js'
import { createAccountKeys, createDeviceKeys, ownerKeyring, randomBytes, ready } from '../src/crypto/index.js'
import { Replica, STREAM_ORIGIN } from '../src/sync/replica.js'
import { bleLinkSimulator } from '../src/testing/ble-link.js'
import { fmt, percentile, printTable } from './table.js'

const MTU = Number(process.env.BENCH_LINK_MTU ?? 185)
const INTERVAL = Number(process.env.BENCH_LINK_INTERVAL_MS ?? 30)
const SEED = Number(process.env.BENCH_LINK_SEED ?? 1)
/**
 * Keepalive on both ends, equal for baseline and subject: on BLE the link layer's supervision
 * timeout (at most 32 s, Core v5.3 Vol 6 Part B §4.5.2) already catches a dead link, so the link's
 * own keepalive is a backstop and runs slowly; owed acks ride on it (or on the next burst).
 */
const KEEPALIVE_MS = Number(process.env.BENCH_LINK_KEEPALIVE_MS ?? 600_000)
/**
 * Peripheral latency and supervision timeout of table B: the most Apple's accessory guidelines
 * allow at a 30 ms interval (interval × (latency + 1) ≤ 2 s, latency ≤ 30, timeout 2–6 s and
 * above interval × (latency + 1) × 3) — see `src/testing/ble-link.ts` for the sources.
 */
const LATENCY = Number(process.env.BENCH_LINK_LATENCY ?? 30)
const SUPERVISION_MS = Number(process.env.BENCH_LINK_SUPERVISION_MS ?? 6_000)

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

/** A real E2EE replica of one room, as a device holds it. */
async function benchReplica(scope: 'personal' | 'sessions') {
  await ready()
  const account = createAccountKeys()
  const keyring = ownerKeyring(account)
  const device = createDeviceKeys()
  const roomId = keyring.roomId(scope)
  const replica = new Replica({
    scope,
    roomId,
    keyring,
    directory: { resolve: (id: string) => (id === device.deviceId ? { status: 'known', signPublicKey: device.signPublicKey } : { status: 'unknown' }) },
    storage: memoryStorage(),
    atRestKey: randomBytes(32),
    signer: { sender: device.deviceIdBytes, senderId: device.deviceId, signSecretKey: device.signSecretKey },
    compaction: { maxEntries: 1_000_000 },
  })
  await replica.load()
  return { replica, roomId, device }
}

/**
 * Sealed bytes of a streamed answer: 60 tokens appended to a Y.Text with the stream origin, sealed
 * `perEnvelope` tokens at a time — what the sealer's `streamFlushDelayMs` decides (20 ms by
 * default: one envelope per token at 80 ms a token; 1 s: about 12 tokens per envelope).
 */
async function streamedEnvelopes(perEnvelope: number): Promise<number[]> {
  const { replica } = await benchReplica('sessions')
  const text = replica.inner.getText('answer')
  const log = replica.outer.getArray<Uint8Array>('log')
  const sizes: number[] = []
  for (let token = 0; token < 60; token += perEnvelope) {
    const before = log.length
    for (let j = token; j < Math.min(60, token + perEnvelope); j++) {
      replica.inner.transact(() => text.insert(text.length, ` word${j % 7 === 0 ? ',' : ''}${'abcdefg'.slice(0, 1 + (j % 6))}`), STREAM_ORIGIN)
    }
    await replica.whenFlushed()
    for (const entry of log.toArray().slice(before)) sizes.push(entry.length)
  }
  await replica.close()
  return sizes
}

/** Part 1: `writes` memories in batches of `batch`, over the link; bytes per write. */
async function bytesPerWrite(batch: number, writes: number): Promise<WriteFigures> {
  const { replica, roomId, device } = await benchReplica('personal')
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
  /** Connection events with link data on the glasses' radio. */
  wakeUps: number
  receiveOnly: number
  /** Every connection event the glasses' radio attended (data or not). */
  radioWakeUps: number
  radioOnMs: number
  energyMj: number
  linkBytes: number
  delivered: number
  bursts: number
  /** Phone → glasses delay of each streamed token, ms of virtual time. */
  tokenDelays: number[]
  /** Glasses → phone delay of each memory envelope and each presence renewal. */
  memoryDelays: number[]
  presenceDelays: number[]
}

/** One way of running the glasses' link for the scripted hour. */
interface HourSubject {
  name: string
  glassesWindowMs: number
  phoneWindowMs: number
  rideRadioEvents: boolean
  /** Peripheral latency of the simulated connection (0: the glasses attend every event). */
  latency: number
  /** Run no script: the link's idle floor. */
  idle?: boolean
  /** How the phone seals a streamed answer (default per token). */
  answer?: AnswerSealing
  /**
   * Screen on while answering: the glasses ask for peripheral latency 0 when the user's turn is
   * sent and go back to `latency` 2 s after the answer's last token (a connection parameter update).
   */
  latencyWhileAnswering?: number
}

/** A streamed answer as the phone's sealer cuts it into envelopes (sizes measured by {@link streamedEnvelopes}). */
interface AnswerSealing {
  /** Sealed size of each envelope. */
  sizes: number[]
  /** Tokens each envelope carries. */
  tokens: number[]
  /** The sealer's `streamFlushDelayMs`: an envelope is sealed this long after its first token. */
  sealDelayMs: number
}

const keyOf = (bytes: Uint8Array): string => Array.from(bytes.subarray(0, 12), (b) => b.toString(16).padStart(2, '0')).join('')

/** Part 2: one scripted hour. */
async function glassesHour(subject: HourSubject, memoryEnvelope: number, perToken: AnswerSealing): Promise<DayFigures> {
  const answer = subject.answer ?? perToken
  const sim = bleLinkSimulator({
    seed: SEED,
    mtu: MTU,
    connectionIntervalMs: INTERVAL,
    peripheralLatency: subject.latency,
    ...(subject.latency > 0 && { supervisionTimeoutMs: SUPERVISION_MS }),
  })
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: subject.phoneWindowMs })
  const glasses = linkTransport({
    clock: sim.clock,
    keepaliveMs: KEEPALIVE_MS,
    radioWindowMs: subject.glassesWindowMs,
    rideRadioEvents: subject.rideRadioEvents,
  })
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
  const phone = hub.room('memories')!
  const start = { radio: link.radio.peripheral, bursts: glassesSide.stats.bursts }
  const gen = prng.create(SEED)
  const filler = (size: number): Uint8Array => {
    const bytes = new Uint8Array(size)
    for (let i = 0; i < size; i++) bytes[i] = prng.uint32(gen, 0, 255)
    return bytes
  }
  // Delays in virtual time: when each envelope was written, when it reached the other side.
  const sentAt = new Map<string, number[]>()
  const tokenDelays: number[] = []
  const memoryDelays: number[] = []
  const presenceDelays: number[] = []
  const arrivals = (delays: number[]) => (event: Y.YArrayEvent<Uint8Array>) => {
    for (const change of event.changes.delta) {
      for (const entry of (change.insert as Uint8Array[] | undefined) ?? []) {
        for (const at of sentAt.get(keyOf(entry)) ?? []) delays.push(sim.clock.now() - at)
      }
    }
  }
  // Only tokens are keyed on the sessions doc (the user turns come from the glasses themselves).
  sessions.getArray<Uint8Array>('log').observe(arrivals(tokenDelays))
  phone.doc.getArray<Uint8Array>('log').observe(arrivals(memoryDelays))
  let presenceSetAt: number | undefined
  phone.awareness.on('update', ({ updated, added }: { updated: number[]; added: number[] }) => {
    if (presenceSetAt !== undefined && [...updated, ...added].includes(presence.clientID)) {
      presenceDelays.push(sim.clock.now() - presenceSetAt)
      presenceSetAt = undefined
    }
  })
  /** Write an envelope; `createdAt`: when the writes it carries were made (default now). */
  const write = (doc: Y.Doc, size: number, createdAt: number[] = [sim.clock.now()]): void => {
    const entry = filler(size)
    sentAt.set(keyOf(entry), createdAt)
    doc.getArray<Uint8Array>('log').push([entry])
  }
  // The script, as (time ms, action) pairs, in virtual time.
  const script: Array<[number, () => void]> = []
  for (let t = prng.uint32(gen, 180_000, 300_000); t < 3_600_000; t += prng.uint32(gen, 180_000, 300_000)) {
    script.push([t, () => write(memories, memoryEnvelope)])
  }
  for (const at of [900_000, 2_700_000]) {
    script.push([at, () => sessions.getArray<Uint8Array>('log').push([filler(memoryEnvelope)])])
    const whileAnswering = subject.latencyWhileAnswering
    if (whileAnswering !== undefined) {
      script.push([at, () => link.setPeripheralLatency(whileAnswering)])
      script.push([at + 1_500 + 60 * 80 + 2_000, () => link.setPeripheralLatency(subject.latency)])
    }
    // Tokens every 80 ms from 1.5 s on; each envelope is sealed sealDelayMs after its first token.
    let first = 0
    answer.sizes.forEach((size, k) => {
      const tokenTimes = Array.from({ length: answer.tokens[k]! }, (_, j) => at + 1_500 + (first + j) * 80)
      script.push([tokenTimes[0]! + answer.sealDelayMs, () => write(phoneSessions, size, tokenTimes)])
      first += answer.tokens[k]!
    })
  }
  // y-protocols renews a device's presence every 15 s (outdatedTimeout / 2); here in virtual time.
  const state = { presence: 'sealed-presence-'.padEnd(96, 'x') }
  for (let t = 15_000; t < 3_600_000; t += 15_000) {
    script.push([
      t,
      () => {
        presenceSetAt ??= sim.clock.now()
        presence.setLocalState(state)
      },
    ])
  }
  script.sort((a, b) => a[0] - b[0])
  if (!subject.idle) {
    for (const [at, action] of script) {
      await sim.advance(Math.max(0, at - sim.clock.now()))
      action()
    }
  }
  await sim.advance(Math.max(0, 3_600_000 - sim.clock.now()))
  // Read the radio at the hour's end: the idle floor keeps counting while the link stays up.
  const end = link.radio.peripheral
  await sim.settle(KEEPALIVE_MS * 2)
  const delivered = phone.doc.getArray('log').length + sessions.getArray('log').length
  const expected = memories.getArray('log').length + phoneSessions.getArray('log').length
  if (delivered !== expected || sessions.getArray('log').length !== phoneSessions.getArray('log').length) {
    throw new RangeError(`${subject.name} delivered ${delivered} of ${expected} envelopes`)
  }
  if (!subject.idle && (tokenDelays.length !== 2 * answer.tokens.reduce((a, b) => a + b, 0) || presenceDelays.length === 0)) {
    throw new RangeError(`${subject.name}: ${tokenDelays.length} of 120 token delays, ${presenceDelays.length} presence delays measured`)
  }
  const figures: DayFigures = {
    wakeUps: end.wakeUps - start.radio.wakeUps,
    receiveOnly: end.receiveOnlyWakeUps - start.radio.receiveOnlyWakeUps,
    radioWakeUps: end.radioWakeUps - start.radio.radioWakeUps,
    radioOnMs: (end.radioOnMicros - start.radio.radioOnMicros) / 1000,
    energyMj: (end.energyMicroJoules - start.radio.energyMicroJoules) / 1000,
    linkBytes: end.bytesSent + end.bytesReceived - start.radio.bytesSent - start.radio.bytesReceived,
    delivered,
    bursts: glassesSide.stats.bursts - start.bursts,
    tokenDelays,
    memoryDelays,
    presenceDelays,
  }
  glasses.close()
  hub.close()
  // Awareness keeps a timer until destroyed: without this the process never exits.
  presence.destroy()
  sessionsPresence.destroy()
  return figures
}

/**
 * Part 3: a presence change during a large initial sync on the same channel. The glasses come
 * back with `syncBytes` the phone lacks (one sync step 2); 3 s into it they change presence.
 * Baselines in the same run: the same change on an idle link, and the sync's own duration (what
 * the change would wait for if presence queued behind the sync's message, as before the lanes).
 * Bound the link promises: the packets already in the channel's TX buffer plus one event.
 */
async function presenceDuringSync(syncBytes: number): Promise<{ presenceMs: number; syncMs: number }> {
  const sim = bleLinkSimulator({ seed: SEED, mtu: MTU, connectionIntervalMs: INTERVAL })
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: KEEPALIVE_MS })
  const glasses = linkTransport({ clock: sim.clock, keepaliveMs: KEEPALIVE_MS })
  const doc = new Y.Doc()
  const awareness = new Awareness(doc)
  const chunk = 1024
  for (let i = 0; i < Math.ceil(syncBytes / chunk); i++) doc.getArray<Uint8Array>('log').push([new Uint8Array(chunk).fill(i & 0xff)])
  glasses.attach({ roomId: 'big', doc, awareness })
  const link = sim.connect()
  hub.accept(link.central)
  glasses.connect(link.peripheral)
  const started = sim.clock.now()
  await sim.advance(3_000)
  const phone = hub.room('big')!
  let seenAt: number | undefined
  phone.awareness.on('update', () => {
    if (seenAt === undefined && phone.awareness.states.get(awareness.clientID)?.['where'] === 'kitchen') seenAt = sim.clock.now()
  })
  const setAt = sim.clock.now()
  awareness.setLocalState({ where: 'kitchen' })
  let syncedAt: number | undefined
  while (syncedAt === undefined && sim.clock.now() - started < 600_000) {
    await sim.advance(30)
    if (phone.doc.getArray('log').length === doc.getArray('log').length) syncedAt = sim.clock.now()
  }
  glasses.close()
  hub.close()
  awareness.destroy()
  if (seenAt === undefined || syncedAt === undefined) throw new RangeError(`presence or sync of ${syncBytes} B never arrived`)
  return { presenceMs: seenAt - setAt, syncMs: syncedAt - setAt }
}

interface HandoffFigures {
  plaintext: number
  envelope: number
  glassesToPhone: number
  bothWays: number
  /** The conversation itself: what a handoff carrying the turns would carry (its Yjs state). */
  conversation: number
}

/**
 * Part 4: a handoff offer from the glasses for a realistic session (20 turns of ~300 characters,
 * already synced to the phone). The offer names the session by its place in the sessions doc and
 * carries a small app payload (a cursor into the conversation) and a deep link — not the turns.
 * Figures: the plaintext Yjs update of the offer, its sealed envelope, and the link bytes both
 * ways until quiet (headers, acks, sync framing) at MTU 185.
 */
async function handoffBytes(): Promise<HandoffFigures> {
  const { replica, roomId, device } = await benchReplica('sessions')
  const sim = bleLinkSimulator({ seed: SEED, mtu: MTU, connectionIntervalMs: INTERVAL })
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: 500 })
  const glasses = linkTransport({ clock: sim.clock, keepaliveMs: KEEPALIVE_MS, radioWindowMs: 2_000 })
  const link = sim.connect()
  const phoneSide = hub.accept(link.central)
  const glassesSide = glasses.connect(link.peripheral)
  const awareness = new Awareness(replica.outer)
  glasses.attach({ roomId, doc: replica.outer, awareness })
  const sessionId = 's-0001'
  const t0 = 1_767_225_600_000
  replica.inner.transact(() => {
    insertSession(replica.inner, { id: sessionId, title: 'Train times home', scope: 'sessions', createdAt: t0, claim: { deviceId: device.deviceId, until: t0 + 600_000 } })
  })
  const turns: NewTurn[] = Array.from({ length: 20 }, (_, i) => ({
    id: `t${i.toString().padStart(3, '0')}`,
    role: i % 2 === 0 ? 'user' : 'assistant',
    deviceId: device.deviceId,
    createdAt: t0 + i * 30_000,
    done: true,
    parts: [{ type: 'text', state: 'done', text: `Turn ${i}: ${'the 18:04 from the central station is two minutes late, platform 7 instead of 4; '.repeat(4)}`.slice(0, 300) }],
  }))
  replica.inner.transact(() => insertTurns(replica.inner, sessionId, turns, t0 + 600_000))
  await replica.whenFlushed()
  await sim.settle(KEEPALIVE_MS)
  const conversation = Y.encodeStateAsUpdate(replica.inner).length
  let plaintext = 0
  const onInner = (update: Uint8Array): void => void (plaintext += update.length)
  replica.inner.on('update', onInner)
  const log = replica.outer.getArray<Uint8Array>('log')
  const entriesBefore = log.length
  const before = { g: glassesSide.stats.bytesSent, p: phoneSide.stats.bytesSent }
  const now = t0 + 660_000
  replica.inner.transact(() => {
    const session = sessionMap(replica.inner, sessionId)!
    insertOffer(session, {
      id: 'h-7f3a9c2e',
      from: device.deviceId,
      to: 'phone',
      toKind: true,
      createdAt: now,
      expiresAt: now + 60_000,
      payload: { cursor: { turn: 't019', offset: 212 }, view: 'conversation' },
      link: `contextsync://sessions/${sessionId}`,
    })
    session.set('updatedAt', now)
  })
  await replica.whenFlushed()
  await sim.settle(KEEPALIVE_MS * 4)
  replica.inner.off('update', onInner)
  const envelope = log.toArray().slice(entriesBefore).reduce((sum, entry) => sum + entry.length, 0)
  const hubLog = hub.room(roomId)!.doc.getArray<Uint8Array>('log')
  if (hubLog.length !== log.length) throw new RangeError('the offer did not reach the phone')
  const g = glassesSide.stats.bytesSent - before.g
  const p = phoneSide.stats.bytesSent - before.p
  glasses.close()
  hub.close()
  awareness.destroy()
  await replica.close()
  return { plaintext, envelope, glassesToPhone: g, bothWays: g + p, conversation }
}

/**
 * Part 5 baseline: the same streamed answers from the phone to the glasses over a direct
 * WebSocket — real sockets on 127.0.0.1 (`ws`), one y-protocols sync update per envelope, the
 * envelopes sealed 20 ms after their token as the sealer's default `streamFlushDelayMs` does —
 * timed from each token's creation to its arrival in the glasses' doc, in wall time.
 */
async function websocketTokenDelays(answer: AnswerSealing, answers: number): Promise<number[]> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  const port = (server.address() as { port: number }).port
  const phoneDoc = new Y.Doc()
  const glassesDoc = new Y.Doc()
  const connected = new Promise<WebSocket>((resolve) => server.once('connection', (socket) => resolve(socket)))
  const client = new WebSocket(`ws://127.0.0.1:${port}`)
  client.binaryType = 'nodebuffer'
  client.on('message', (data: Buffer) => {
    const decoder = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    decoding.readVarUint(decoder)
    syncProtocol.readSyncMessage(decoder, encoding.createEncoder(), glassesDoc, 'phone')
  })
  const socket = await connected
  phoneDoc.on('update', (update: Uint8Array) => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeUpdate(encoder, update)
    socket.send(encoding.toUint8Array(encoder))
  })
  const gen = prng.create(SEED)
  const createdAt = new Map<string, number[]>()
  const delays: number[] = []
  glassesDoc.getArray<Uint8Array>('log').observe((event) => {
    const now = performance.now()
    for (const change of event.changes.delta) {
      for (const entry of (change.insert as Uint8Array[] | undefined) ?? []) for (const at of createdAt.get(keyOf(entry)) ?? []) delays.push(now - at)
    }
  })
  for (let run = 0; run < answers; run++) {
    const start = performance.now()
    let first = 0
    const writes = answer.sizes.map((size, k) => {
      const tokens = Array.from({ length: answer.tokens[k]! }, (_, j) => start + (first + j) * 80)
      first += answer.tokens[k]!
      return { size, tokens }
    })
    for (const { size, tokens } of writes) {
      const due = tokens[0]! + answer.sealDelayMs
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())))
      const entry = new Uint8Array(size)
      for (let i = 0; i < size; i++) entry[i] = prng.uint32(gen, 0, 255)
      createdAt.set(keyOf(entry), tokens)
      phoneDoc.getArray<Uint8Array>('log').push([entry])
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  client.close()
  for (const peer of server.clients) peer.terminate()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  const expected = answers * answer.tokens.reduce((x, y) => x + y, 0)
  if (delays.length !== expected) throw new RangeError(`WebSocket baseline: ${delays.length} of ${expected} tokens arrived`)
  return delays
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
  const tokenSizes = await streamedEnvelopes(1)
  const perToken: AnswerSealing = { sizes: tokenSizes, tokens: tokenSizes.map(() => 1), sealDelayMs: 20 }
  const burstSizes = await streamedEnvelopes(13)
  const perSecond: AnswerSealing = { sizes: burstSizes, tokens: burstSizes.map((_, k) => Math.min(13, 60 - 13 * k)), sealDelayMs: 1_000 }
  const answerBytes = (a: AnswerSealing): number => a.sizes.reduce((x, y) => x + y, 0)
  const plain = { glassesWindowMs: 0, phoneWindowMs: 0, rideRadioEvents: false }
  const timer = (glassesWindowMs: number) => ({ glassesWindowMs, phoneWindowMs: 500, rideRadioEvents: false })
  const ms = (values: number[], p: number): string => (values.length === 0 ? '–' : fmt(percentile(values, p), 'ms'))
  const script = `memory every 3–5 min, 2 streamed answers × 60 tokens at 80 ms, presence renewed every 15 s; memory envelope ${memoryEnvelope} B; an answer sealed per token: ${perToken.sizes.length} envelopes, ${answerBytes(perToken)} B; sealed per 1 s: ${perSecond.sizes.length} envelopes, ${answerBytes(perSecond)} B`

  // Table A: the connection without peripheral latency (the glasses attend every 30 ms event),
  // counting the events that carry data — the figures this bench reported before latency was modelled.
  const a: Array<[string, DayFigures]> = []
  for (const [name, subject] of [
    ['plain y-protocols, each update at once (baseline)', plain],
    ['link, timer windows glasses 2 s / phone 0.5 s', timer(2_000)],
    ['link, timer windows glasses 60 s / phone 0.5 s', timer(60_000)],
    ['link, timer windows glasses 300 s / phone 0.5 s', timer(300_000)],
  ] as const) {
    a.push([name, await glassesHour({ name, latency: 0, ...subject }, memoryEnvelope, perToken)])
  }
  const baseA = a[0]![1]
  printTable(
    `Glasses radio per hour, peripheral latency 0 (${INTERVAL} ms interval): connection events with data (${script})`,
    ['subject', 'envelopes', 'data wake-ups', 'receive-only', 'fewer vs baseline', 'token p50', 'token p99'],
    a.map(([name, f]) => [
      name,
      String(f.delivered),
      String(f.wakeUps),
      String(f.receiveOnly),
      fmt(baseA.wakeUps / f.wakeUps, '×'),
      ms(f.tokenDelays, 50),
      ms(f.tokenDelays, 99),
    ]),
  )

  // Table B: peripheral latency as an accessory negotiates it, every event the radio attends counted.
  const idle = await glassesHour({ name: 'idle', latency: LATENCY, ...plain, idle: true }, memoryEnvelope, perToken)
  const b: Array<[string, DayFigures]> = []
  for (const [name, subject] of [
    ['plain y-protocols, each update at once (baseline)', plain],
    ['link, timer windows glasses 2 s / phone 0.5 s', timer(2_000)],
    ['link, timer windows glasses 60 s / phone 0.5 s', timer(60_000)],
    ['link, timer windows glasses 300 s / phone 0.5 s', timer(300_000)],
    ['link, riding radio events, window 2 s / phone 0.5 s', { glassesWindowMs: 2_000, phoneWindowMs: 500, rideRadioEvents: true }],
    ['link, riding radio events, window 2 s / phone at once', { glassesWindowMs: 2_000, phoneWindowMs: 0, rideRadioEvents: true }],
    [
      'link, riding radio events, window 2 s / phone 0.5 s, answer sealed per 1 s (screen off)',
      { glassesWindowMs: 2_000, phoneWindowMs: 500, rideRadioEvents: true, answer: perSecond },
    ],
    [
      'link, riding radio events, phone at once, latency 0 while answering (screen on)',
      { glassesWindowMs: 2_000, phoneWindowMs: 0, rideRadioEvents: true, latencyWhileAnswering: 0 },
    ],
  ] as const) {
    b.push([name, await glassesHour({ name, latency: LATENCY, ...subject }, memoryEnvelope, perToken)])
  }
  const baseB = b[0]![1]
  const added = (f: DayFigures): number => f.radioWakeUps - idle.radioWakeUps
  printTable(
    `Glasses radio per hour, ${INTERVAL} ms interval, peripheral latency ${LATENCY} (idle floor: one event per ${INTERVAL * (LATENCY + 1)} ms), supervision ${SUPERVISION_MS / 1000} s: every event the radio attends (${script}); idle link: ${idle.radioWakeUps} wake-ups, ${fmt(idle.energyMj, 'mJ')}`,
    [
      'subject',
      'envelopes',
      'data wake-ups',
      'radio wake-ups',
      'added to idle floor',
      'added: fewer vs baseline',
      'all: fewer vs baseline',
      'radio on',
      'energy',
      'token p50',
      'token p99',
      'presence p50',
      'presence p99',
      'memory p50',
    ],
    b.map(([name, f]) => [
      name,
      String(f.delivered),
      String(f.wakeUps),
      String(f.radioWakeUps),
      String(added(f)),
      // At or below the idle floor (sends that moved the forced events can even save one): nothing to divide by.
      added(f) > 0 ? fmt(added(baseB) / added(f), '×') : `none above floor`,
      fmt(baseB.radioWakeUps / f.radioWakeUps, '×'),
      fmt(f.radioOnMs, 'ms'),
      fmt(f.energyMj, 'mJ'),
      ms(f.tokenDelays, 50),
      ms(f.tokenDelays, 99),
      ms(f.presenceDelays, 50),
      ms(f.presenceDelays, 99),
      ms(f.memoryDelays, 50),
    ]),
  )

  const lanes: string[][] = []
  for (const kb of [0, 100, 500]) {
    const f = await presenceDuringSync(Math.max(1, kb * 1024))
    lanes.push([
      kb === 0 ? 'idle link (baseline)' : `during a ${kb} KB initial sync`,
      fmt(f.presenceMs, 'ms'),
      kb === 0 ? '–' : fmt(f.syncMs, 'ms'),
      kb === 0 ? '–' : fmt(f.syncMs / f.presenceMs, '×'),
    ])
  }
  printTable(
    `Presence change delivered glasses → phone while a large sync is under way on the same channel (MTU ${MTU}, ${INTERVAL} ms interval, 4 packets per event; virtual time)`,
    ['while', 'presence delivered after', 'rest of the sync after the change (what presence waited before lanes)', 'ratio'],
    lanes,
  )

  const ws = await websocketTokenDelays(perToken, 2)
  const p50 = (values: number[]): number => percentile(values, 50)
  const tokenRows: Array<[string, number[]]> = [
    ['direct WebSocket, real sockets on 127.0.0.1 (baseline)', ws],
    [`link, latency 0 (${INTERVAL} ms interval: Android BALANCED), no windows`, a[0]![1].tokenDelays],
    [`link, latency 0, phone window 0.5 s`, a[1]![1].tokenDelays],
    [`link, latency ${LATENCY} (iOS accessory limit), riding radio events, phone at once`, b[5]![1].tokenDelays],
    [`link, latency ${LATENCY}, riding radio events, phone window 0.5 s`, b[4]![1].tokenDelays],
    [`link, latency ${LATENCY}, answer sealed per 1 s (screen off)`, b[6]![1].tokenDelays],
    [`link, latency ${LATENCY}, 0 while answering (screen on), riding radio events, phone at once`, b[7]![1].tokenDelays],
  ]
  printTable(
    `Streamed answer phone → glasses: token latency from the token's creation to the glasses' doc (2 answers × 60 tokens at 80 ms, sealed 20 ms after each token unless noted; link rows on the simulator, MTU ${MTU}, virtual time; WebSocket in wall time)`,
    ['path', 'tokens', 'p50', 'p99', 'p50 vs WebSocket', 'p99 vs WebSocket'],
    tokenRows.map(([name, delays]) => [
      name,
      String(delays.length),
      fmt(p50(delays), 'ms'),
      fmt(percentile(delays, 99), 'ms'),
      fmt(p50(delays) / p50(ws), '×'),
      fmt(percentile(delays, 99) / percentile(ws, 99), '×'),
    ]),
  )

  const h = await handoffBytes()
  const budget = 3 * 1024
  printTable(
    `Handoff offer on the link, glasses → phone, for a session of 20 turns (MTU ${MTU}; target ≤ 3 KB, Apple Handoff's payload budget)`,
    ['what', 'bytes', 'vs 3 KB budget'],
    [
      ['the conversation itself (Yjs state of the session: what carrying the turns would cost)', fmt(h.conversation, 'B'), fmt(h.conversation / budget, '×')],
      ['offer: plaintext Yjs update', fmt(h.plaintext, 'B'), fmt(h.plaintext / budget, '×')],
      ['offer: sealed envelope', fmt(h.envelope, 'B'), fmt(h.envelope / budget, '×')],
      ['offer: link bytes glasses → phone', fmt(h.glassesToPhone, 'B'), fmt(h.glassesToPhone / budget, '×')],
      ['offer: link bytes both ways', fmt(h.bothWays, 'B'), fmt(h.bothWays / budget, '×')],
    ],
  )
}
