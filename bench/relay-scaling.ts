/**
 * Part 2 of bench/relay.ts: relay scaling vs the stock `@y/websocket-server` — memory per idle
 * connection and forwarding throughput and CPU — with both servers in this process and the
 * clients in a forked child (bench/relay-scaling-clients.ts).
 *
 * @module
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { WebSocketServer } from 'ws'
import { docs as stockDocs, setupWSConnection } from '@y/websocket-server/utils'
import { collectGarbage } from './bench-kit.js'
import { fmt, median, printTable } from './table.js'
import { sleep, startRelay } from './relay-common.js'
import { ClientProcess } from './relay-scaling-clients.js'

const FANOUT = Number(process.env.BENCH_RELAY_FANOUT ?? 100_000)
const ROOMS_MSGS = Number(process.env.BENCH_RELAY_ROOMS_MSGS ?? 20_000)

interface ServerUnderTest {
  url: string
  close(): Promise<void>
}

async function startOurRelay(): Promise<ServerUnderTest> {
  const server = await startRelay('none')
  return { url: server.relay.url, close: () => server.close() }
}

/** The stock y-websocket server (`@y/websocket-server`, in-memory docs, no auth or limits). */
async function startStockServer(): Promise<ServerUnderTest> {
  const http: Server = createServer()
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false })
  const names = new Set<string>()
  http.on('upgrade', (request, socket, head) => {
    wss.handleUpgrade(request, socket, head, (ws) => {
      const docName = decodeURIComponent((request.url ?? '/').slice(1).split('?')[0]!)
      names.add(docName)
      setupWSConnection(ws, request, { docName })
    })
  })
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  return {
    url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}`,
    close: async () => {
      for (const c of wss.clients) c.terminate()
      wss.close()
      // Without persistence the stock server never drops a doc; do it so rows stay independent.
      for (const name of names) {
        stockDocs.get(name)?.destroy()
        stockDocs.delete(name)
      }
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
}

const servers: Array<[string, () => Promise<ServerUnderTest>]> = [
  ['@y/websocket-server (baseline)', startStockServer],
  ['contextsync relay', startOurRelay],
]
// For profiling one server alone: BENCH_RELAY_ONLY=relay|stock (the ratio columns then mean nothing).
if (process.env.BENCH_RELAY_ONLY === 'relay') servers.splice(0, 1)
if (process.env.BENCH_RELAY_ONLY === 'stock') servers.splice(1, 1)

async function memorySample(): Promise<{ rss: number; heap: number }> {
  // GC until the heap stops shrinking (bounded), so late garbage of earlier rows is gone.
  let last = Infinity
  for (let i = 0; i < 8; i++) {
    collectGarbage()
    await sleep(25)
    const heap = process.memoryUsage().heapUsed
    if (Math.abs(last - heap) < 8 * 1024) break
    last = heap
  }
  const m = process.memoryUsage()
  return { rss: m.rss, heap: m.heapUsed + m.external }
}

/** Room ids spread over accounts of at most 100 rooms (the relay's per-account room quota is 256). */
function roomNames(tag: string, rooms: number, connections: number): string[] {
  return Array.from({ length: connections }, (_, i) => {
    const r = i % rooms
    return `${tag}a${Math.floor(r / 100)}.r${r}`
  })
}

let runTag = 0

/** Part 2: memory per idle connection and forwarding, our relay vs the stock server; prints both tables. */
export async function benchScaling(): Promise<void> {
  const client = new ClientProcess()
  try {
    // Idle connections: memory delta per connection.
    const idleConfigs: Array<[number, number]> = [
      [1, 1],
      [100, 1],
      [100, 100],
      [1000, 1],
      [1000, 1000],
    ]
    const idleRows: string[][] = []
    // Warm-up: connect and drop 200 sockets on each server once (JIT, lazy module state).
    for (const [, start] of servers) {
      const server = await start()
      try {
        await client.request({ type: 'open', url: server.url, rooms: roomNames(`w${runTag++}`, 20, 200) }, 'opened', 60_000)
        await client.request({ type: 'close' }, 'closed', 30_000)
      } finally {
        await server.close()
      }
    }
    for (const [connections, rooms] of idleConfigs) {
      // One connection is far below the heap's noise: take the median of several trials.
      const trials = connections === 1 ? 9 : 1
      const perServer: Array<{ rss: number; heap: number; ms: number }> = []
      for (const [, start] of servers) {
        const samples: Array<{ rss: number; heap: number; ms: number }> = []
        for (let t = 0; t < trials; t++) {
          const server = await start()
          try {
            const before = await memorySample()
            const opened = await client.request({ type: 'open', url: server.url, rooms: roomNames(`i${runTag++}`, rooms, connections) }, 'opened', 60_000)
            if (opened.failed > 0) throw new Error(`${opened.failed} of ${connections} connections failed`)
            await sleep(300)
            const after = await memorySample()
            samples.push({ rss: (after.rss - before.rss) / connections, heap: (after.heap - before.heap) / connections, ms: opened.ms })
            await client.request({ type: 'close' }, 'closed', 30_000)
          } finally {
            await server.close()
          }
        }
        perServer.push({ rss: median(samples.map((x) => x.rss)), heap: median(samples.map((x) => x.heap)), ms: median(samples.map((x) => x.ms)) })
      }
      servers.forEach(([name], s) => {
        const x = perServer[s]!
        idleRows.push([
          `${name}: ${connections} conn / ${rooms} room${rooms > 1 ? 's' : ''}${trials > 1 ? ` (median of ${trials})` : ''}`,
          fmt(x.heap / 1024, 'KiB'),
          fmt(x.rss / 1024, 'KiB'),
          fmt(x.ms, 'ms'),
          s === 0 ? '—' : fmt(x.heap / perServer[0]!.heap, '×'),
          servers[s]![1] === startOurRelay ? (x.heap <= 64 * 1024 ? 'met' : 'missed') : '',
        ])
      })
    }
    printTable(
      'Relay memory per idle connection — server in this process, clients (raw ws + y-protocols handshake) in a child process; ' +
        'Δ after GC ÷ connections; relay auth "none" — target heap+external ≤ 64 KiB (1-connection rows: median of 9 trials, still near the noise floor)',
      ['server: connections / rooms', 'heap+ext/conn', 'RSS/conn', 'connect all', 'heap vs stock', 'target ≤ 64 KiB'],
      idleRows,
    )

    // Forwarding: 1 writer + N readers in one room, and R rooms of 1 writer + 1 reader.
    const clamp = (x: number) => Math.max(20, Math.min(5000, Math.round(x)))
    const forwardConfigs: Array<{ label: string; rooms: number; readers: number; k: number }> = [
      { label: '1 room, 1 writer → 1 reader', rooms: 1, readers: 1, k: clamp(ROOMS_MSGS) },
      { label: '1 room, 1 writer → 100 readers', rooms: 1, readers: 100, k: clamp(FANOUT / 100) },
      { label: '1 room, 1 writer → 1000 readers', rooms: 1, readers: 1000, k: clamp(FANOUT / 1000) },
      { label: '100 rooms × (1 writer → 1 reader)', rooms: 100, readers: 1, k: clamp(ROOMS_MSGS / 100) },
      { label: '1000 rooms × (1 writer → 1 reader)', rooms: 1000, readers: 1, k: clamp(ROOMS_MSGS / 1000) },
    ]
    const forwardRows: string[][] = []
    for (const config of forwardConfigs) {
      const results: Array<{ rate: number; cpuUs: number; ms: number; delivered: number }> = []
      for (const [, start] of servers) {
        const server = await start()
        try {
          // Connection i: room i % rooms; the first `rooms` connections are the writers.
          const perRoom = 1 + config.readers
          const total = config.rooms * perRoom
          const rooms = roomNames(`f${runTag++}`, config.rooms, total)
          const opened = await client.request({ type: 'open', url: server.url, rooms }, 'opened', 60_000)
          if (opened.failed > 0) throw new Error(`${opened.failed} of ${total} connections failed`)
          const groups = Array.from({ length: config.rooms }, (_, r) => ({
            writer: r,
            readers: Array.from({ length: config.readers }, (_, j) => r + (j + 1) * config.rooms),
          }))
          await sleep(100)
          const cpu0 = process.cpuUsage()
          const fanned = await client.request({ type: 'fanout', groups, k: config.k }, 'fanned', 90_000)
          const cpu = process.cpuUsage(cpu0)
          if (fanned.delivered < fanned.expected) throw new Error(`fan-out delivered ${fanned.delivered}/${fanned.expected} within 60 s`)
          results.push({
            rate: fanned.delivered / (fanned.ms / 1000),
            cpuUs: (cpu.user + cpu.system) / fanned.delivered,
            ms: fanned.ms,
            delivered: fanned.delivered,
          })
          await client.request({ type: 'close' }, 'closed', 30_000)
        } finally {
          await server.close()
        }
      }
      servers.forEach(([name], s) => {
        const x = results[s]!
        forwardRows.push([
          `${name}: ${config.label}`,
          `${config.k} × ${config.rooms * config.readers}`,
          fmt(x.ms, 'ms'),
          fmt(x.rate, 'msg/s'),
          fmt(x.cpuUs, 'µs'),
          s === 0 ? '—' : fmt(x.rate / results[0]!.rate, '×'),
          s === 0 ? '—' : fmt(x.cpuUs / results[0]!.cpuUs, '×'),
        ])
      })
    }
    printTable(
      'Relay forwarding — a burst of small Yjs updates per writer, until every reader has all; msg/s = deliveries to readers per second; ' +
        'CPU = server-process user+sys ÷ deliveries (clients in a child process; the stock server also echoes each update to its writer)',
      ['server: layout', 'updates × readers', 'time', 'forwarded', 'CPU/msg', 'rate vs stock', 'CPU vs stock'],
      forwardRows,
    )
  } finally {
    await client.stop()
  }
}
