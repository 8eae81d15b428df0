/**
 * Convergence after a real relay outage (BENCH=car, its second table): how long after the relay
 * returns a head unit and its owner's phone hold each other's writes again, against plain
 * y-websocket clients in the same outage, same run.
 *
 * Each outage run has three pairs, each on its own relay (`createRelay`, SQLite under the bench
 * dir, its own port on 127.0.0.1) in its own room:
 *
 * - **car, no host signal**: a car profile (`openCar`, its default link: jittered backoff up to
 *   `CAR_MAX_BACKOFF_MS`) and its phone (`ContextSync` on the WebSocket transport, default backoff);
 *   the host never tells the car the network came back, so it returns when its backoff says;
 * - **car, host reports online**: the same, and the host calls `car.setNetwork({ online: true })`
 *   the moment its relay listens again;
 * - **plain y-websocket** (baseline): two stock `WebsocketProvider`s (default backoff, plain
 *   `Y.Doc`s) on a relay without auth (`auth: 'none'`, otherwise the same relay).
 *
 * The three relays close at once (the outage: every connection dropped, every new one refused)
 * and listen again on the same ports, with their stores, BENCH_CAR_OUTAGE_S seconds later. While
 * they are away each side writes BENCH_CAR_QUEUED memories (the car's each fsynced before the next;
 * the plain clients set as many map entries of the same texts, one transaction each), so every
 * client has been retrying for the whole outage and its backoff stands where the outage left it.
 * Per pair, from its own relay listening again: until both sides' rooms are connected, and until
 * both sides hold every write of both — taken in the event that delivered the last one (memory
 * `change` events, Y.Doc `update` events), not by polling. The runs overlap (each starts
 * BENCH_CAR_OUTAGE_STAGGER_S after the previous, so their returns do not coincide) and each figure
 * is the median over runs.
 *
 * @module
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import { WebsocketProvider } from 'y-websocket'
import * as Y from 'yjs'
import { ContextSync, createAccount, memoryStorage, plainKeys, type MemoryChange, type TransportStatus } from '../src/index.js'
import { websocketTransport } from '../src/entries/websocket-node.js'
import { createRelay, silentLogger, type Relay } from '../src/relay/index.js'
import { CAR_MAX_BACKOFF_MS, openCar } from '../adapters/car/index.js'
import { sleep } from './bench-kit.js'
import { fmt, median, printTable } from './table.js'

const QUEUED = Number(process.env.BENCH_CAR_QUEUED ?? 500)
/** Length of the real outage (s): the backoff state it leaves decides how soon each client returns. */
const OUTAGE_S = Number(process.env.BENCH_CAR_OUTAGE_S ?? 600)
const OUTAGE_RUNS = Math.max(1, Number(process.env.BENCH_CAR_OUTAGE_RUNS ?? 3))
/** Start of each run after the previous one's (s), so one run's return does not load another's. */
const STAGGER_S = Number(process.env.BENCH_CAR_OUTAGE_STAGGER_S ?? 30)
/** Longest wait for a pair after its relay returned. */
const CONVERGE_TIMEOUT_MS = 300_000
/** The scope every write goes to (a car holds it by default). */
const SCOPE = 'personal'
/** Default reconnect ceiling of the phone's transport and of y-websocket's provider. */
const DEFAULT_MAX_BACKOFF_MS = 2500

const VARIANTS = ['car, no host signal', 'car, host reports online', 'plain y-websocket'] as const
type Variant = (typeof VARIANTS)[number]

const text = (side: number, i: number) => `Parked on level ${i % 7}, row ${side}.${i}; charger ${i % 3 ? 'free' : 'busy'}`

/** What one pair measured from its relay's return. */
interface OutageResult {
  /** Until each side's room was connected again: [car or first provider, phone or second]. */
  sideReconnectMs: [number, number]
  /** Until both sides' rooms were connected again. */
  reconnectMs: number
  /** Until both sides held every write of both. */
  convergeMs: number
}

/** A relay that can go away and come back on the same port with the same store. */
class OutageRelay {
  private constructor(
    private relay: Relay | undefined,
    readonly url: string,
    private readonly port: number,
    private readonly dataDir: string,
    private readonly plain: boolean,
  ) {}

  static async start(dataDir: string, plain: boolean): Promise<OutageRelay> {
    const relay = await OutageRelay.listen(0, dataDir, plain)
    return new OutageRelay(relay, relay.url, relay.port, dataDir, plain)
  }

  private static listen(port: number, dataDir: string, plain: boolean): Promise<Relay> {
    return createRelay({ host: '127.0.0.1', port, dataDir, logger: silentLogger, ...(plain && { auth: 'none' as const }) })
  }

  async stop(): Promise<void> {
    const relay = this.relay
    this.relay = undefined
    await relay?.close()
  }

  /** Listen again; resolves at `performance.now()` of the relay listening. */
  async restart(): Promise<number> {
    this.relay = await OutageRelay.listen(this.port, this.dataDir, this.plain)
    return performance.now()
  }
}

/** A client pair in the outage. */
interface OutagePair {
  relay: OutageRelay
  /** The relay went away: from now on each side's first connection and last arrival count. */
  arm(): void
  /** Both sides write QUEUED each while the relay is away. */
  writeQueued(): Promise<void>
  /** The relay listens again (at `returnedAt`): the host reacts, if it does, and measuring starts. */
  returned(returnedAt: number): Promise<OutageResult>
  close(): Promise<void>
}

/**
 * When each of `sides` sides first did something after `arm()` (the outage began: nothing a side
 * does from then on happens before the relay returns); `since(t)` resolves, once every side did,
 * to each side's time from `t`.
 */
function lastOf(sides: number): { arm(): void; mark(side: number): void; since(t: number): Promise<number[]> } {
  const marks = new Map<number, number>()
  let armed = false
  let start: number | undefined
  let done: ((ms: number[]) => void) | undefined
  const settle = () => {
    if (start !== undefined && done && marks.size === sides) done(Array.from({ length: sides }, (_, side) => marks.get(side)! - start!))
  }
  return {
    arm: () => void (armed = true),
    mark: (side) => {
      if (!armed || marks.has(side)) return
      marks.set(side, performance.now())
      settle()
    },
    since: (t) => {
      start = t
      const result = new Promise<number[]>((resolve) => (done = resolve))
      settle()
      return result
    },
  }
}

/** A pair's figures from each side's reconnect and last arrival. */
function result(reconnects: number[], arrivals: number[]): OutageResult {
  return { sideReconnectMs: [reconnects[0]!, reconnects[1]!], reconnectMs: Math.max(...reconnects), convergeMs: Math.max(...arrivals) }
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`bench: ${what} did not converge within ${CONVERGE_TIMEOUT_MS} ms of its relay's return`)), CONVERGE_TIMEOUT_MS)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/** A car profile and its phone, each on `relay`; `hostSignal`: the host reports the return. */
async function carPair(dir: string, hostSignal: boolean): Promise<OutagePair> {
  mkdirSync(dir, { recursive: true })
  const relay = await OutageRelay.start(join(dir, 'relay'), false)
  const transport = websocketTransport({ url: relay.url })
  const account = await createAccount()
  const phone = await ContextSync.open({ account, device: { kind: 'phone', name: 'Bench phone' }, storage: memoryStorage(), transports: [transport] })
  const car = await openCar({ dataDir: join(dir, 'car'), relayUrl: relay.url, keys: plainKeys() })
  await car.profiles.join({ id: 'bench', invite: (await phone.devices.invite({ kind: 'car' })).code })
  const sides = [car.device, phone] as const
  const written = sides.map(() => new Set<string>())
  const received = sides.map(() => new Set<string>())
  const reconnected = lastOf(2)
  const converged = lastOf(2)
  const offs = sides.flatMap((dev, side) => [
    dev.on('status', ({ scope, status }: { scope: string; status: TransportStatus }) => {
      if (scope === SCOPE && (status === 'connected' || status === 'synced')) reconnected.mark(side)
    }),
    dev.memory.on('change', (change: MemoryChange) => {
      if (change.origin !== 'remote' || change.type !== 'added') return
      received[side]!.add(change.id)
      if (received[side]!.size >= QUEUED) converged.mark(side)
    }),
  ])
  return {
    relay,
    arm: () => {
      reconnected.arm()
      converged.arm()
    },
    writeQueued: async () => {
      await Promise.all(
        sides.map(async (dev, side) => {
          for (let i = 0; i < QUEUED; i++) written[side]!.add((await dev.memory.remember({ text: text(side, i), scope: SCOPE })).id)
        }),
      )
    },
    returned: async (returnedAt) => {
      if (hostSignal) car.setNetwork({ online: true })
      const [reconnects, arrivals] = await withTimeout(Promise.all([reconnected.since(returnedAt), converged.since(returnedAt)]), 'a car pair')
      // What arrived is what the other side wrote, all of it.
      sides.forEach((dev, side) => {
        const other = written[1 - side]!
        if (received[side]!.size !== other.size || [...other].some((id) => dev.memory.get(id) === undefined)) throw new Error('bench: a car pair converged to the wrong set')
      })
      return result(reconnects, arrivals)
    },
    close: async () => {
      for (const off of offs) off()
      await car.close()
      await phone.close()
      await transport.close()
      await relay.stop()
    },
  }
}

/** Two stock y-websocket providers (their default backoff) on a relay without auth. */
async function plainPair(dir: string): Promise<OutagePair> {
  mkdirSync(dir, { recursive: true })
  const relay = await OutageRelay.start(join(dir, 'relay'), true)
  const docs = [new Y.Doc(), new Y.Doc()] as const
  const providers = docs.map((doc) => new WebsocketProvider(relay.url, 'bench.plain', doc, { WebSocketPolyfill: WebSocket as never, disableBc: true }))
  await new Promise<void>((resolve) => {
    const check = () => providers.every((p) => p.synced) && resolve()
    for (const p of providers) p.on('sync', check)
    check()
  })
  const reconnected = lastOf(2)
  const converged = lastOf(2)
  providers.forEach((provider, side) => {
    provider.on('status', ({ status }: { status: string }) => status === 'connected' && reconnected.mark(side))
  })
  docs.forEach((doc, side) => {
    doc.on('update', () => doc.getMap('notes').size === 2 * QUEUED && converged.mark(side))
  })
  return {
    relay,
    arm: () => {
      reconnected.arm()
      converged.arm()
    },
    writeQueued: async () => {
      // One transaction per write, as the car seals one envelope per remember.
      docs.forEach((doc, side) => {
        for (let i = 0; i < QUEUED; i++) doc.getMap('notes').set(`${side}.${i}`, text(side, i))
      })
    },
    returned: async (returnedAt) => {
      const [reconnects, arrivals] = await withTimeout(Promise.all([reconnected.since(returnedAt), converged.since(returnedAt)]), 'the plain pair')
      return result(reconnects, arrivals)
    },
    close: async () => {
      // The provider made its own Awareness, whose timer outlives destroy(): end it too, or the
      // process never exits.
      for (const p of providers) {
        p.destroy()
        p.awareness.destroy()
      }
      for (const doc of docs) doc.destroy()
      await relay.stop()
    },
  }
}

/** One real outage of OUTAGE_S seconds for all three pairs at once, each measured from its relay's return. */
async function outageRun(dir: string, run: number): Promise<Record<Variant, OutageResult>> {
  const pairs: OutagePair[] = []
  try {
    pairs.push(await carPair(join(dir, `run-${run}`, 'car'), false))
    pairs.push(await carPair(join(dir, `run-${run}`, 'car-signal'), true))
    pairs.push(await plainPair(join(dir, `run-${run}`, 'plain')))
    await sleep(500)
    const wentDown = performance.now()
    for (const pair of pairs) pair.arm()
    await Promise.all(pairs.map((pair) => pair.relay.stop()))
    await Promise.all(pairs.map((pair) => pair.writeQueued()))
    const left = OUTAGE_S * 1000 - (performance.now() - wentDown)
    if (left > 0) await sleep(left)
    const results = await Promise.all(pairs.map(async (pair) => pair.returned(await pair.relay.restart())))
    return Object.fromEntries(VARIANTS.map((v, i) => [v, results[i]!])) as Record<Variant, OutageResult>
  } finally {
    for (const pair of pairs) await pair.close()
  }
}

/** Run the overlapping outages and print the table. */
export async function benchOutage(): Promise<void> {
  const dir = mkdtempSync(join(process.env.BENCH_CAR_DIR ?? tmpdir(), 'contextsync-bench-outage-'))
  // Every run ends (its clients closed) before the folder goes, even when another failed.
  const settled = await Promise.allSettled(
    Array.from({ length: OUTAGE_RUNS }, async (_, run) => {
      await sleep(run * STAGGER_S * 1000)
      return outageRun(dir, run)
    }),
  )
  rmSync(dir, { recursive: true, force: true })
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) throw failed.reason
  const runs = settled.map((r) => (r as PromiseFulfilledResult<Record<Variant, OutageResult>>).value)
  const s = (ms: number) => fmt(ms / 1000, 's')
  const of = (v: Variant, key: 'reconnectMs' | 'convergeMs') => runs.map((r) => r[v][key])
  const side = (v: Variant, i: 0 | 1) => median(runs.map((r) => r[v].sideReconnectMs[i]))
  const baseline = median(of('plain y-websocket', 'convergeMs'))
  printTable(
    `car: convergence after a real ${OUTAGE_S} s relay outage (relays closed, then listening again on the same ports), ${QUEUED} writes ` +
      `queued on each side; median of ${OUTAGE_RUNS} outages (overlapping, ${STAGGER_S} s apart); each pair timed from its own relay's return; ` +
      `backoff ceilings: car ${CAR_MAX_BACKOFF_MS} ms jittered ½–1×, phone and y-websocket ${DEFAULT_MAX_BACKOFF_MS} ms`,
    ['from the relay’s return', 'reconnected: car (1st) · phone (2nd)', 'both reconnected', 'both converged', 'converged, each run', 'converged / y-websocket'],
    VARIANTS.map((v) => [
      v,
      `${s(side(v, 0))} · ${s(side(v, 1))}`,
      s(median(of(v, 'reconnectMs'))),
      s(median(of(v, 'convergeMs'))),
      of(v, 'convergeMs').map(s).join(' · '),
      `${fmt(median(of(v, 'convergeMs')) / baseline)}x`,
    ]),
  )
}
