/**
 * `BENCH=relay-nodes`: relay nodes as processes on PostgreSQL + Redis against the single SQLite
 * relay process (the baseline), same clients, same run. Needs CONTEXTSYNC_TEST_POSTGRES and
 * CONTEXTSYNC_TEST_REDIS (`eval "$(.ci/services start)"`); skipped with a message without them.
 *
 * 1. Throughput: ROOMS rooms, each with a writer and a reader (stock y-websocket clients in this
 *    process), the reader on the next node so that with 2+ nodes every delivery crosses nodes;
 *    every writer sends WRITES updates at once; forwarded messages per second until every reader
 *    holds every update, and CPU time of the relay processes per forwarded message (from
 *    /proc/<pid>/stat). PostgreSQL, Redis, the nodes and the clients share this machine's cores.
 * 2. Delivery latency of single writes, one at a time: reader on the writer's node vs on another.
 *
 * Sizes: BENCH_NODES_ROOMS (default 20), BENCH_NODES_WRITES (default 50), BENCH_NODES_LATENCY
 * (default 100 writes). `.ci/services` runs PostgreSQL with `fsync=off` (a test instance); the
 * throughput table runs each PostgreSQL row twice, with `fsync` off and on (`ALTER SYSTEM`, then
 * `pg_reload_conf()`; the previous setting is restored), so a production-like PostgreSQL that
 * waits for its WAL to reach the disk per commit is measured in the same run. A room's updates
 * that arrive while its previous commit is in flight commit together (group commit, `room.ts`).
 * CPU per update is split: relay processes, PostgreSQL (postmaster and backends, reaped ones
 * included), Redis, and this process's clients.
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { ready } from '../src/crypto/index.js'
import { makeAccount, NodeWebSocket } from '../test/relay/helpers.js'
import { createDatabase, releaseNodes, startNode, type RelayNode } from '../test/helpers/relay-nodes.js'
import { cpuMs, liveChildrenCpuMs } from './proc-cpu.js'
import { fmt, percentile, printTable } from './table.js'

const ROOMS = Number(process.env.BENCH_NODES_ROOMS ?? 20)
const WRITES = Number(process.env.BENCH_NODES_WRITES ?? 50)
const LATENCY_WRITES = Number(process.env.BENCH_NODES_LATENCY ?? 100)
const FAST = ['--rate', '1000000', '--burst', '1000000', '--log-level', 'error']

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))
async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

/** CPU seconds (user + system) a process used so far; `children` adds its reaped children's; 0 once gone. */
function cpuSeconds(pid: number, children = false): number {
  try {
    return cpuMs(pid, { children }) / 1000
  } catch {
    return 0
  }
}

/** PostgreSQL's postmaster pid and Redis' pid under `.ci/services`' folder, when readable. */
function servicePids(): { postgres: number | undefined; redis: number | undefined } {
  const dir = process.env.CONTEXTSYNC_TEST_SERVICES_DIR
  const read = (path: string): number | undefined => {
    try {
      return Number(readFileSync(path, 'utf8').split('\n')[0]) || undefined
    } catch {
      return undefined
    }
  }
  return dir ? { postgres: read(join(dir, 'pg', 'postmaster.pid')), redis: read(join(dir, 'redis.pid')) } : { postgres: undefined, redis: undefined }
}

/** CPU seconds of the PostgreSQL cluster: the postmaster with its reaped children, plus live backends. */
function postgresCpu(postmaster: number | undefined): number {
  if (!postmaster) return 0
  return cpuSeconds(postmaster, true) + liveChildrenCpuMs(postmaster) / 1000
}

interface Cpu {
  relay: number
  postgres: number
  redis: number
  clients: number
}

function cpuNow(nodes: RelayNode[]): Cpu {
  const pids = servicePids()
  const own = process.cpuUsage()
  return {
    relay: nodes.reduce((n, node) => n + cpuSeconds(node.child.pid!), 0),
    postgres: postgresCpu(pids.postgres),
    redis: pids.redis ? cpuSeconds(pids.redis) : 0,
    clients: (own.user + own.system) / 1e6,
  }
}

/** Set PostgreSQL's `fsync` (superuser; reloaded without a restart); resolves to the previous value. */
async function setFsync(on: boolean): Promise<string> {
  const client = new pg.Client({ connectionString: process.env.CONTEXTSYNC_TEST_POSTGRES })
  await client.connect()
  try {
    const before = (await client.query<{ fsync: string }>('SHOW fsync')).rows[0]!.fsync
    await client.query(`ALTER SYSTEM SET fsync = ${on ? 'on' : 'off'}`)
    await client.query('SELECT pg_reload_conf()')
    for (let i = 0; i < 50 && (await client.query<{ fsync: string }>('SHOW fsync')).rows[0]!.fsync !== (on ? 'on' : 'off'); i++) await sleep(20)
    return before
  } finally {
    await client.end()
  }
}

interface Client {
  doc: Y.Doc
  provider: WebsocketProvider
  log: Y.Array<string>
}

function client(url: string, roomId: string, token: string): Client {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, roomId, doc, { params: { token }, WebSocketPolyfill: NodeWebSocket, disableBc: true, resyncInterval: -1 })
  return { doc, provider, log: doc.getArray<string>('log') }
}

async function nodesOn(kind: 'sqlite' | 'postgres', count: number): Promise<{ nodes: RelayNode[]; cleanup: () => void }> {
  if (kind === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'contextsync-bench-nodes-'))
    const node = await startNode(['--data', dir, ...FAST])
    return { nodes: [node], cleanup: () => rmSync(dir, { recursive: true, force: true }) }
  }
  const database = await createDatabase(process.env.CONTEXTSYNC_TEST_POSTGRES!)
  const first = await startNode(['--store', database, '--redis', process.env.CONTEXTSYNC_TEST_REDIS!, ...FAST])
  const rest = await Promise.all(Array.from({ length: count - 1 }, () => startNode(['--store', database, '--redis', process.env.CONTEXTSYNC_TEST_REDIS!, ...FAST])))
  return { nodes: [first, ...rest], cleanup: () => {} }
}

async function throughput(kind: 'sqlite' | 'postgres', count: number): Promise<{ perSecond: number; cpu: Cpu }> {
  const { nodes, cleanup } = await nodesOn(kind, count)
  const clients: Client[] = []
  try {
    const pairs = Array.from({ length: ROOMS }, (_, i) => {
      const who = makeAccount()
      const roomId = who.roomId()
      const writer = client(nodes[i % nodes.length]!.url, roomId, who.token(roomId))
      const reader = client(nodes[(i + 1) % nodes.length]!.url, roomId, who.token(roomId))
      clients.push(writer, reader)
      return { writer, reader }
    })
    await until(() => clients.every((c) => c.provider.synced), 20_000, 'clients synced')
    const cpuBefore = cpuNow(nodes)
    const started = performance.now()
    for (let w = 0; w < WRITES; w++) for (const { writer } of pairs) writer.log.push([`update ${w}`])
    await until(() => pairs.every(({ reader }) => reader.log.length === WRITES), 60_000, 'every update at every reader')
    const seconds = (performance.now() - started) / 1000
    const cpuAfter = cpuNow(nodes)
    const messages = ROOMS * WRITES
    const perMessage = (k: keyof Cpu): number => ((cpuAfter[k] - cpuBefore[k]) * 1000) / messages
    return { perSecond: messages / seconds, cpu: { relay: perMessage('relay'), postgres: kind === 'sqlite' ? 0 : perMessage('postgres'), redis: kind === 'sqlite' ? 0 : perMessage('redis'), clients: perMessage('clients') } }
  } finally {
    for (const c of clients) c.provider.destroy()
    await releaseNodes()
    cleanup()
  }
}

async function latency(sameNode: boolean): Promise<number[]> {
  const { nodes } = await nodesOn('postgres', 2)
  const who = makeAccount()
  const roomId = who.roomId()
  const writer = client(nodes[0]!.url, roomId, who.token(roomId))
  const reader = client(nodes[sameNode ? 0 : 1]!.url, roomId, who.token(roomId))
  try {
    await until(() => writer.provider.synced && reader.provider.synced, 20_000, 'synced')
    const samples: number[] = []
    for (let i = 0; i < LATENCY_WRITES; i++) {
      const started = performance.now()
      writer.log.push([`write ${i}`])
      await until(() => reader.log.length === i + 1, 10_000, `write ${i} at the reader`)
      samples.push(performance.now() - started)
      await sleep(5)
    }
    return samples
  } finally {
    writer.provider.destroy()
    reader.provider.destroy()
    await releaseNodes()
  }
}

/** Run the suite (see the module comment). */
export async function benchRelayNodes(): Promise<void> {
  if (!process.env.CONTEXTSYNC_TEST_POSTGRES || !process.env.CONTEXTSYNC_TEST_REDIS) {
    console.log('relay-nodes: SKIPPED — set CONTEXTSYNC_TEST_POSTGRES and CONTEXTSYNC_TEST_REDIS (eval "$(.ci/services start)")')
    return
  }
  await ready()
  // y-websocket registers a process 'exit' listener per provider.
  process.setMaxListeners(ROOMS * 2 + 20)
  const baseline = await throughput('sqlite', 1)
  const cpuCells = (cpu: Cpu, services = true): string[] => [fmt(cpu.relay, 'ms'), services ? fmt(cpu.postgres, 'ms') : '—', services ? fmt(cpu.redis, 'ms') : '—', fmt(cpu.clients, 'ms')]
  const rows: string[][] = [['SQLite, 1 process (baseline)', fmt(baseline.perSecond, '/s'), '1.00', ...cpuCells(baseline.cpu, false)]]
  const previous = await setFsync(false)
  try {
    for (const fsync of [false, true]) {
      await setFsync(fsync)
      for (const count of [1, 2, 3]) {
        const result = await throughput('postgres', count)
        rows.push([`PostgreSQL (fsync ${fsync ? 'on' : 'off'}) + Redis, ${count} node${count > 1 ? 's' : ''}`, fmt(result.perSecond, '/s'), fmt(result.perSecond / baseline.perSecond), ...cpuCells(result.cpu)])
      }
    }
  } finally {
    await setFsync(previous === 'on')
  }
  printTable(
    `forwarded updates, ${ROOMS} rooms × ${WRITES} updates, reader on the next node (2 cores shared by nodes, PostgreSQL, Redis and clients); CPU per forwarded update`,
    ['relay', 'forwarded', 'ratio', 'relay CPU', 'PostgreSQL CPU', 'Redis CPU', 'clients CPU'],
    rows,
  )
  const same = await latency(true)
  const cross = await latency(false)
  printTable(
    `delivery latency of single writes (${LATENCY_WRITES} each), PostgreSQL + Redis`,
    ['reader', 'p50', 'p99', 'p50 ratio'],
    [
      ['same node (baseline)', fmt(percentile(same, 50), 'ms'), fmt(percentile(same, 99), 'ms'), '1.00'],
      ['other node', fmt(percentile(cross, 50), 'ms'), fmt(percentile(cross, 99), 'ms'), fmt(percentile(cross, 50) / percentile(same, 50))],
    ],
  )
}
