/**
 * `BENCH=relay-failover`: how long until every device is synced again after one of three relay
 * nodes (processes on PostgreSQL + Redis) goes away, with devices behind a TCP load balancer that
 * sends each new connection to the next node that accepts it. Needs CONTEXTSYNC_TEST_POSTGRES and
 * CONTEXTSYNC_TEST_REDIS (`eval "$(.ci/services start)"`); skipped with a message without them.
 *
 * Devices are the library's WebSocket transport (`websocketTransport`: a fresh single-use token per
 * connection, exponential backoff with jitter, as shipped) on sealed-log rooms: BENCH_FAILOVER_ACCOUNTS
 * accounts (default 4) × 3 devices × 4 rooms each, one connection per device and room, spread by the
 * balancer over the three nodes. Per repetition, one event hits node 0, and at that instant a writer
 * connected straight to node 2 appends one entry to every room; the figure is the time from the
 * event until every device holds every room's entry and reports every room synced. Events, taken in
 * turn for BENCH_FAILOVER_REPS repetitions each (default 5):
 * - **connections cut at the balancer** (baseline): node 0 keeps running; its devices' sockets are
 *   closed, and they reconnect (possibly to node 0 again).
 * - **SIGTERM** of node 0: a clean restart — it closes its sockets with 1001 and leaves.
 * - **kill -9** of node 0: the process dies; the kernel resets its sockets, so devices notice at once
 *   (a vanished host would add the keep-alive interval, 30 s by default, before they notice).
 * Node 0 is started again (same database) before the next repetition, and before every event the
 * balancer drops every connection, so the devices spread over the three nodes again (untimed).
 *
 * @module
 */
import { createServer, connect, type Server, type Socket } from 'node:net'
import { WebSocket as NodeWebSocket } from 'ws'
import { websocketTransport, type WebsocketTransport } from '../src/adapters/websocket.js'
import { ready } from '../src/crypto/index.js'
import { fakeEnvelope, makeAccount, sealedLog } from '../test/relay/helpers.js'
import { createDatabase, releaseNodes, startNode, type RelayNode } from '../test/helpers/relay-nodes.js'
import { fmt, median, percentile, printTable } from './table.js'

const ACCOUNTS = Number(process.env.BENCH_FAILOVER_ACCOUNTS ?? 4)
const REPS = Number(process.env.BENCH_FAILOVER_REPS ?? 5)
const DEVICES = 3
const ROOMS = 4

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

/** A round-robin TCP balancer that can cut every connection it holds to one backend. */
interface Balancer {
  url: string
  /** Connections currently passed to `port`. */
  held(port: number): number
  /** Close every connection passed to `port` (every connection when undefined). */
  cut(port?: number): void
  close(): Promise<void>
}

async function balancer(backends: () => number[]): Promise<Balancer> {
  let next = 0
  const byBackend = new Map<number, Set<Socket>>()
  const all = new Set<Socket>()
  const server: Server = createServer((client) => {
    all.add(client)
    client.on('close', () => all.delete(client))
    client.on('error', () => client.destroy())
    client.pause()
    const ports = backends()
    const attempt = (tries: number): void => {
      if (tries >= ports.length) return void client.destroy()
      const port = ports[next++ % ports.length]!
      const upstream = connect(port, '127.0.0.1')
      let connected = false
      upstream.once('connect', () => {
        connected = true
        let set = byBackend.get(port)
        if (!set) byBackend.set(port, (set = new Set()))
        set.add(client)
        all.add(upstream)
        upstream.on('close', () => {
          all.delete(upstream)
          set.delete(client)
          client.destroy()
        })
        upstream.on('error', () => upstream.destroy())
        client.on('close', () => upstream.destroy())
        client.pipe(upstream)
        upstream.pipe(client)
        client.resume()
      })
      upstream.once('error', () => {
        if (!connected) attempt(tries + 1)
      })
    }
    attempt(0)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address()
  return {
    url: `ws://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`,
    held: (port) => byBackend.get(port)?.size ?? 0,
    cut(port) {
      const sets = port === undefined ? [...byBackend.values()] : [byBackend.get(port) ?? new Set<Socket>()]
      for (const set of sets) for (const socket of [...set]) socket.destroy()
    },
    close: async () => {
      for (const socket of all) socket.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

type Event = 'cut' | 'term' | 'kill'

/** Run the suite (see the module comment). */
export async function benchRelayFailover(): Promise<void> {
  if (!process.env.CONTEXTSYNC_TEST_POSTGRES || !process.env.CONTEXTSYNC_TEST_REDIS) {
    console.log('relay-failover: SKIPPED — set CONTEXTSYNC_TEST_POSTGRES and CONTEXTSYNC_TEST_REDIS (eval "$(.ci/services start)")')
    return
  }
  await ready()
  const database = await createDatabase(process.env.CONTEXTSYNC_TEST_POSTGRES)
  const args = ['--store', database, '--redis', process.env.CONTEXTSYNC_TEST_REDIS, '--log-level', 'error']
  const nodes: RelayNode[] = [await startNode(args)]
  nodes.push(...(await Promise.all([startNode(args), startNode(args)])))
  const lb = await balancer(() => nodes.map((n) => n.port))
  const transports: WebsocketTransport[] = []
  const rooms: Array<{ log: { length: number }; synced: () => boolean }> = []
  const awarenesses: Array<{ destroy(): void }> = []
  const writerRooms: Array<{ push: (entry: Uint8Array) => void }> = []
  try {
    for (let a = 0; a < ACCOUNTS; a++) {
      const who = makeAccount()
      const roomIds = Array.from({ length: ROOMS }, (_, r) => who.roomId(`scope${r}`))
      for (let d = 0; d < DEVICES; d++) {
        const transport = websocketTransport({ url: lb.url, token: (roomId, request) => who.token(roomId, request), WebSocketPolyfill: NodeWebSocket, jitter: true })
        transports.push(transport)
        for (const roomId of roomIds) {
          const room = sealedLog(roomId)
          awarenesses.push(room.awareness)
          const attachment = transport.attach(room)
          rooms.push({ log: room.log, synced: () => attachment.status === 'synced' })
        }
      }
      // The writer connects straight to node 2, which every event spares.
      const writer = websocketTransport({ url: nodes[2]!.url, token: (roomId, request) => who.token(roomId, request), WebSocketPolyfill: NodeWebSocket })
      transports.push(writer)
      for (const roomId of roomIds) {
        const room = sealedLog(roomId)
        awarenesses.push(room.awareness)
        const attachment = writer.attach(room)
        writerRooms.push({ push: (entry) => room.log.push([entry]) })
        rooms.push({ log: room.log, synced: () => attachment.status === 'synced' })
      }
    }
    await until(() => rooms.every((r) => r.synced()), 60_000, 'every device synced')
    const samples: Record<Event, number[]> = { cut: [], term: [], kill: [] }
    const dropped: Record<Event, number[]> = { cut: [], term: [], kill: [] }
    let entries = 0
    for (let rep = 0; rep < REPS; rep++) {
      for (const event of ['cut', 'term', 'kill'] as const) {
        // Spread the devices over the three nodes again (node 0 may be a fresh process nobody is on).
        lb.cut()
        await sleep(50)
        await until(() => rooms.every((r) => r.synced() && r.log.length === entries), 60_000, 'every device synced before the event')
        await sleep(200)
        const victim = nodes[0]!
        const started = performance.now()
        dropped[event].push(lb.held(victim.port))
        if (event === 'cut') lb.cut(victim.port)
        else victim.child.kill(event === 'kill' ? 'SIGKILL' : 'SIGTERM')
        entries += 1
        for (const room of writerRooms) room.push(fakeEnvelope(`failover ${rep} ${event}`))
        await until(() => rooms.every((r) => r.synced() && r.log.length === entries), 60_000, `every device synced again after ${event}`)
        samples[event].push(performance.now() - started)
        if (event !== 'cut') {
          await new Promise<void>((resolve) => (victim.child.exitCode !== null || victim.child.signalCode !== null ? resolve() : victim.child.once('exit', () => resolve())))
          nodes[0] = await startNode(args)
        }
      }
    }
    const base = median(samples.cut)
    const label: Record<Event, string> = {
      cut: 'connections to node 0 cut at the balancer (baseline)',
      term: 'SIGTERM of node 0 (clean restart)',
      kill: 'kill -9 of node 0',
    }
    printTable(
      `time until every device is synced again (${ACCOUNTS} accounts × ${DEVICES} devices × ${ROOMS} rooms = ${ACCOUNTS * DEVICES * ROOMS} connections over 3 nodes; ${REPS} repetitions each)`,
      ['event', 'median', 'p90', 'max', 'median ratio'],
      (['cut', 'term', 'kill'] as const).map((event) => [
        label[event],
        fmt(median(samples[event]), 'ms'),
        fmt(percentile(samples[event], 90), 'ms'),
        fmt(Math.max(...samples[event]), 'ms'),
        fmt(median(samples[event]) / base),
      ]),
    )
    for (const event of ['cut', 'term', 'kill'] as const) console.log(`${event}: node 0 held ${dropped[event].join(', ')} of ${ACCOUNTS * DEVICES * ROOMS} device connections`)
  } finally {
    for (const transport of transports) transport.close()
    for (const awareness of awarenesses) awareness.destroy()
    await lb.close()
    await releaseNodes()
  }
}
