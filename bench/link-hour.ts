/**
 * Part 2 of bench/link.ts: one scripted hour of a glasses day over the simulated link — memories,
 * two streamed answers, presence renewals — and what the glasses' radio did for it.
 *
 * @module
 */
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { linkServer } from '../src/adapters/link-server.js'
import { linkTransport } from '../src/adapters/link.js'
import { bleLinkSimulator } from '../src/testing/ble-link.js'
import { INTERVAL, KEEPALIVE_MS, MTU, SEED, SUPERVISION_MS, keyOf, type AnswerSealing } from './link-fixtures.js'

/** The glasses' radio and the delivery delays over one scripted hour. */
export interface DayFigures {
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
export interface HourSubject {
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

/** Part 2: one scripted hour. */
export async function glassesHour(subject: HourSubject, memoryEnvelope: number, perToken: AnswerSealing): Promise<DayFigures> {
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
