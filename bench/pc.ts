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
 * Sizes: BENCH_PC_MEMORIES, BENCH_PC_QUERIES.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import * as prng from 'lib0/prng'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { createMcpServer, initPc, openPc } from '../adapters/pc/index.js'
import { fmt, percentile, printTable } from './table.js'

const MEMORIES = Number(process.env.BENCH_PC_MEMORIES ?? 100_000)
const QUERIES = Number(process.env.BENCH_PC_QUERIES ?? 200)
const ROOT = resolve(import.meta.dirname, '..')

const rng = prng.create(17)
const VOCAB = Array.from({ length: 4000 }, (_, i) => `w${(i * 7919) % 100_003}`)
const word = (): string => VOCAB[Math.min(VOCAB.length - 1, Math.floor(Math.pow(prng.real53(rng), 3) * VOCAB.length))]!

/** `BENCH=pc npm run bench`. */
export async function benchPc(): Promise<void> {
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
