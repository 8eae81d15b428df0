/**
 * PC benchmark: what an assistant pays to reach the person's memory through MCP.
 *
 * MCP `recall` round trip (p50/p99) on a PC store of N memories (default 100 000) — the SDK's
 * `Client` over stdio to the real `contextsync mcp` process — side by side, in the same run, with:
 * the same tool through an in-process `McpServer` over the SDK's `InMemoryTransport` (protocol and
 * schema validation, no process boundary), and the baseline, `memory.recall` called in process
 * on the same store. Also the cold start: spawn to the first answered `recall` (opening the
 * store: checkpoint load, recall index) vs `openPc` in process.
 *
 * Joining a PC to an account of N memories (`joinPc` through a relay on 127.0.0.1, the phone in
 * this process): time to the admitted device, to the first answered `recall`, and to every memory
 * there — vs the baseline, a stock y-websocket client loading the same memories as plain Yjs (no
 * encryption) from the same relay code (no auth), to synced and to every memory readable.
 *
 * Sizes: BENCH_PC_MEMORIES, BENCH_PC_QUERIES; BENCH_PC_ONLY=recall|join runs one part.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as prng from 'lib0/prng'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { createMcpServer, initPc, joinPc, openPc } from '../adapters/pc/index.js'
import { ContextSync, createAccount, memoryStorage, plainKeys } from '../src/index.js'
import { websocketTransport } from '../src/adapters/websocket.js'
import { plainItem, startRelay, WS } from './relay-common.js'
import { fmt, percentile, printTable } from './table.js'

const MEMORIES = Number(process.env.BENCH_PC_MEMORIES ?? 100_000)
const QUERIES = Number(process.env.BENCH_PC_QUERIES ?? 200)
const ROOT = resolve(import.meta.dirname, '..')

const rng = prng.create(17)
const VOCAB = Array.from({ length: 4000 }, (_, i) => `w${(i * 7919) % 100_003}`)
const word = (): string => VOCAB[Math.min(VOCAB.length - 1, Math.floor(Math.pow(prng.real53(rng), 3) * VOCAB.length))]!

/** `BENCH=pc npm run bench`. */
export async function benchPc(): Promise<void> {
  const only = process.env.BENCH_PC_ONLY
  if (only !== 'join') await benchRecall()
  if (only !== 'recall') await benchJoin()
}

async function benchRecall(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'contextsync-bench-pc-'))
  const dataDir = join(home, 'data')
  const keyFile = join(home, 'device.key')
  try {
    // Load offline, compaction deferred so the setup does not re-seal a growing snapshot.
    const loadStart = performance.now()
    const { pc } = await initPc({ dataDir, keyFile, env: {}, sync: { compaction: { maxEntries: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER } } })
    for (let start = 0; start < MEMORIES; start += 2000) {
      const writes: Array<Promise<unknown>> = []
      for (let i = start; i < Math.min(MEMORIES, start + 2000); i++) {
        writes.push(pc.sync.memory.remember({ text: `${Array.from({ length: 8 + (i % 6) }, word).join(' ')} topic${i % 500}`, tags: [`t${i % 20}`] }))
      }
      await Promise.all(writes)
    }
    await pc.close()
    const loadMs = performance.now() - loadStart
    const queries = Array.from({ length: QUERIES }, (_, i) => `${word()} ${word()} topic${(i * 37) % 500}`)

    // 1. The real process over stdio.
    const spawnStart = performance.now()
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: ['--import', 'tsx', join(ROOT, 'src/bin.ts'), 'mcp', '--data-dir', dataDir, '--key-file', keyFile],
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: home },
      stderr: 'ignore',
    })
    const stdio = new Client({ name: 'bench', version: '1' })
    await stdio.connect(transport)
    await stdio.callTool({ name: 'recall', arguments: { query: queries[0]!, limit: 10 } })
    const coldStdioMs = performance.now() - spawnStart
    const overStdio = await timeCalls(queries, (query) => stdio.callTool({ name: 'recall', arguments: { query, limit: 10 } }))
    await stdio.close()

    // 2. In process: the same store, the same tool over an in-memory MCP pair, and memory.recall itself.
    const openStart = performance.now()
    const local = await openPc({ dataDir, keyFile, env: {} })
    local.sync.memory.recall({ text: queries[0]!, limit: 10 })
    const coldLocalMs = performance.now() - openStart
    const { server, dispose } = await createMcpServer(local)
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    await server.connect(serverSide)
    const inMemory = new Client({ name: 'bench', version: '1' })
    await inMemory.connect(clientSide)
    const overMemory = await timeCalls(queries, (query) => inMemory.callTool({ name: 'recall', arguments: { query, limit: 10 } }))
    const direct = await timeCalls(queries, async (query) => local.sync.memory.recall({ text: query, limit: 10 }))
    await inMemory.close()
    dispose()
    await local.close()

    const row = (name: string, runs: number[]): string[] => [name, fmt(percentile(runs, 50), 'ms'), fmt(percentile(runs, 99), 'ms'), `${fmt(percentile(runs, 50) / percentile(direct, 50))}×`]
    printTable(`PC — MCP recall round trip, ${MEMORIES} memories, ${QUERIES} queries, limit 10 (store loaded in ${fmt(loadMs / 1000, 's')})`, ['path', 'p50', 'p99', 'p50 vs in-process'], [
      row('MCP over stdio (SDK Client → contextsync mcp process)', overStdio),
      row('MCP in process (SDK InMemoryTransport)', overMemory),
      row('baseline: memory.recall in process', direct),
    ])
    printTable('PC — cold start to the first answered recall', ['path', 'time', 'vs in process'], [
      ['spawn contextsync mcp → first MCP recall', fmt(coldStdioMs, 'ms'), `${fmt(coldStdioMs / coldLocalMs)}×`],
      ['baseline: openPc + memory.recall in process', fmt(coldLocalMs, 'ms'), '1×'],
    ])
  } finally {
    rmSync(home, { recursive: true, force: true })
  }
}

async function timeCalls(queries: string[], call: (query: string) => Promise<unknown>): Promise<number[]> {
  for (const query of queries.slice(0, 10)) await call(query)
  const out: number[] = []
  for (const query of queries) {
    const start = performance.now()
    await call(query)
    out.push(performance.now() - start)
  }
  return out
}

/** Poll `check` on every turn of the event loop (so the time is not rounded to a timer tick). */
async function whenTrue(check: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const deadline = performance.now() + timeoutMs
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`bench pc: timed out waiting for ${what}`)
    await new Promise((r) => setImmediate(r))
  }
  return performance.now()
}

async function benchJoin(): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'contextsync-bench-pc-join-'))
  const server = await startRelay(undefined)
  const transport = websocketTransport({ url: server.relay.url, WebSocketPolyfill: WS, maxBackoffTime: 300 })
  const phone = await ContextSync.open({ account: await createAccount(), device: { kind: 'phone' }, storage: memoryStorage(), transports: [transport], keys: plainKeys() })
  // A store this size must reach the relay in frames it accepts: any refusal is reported, and a
  // lasting one ends the bench rather than timing out on it.
  const transportErrors: string[] = []
  let lasting: string | undefined
  phone.on('transport-error', ({ code, message }) => {
    transportErrors.push(code)
    if (code === 'envelope-too-big') lasting = message
  })
  try {
    const ids: string[] = []
    for (let start = 0; start < MEMORIES; start += 2000) {
      const writes: Array<Promise<{ id: string }>> = []
      for (let i = start; i < Math.min(MEMORIES, start + 2000); i++) writes.push(phone.memory.remember({ text: `${Array.from({ length: 8 }, word).join(' ')} topic${i % 500}` }))
      for (const item of await Promise.all(writes)) ids.push(item.id)
    }
    await phone.flush()
    // Let the relay store all of it (and the phone compact) before the PC asks.
    await new Promise((r) => setTimeout(r, 2000))
    if (lasting !== undefined) throw new Error(`bench pc: the relay refuses the phone's store: ${lasting}`)

    const started = performance.now()
    const invite = await phone.devices.invite({ kind: 'pc' })
    const pc = await joinPc({ invite: invite.code, relayUrl: server.relay.url, dataDir: join(home, 'data'), keyFile: join(home, 'device.key'), env: {}, timeoutMs: 600_000 })
    const admitted = performance.now()
    const firstRecall = await whenTrue(() => pc.sync.memory.recall({ text: 'topic1', limit: 1 }).length > 0, 600_000, 'the first recall hit')
    // Each memory is looked up once it is there (a cursor over the phone's ids): listing all of
    // them on every turn while frames arrive would slow the sync it measures.
    let readable = 0
    const full = await whenTrue(() => {
      while (readable < ids.length && pc.sync.memory.get(ids[readable]!) !== undefined) readable++
      return readable === ids.length
    }, 600_000, 'every memory on the PC')
    await pc.close()
    console.log(`phone transport errors during the join part: ${transportErrors.length === 0 ? 'none' : transportErrors.join(', ')}`)

    // Baseline: the same number of memories as plain Yjs maps, through the same relay code without auth.
    const plainServer = await startRelay('none')
    try {
      const writerDoc = new Y.Doc()
      const map = writerDoc.getMap<Y.Map<unknown>>('memories')
      const options = { WebSocketPolyfill: WS, disableBc: true, resyncInterval: -1 }
      const writer = new WebsocketProvider(plainServer.relay.url, 'plain-join', writerDoc, options)
      await whenTrue(() => writer.synced, 120_000, 'the plain writer to sync')
      // Written online in batches of 2000, as the phone does: the stock provider sends each
      // transaction as one frame, and one transaction of every memory would pass the relay's
      // frame limit (it cannot cut frames; the reader's first sync is cut by the relay).
      for (let start = 0; start < MEMORIES; start += 2000) {
        writerDoc.transact(() => {
          for (let i = start; i < Math.min(MEMORIES, start + 2000); i++) {
            const item = plainItem(i, 'plain')
            map.set(item.id, new Y.Map(Object.entries(item)))
          }
        })
        await new Promise((r) => setImmediate(r))
      }
      await new Promise((r) => setTimeout(r, 2000))
      // The provider's own Awareness keeps a timer past destroy(): end both, or the process never exits.
      writer.destroy()
      writer.awareness.destroy()
      const plainStart = performance.now()
      const readerDoc = new Y.Doc()
      const reader = new WebsocketProvider(plainServer.relay.url, 'plain-join', readerDoc, options)
      const plainSynced = await whenTrue(() => reader.synced, 600_000, 'the plain reader to sync')
      const plainFull = await whenTrue(() => readerDoc.getMap('memories').size >= MEMORIES, 600_000, 'every plain memory')
      reader.destroy()
      reader.awareness.destroy()
      const ms = (t: number, from: number): string => fmt(t - from, 'ms')
      printTable(`PC — join an account of ${MEMORIES} memories through a relay on 127.0.0.1`, ['step', 'PC (joinPc, E2EE)', 'plain Yjs client', 'ratio'], [
        ['admitted (pairing, registry, keys)', ms(admitted, started), '—', '—'],
        ['first answered recall / synced', ms(firstRecall, started), ms(plainSynced, plainStart), `${fmt((firstRecall - started) / (plainSynced - plainStart))}×`],
        ['every memory readable', ms(full, started), ms(plainFull, plainStart), `${fmt((full - started) / (plainFull - plainStart))}×`],
      ])
    } finally {
      await plainServer.close()
    }
  } finally {
    await phone.close()
    await transport.close()
    await server.close()
    rmSync(home, { recursive: true, force: true })
  }
}
