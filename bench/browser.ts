/**
 * Browser storage benchmark: cold open in real Chromium of a device store holding N
 * memories (after compaction) on `indexedDbStorage`, vs plain Yjs loading the same state from the
 * same adapter, and vs a plain Y.Doc persisted with `y-indexeddb`.
 *
 * - The stores are built in Node — a `glasses` device on `memoryStorage` writes N memories in
 *   bursts and compacts — and their chunks are copied byte for byte into IndexedDB in the page;
 *   the baseline is `Y.encodeStateAsUpdate` of an equivalent plain doc (the same items written
 *   with `insertMemory`), stored as one chunk under the same key layout in another database.
 * - The y-indexeddb subject: in the page, `IndexeddbPersistence` is bound to an empty Y.Doc on a
 *   fresh database of the same profile, and that same plain state is applied to the doc, so
 *   y-indexeddb stores it as one update record (what its trim at PREFERRED_TRIM_SIZE, 500 records,
 *   leaves behind). Its cold open is `new IndexeddbPersistence(name, doc)` until `whenSynced`, then
 *   the first read of every memory. y-indexeddb adds a record on every open (its issue #31), so the
 *   store's record count is printed after the runs.
 * - Each measurement runs in a freshly launched browser on the same profile (cold: new process,
 *   new IndexedDB backend, new JS heap); timings are taken in the page. One unmeasured warm-up of
 *   each, then the three alternate.
 *
 * Environment: BENCH_BROWSER_N (20000), BENCH_RUNS (3), CONTEXTSYNC_CHROMIUM (/usr/bin/chromium).
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { PREFERRED_TRIM_SIZE } from 'y-indexeddb'
import * as Y from 'yjs'
import { insertMemory } from '../src/crdt/memory.js'
import { ContextSync, createAccount, memoryStorage } from '../src/index.js'
import { bundleForBrowser, CHROMIUM_LAUNCH, CHROMIUM_PATH, hasChromium } from '../test/browser/harness.js'
import type { BenchPageApi } from './browser-page.js'
import { fmt, median, printTable } from './table.js'

const N = Number(process.env.BENCH_BROWSER_N ?? 20_000)
const RUNS = Math.max(3, Number(process.env.BENCH_RUNS ?? 3))
const BURST = 5_000
/** The y-indexeddb database (a fresh one in the bench profile). */
const YIDB = 'y-indexeddb'

type Timing = Awaited<ReturnType<BenchPageApi['openDevice']>>

function text(i: number): string {
  return `Remembered fact number ${i}: likes ${i % 2 ? 'tea' : 'coffee'} at ${i % 24}:00`
}

interface Store {
  manifest: Array<{ key: string[]; size: number }>
  body: Buffer
}

function store(chunks: Array<{ key: readonly string[]; data: Uint8Array }>): Store {
  return {
    manifest: chunks.map((c) => ({ key: [...c.key], size: c.data.byteLength })),
    body: Buffer.concat(chunks.map((c) => c.data)),
  }
}

/** The device store's chunks and the plain store's one chunk, built in Node. */
async function buildStores(): Promise<{ device: Store; plain: Store; roomId: string; buildMs: number }> {
  const start = performance.now()
  const account = await createAccount()
  const storage = memoryStorage()
  const dev = await ContextSync.open({ account, device: { kind: 'glasses', name: 'Bench glasses' }, storage })
  for (let i = 0; i < N; i += BURST) {
    const burst: Array<Promise<unknown>> = []
    for (let j = i; j < Math.min(N, i + BURST); j++) burst.push(dev.memory.remember({ text: text(j), tags: [`t${j % 10}`] }))
    await Promise.all(burst)
  }
  await dev.replica('personal')!.compactNow()
  const items = dev.memory.list()
  const roomId = dev.roomId('personal')
  await dev.close()
  const chunks = await storage.loadRange([])
  const doc = new Y.Doc()
  for (let i = 0; i < items.length; i += BURST) {
    doc.transact(() => {
      for (const item of items.slice(i, i + BURST)) insertMemory(doc, item)
    })
  }
  const state = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return {
    device: store(chunks),
    plain: store([{ key: ['replica', roomId, 'log', '000000000000'], data: state }]),
    roomId,
    buildMs: performance.now() - start,
  }
}

/** Chromium's cold-open figures for N memories on IndexedDB vs plain Yjs and y-indexeddb. Registered in bench/run.ts. */
export async function benchBrowser(): Promise<void> {
  if (!hasChromium) {
    console.warn(`\n[bench browser] SKIPPED: no Chromium at ${CHROMIUM_PATH} (install Debian's chromium or set CONTEXTSYNC_CHROMIUM)`)
    return
  }
  const bundle = await bundleForBrowser({ 'bench-page': 'bench/browser-page.ts' }, { minify: true })
  if (bundle.errors.length > 0) throw new Error(`bench page does not bundle: ${bundle.errors.join('; ')}`)
  const script = bundle.outputs.get('bench-page.js')!
  const stores = await buildStores()
  const http = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    const chunk = /^\/chunks\/(device|plain)\.(json|bin)$/.exec(path ?? '')
    if (chunk) {
      const s = stores[chunk[1] as 'device' | 'plain']
      if (chunk[2] === 'json') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(s.manifest))
      else res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(s.body)
    } else if (path === '/') res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><script type="module" src="/bench.js"></script>')
    else if (path === '/bench.js') res.writeHead(200, { 'content-type': 'text/javascript' }).end(script)
    else res.writeHead(404).end()
  })
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`
  const profile = mkdtempSync(join(tmpdir(), 'contextsync-bench-browser-'))
  let context: BrowserContext | undefined

  /** A fresh browser on the profile, with the page loaded; `fn` runs in it, then the browser closes. */
  const inFreshBrowser = async <T>(fn: (page: Page) => Promise<T>): Promise<T> => {
    context = await chromium.launchPersistentContext(profile, CHROMIUM_LAUNCH)
    try {
      const page = context.pages()[0] ?? (await context.newPage())
      await page.goto(url)
      await page.waitForFunction(() => window.bench !== undefined)
      return await fn(page)
    } finally {
      await context.close()
      context = undefined
    }
  }
  const call = <K extends keyof BenchPageApi>(page: Page, name: K, ...args: Parameters<BenchPageApi[K]>) =>
    page.evaluate(
      ([n, a]) => (window.bench as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>)[n]!(...a),
      [name, args] as [string, unknown[]],
    ) as Promise<Awaited<ReturnType<BenchPageApi[K]>>>

  try {
    const importStart = performance.now()
    const yidbImported = await inFreshBrowser(async (page) => {
      await call(page, 'importChunks', 'device')
      await call(page, 'importChunks', 'plain')
      return call(page, 'importYIndexedDb', YIDB, 'plain')
    })
    console.log(
      `\nbuilt the ${N}-memory stores in Node in ${fmt(stores.buildMs / 1000, 's')}, copied into IndexedDB in ${fmt((performance.now() - importStart) / 1000, 's')} ` +
        `(device: ${stores.device.manifest.length} chunks, ${fmt(stores.device.body.length / 1024 / 1024, 'MiB')}; plain: ${fmt(stores.plain.body.length / 1024 / 1024, 'MiB')}; ` +
        `y-indexeddb: ${yidbImported.records} update records, ${fmt(yidbImported.bytes / 1024 / 1024, 'MiB')})`,
    )
    const openDevice = () => inFreshBrowser((page) => call(page, 'openDevice', 'device'))
    const openPlain = () => inFreshBrowser((page) => call(page, 'openPlain', 'plain', stores.roomId))
    const openYidb = () => inFreshBrowser((page) => call(page, 'openYIndexedDb', YIDB))
    await openDevice()
    await openPlain()
    await openYidb()
    const device: Timing[] = []
    const plain: Timing[] = []
    const yidb: Timing[] = []
    for (let r = 0; r < RUNS; r++) {
      device.push(await openDevice())
      plain.push(await openPlain())
      yidb.push(await openYidb())
    }
    for (const t of [...device, ...plain, ...yidb]) if (t.count !== N) throw new Error(`a store opened with ${t.count} memories, expected ${N}`)
    const yidbAfter = await inFreshBrowser((page) => call(page, 'yIndexedDbRecords', YIDB))
    const baseOf = (runs: Timing[]) => ({ open: median(runs.map((r) => r.openMs)), total: median(runs.map((r) => r.openMs + r.listMs)) })
    const base = baseOf(plain)
    const yBase = baseOf(yidb)
    const row = (name: string, runs: Timing[], bytes: number): string[] => {
      const open = median(runs.map((r) => r.openMs))
      const total = median(runs.map((r) => r.openMs + r.listMs))
      return [
        name,
        fmt(open, 'ms'),
        fmt(median(runs.map((r) => r.listMs)), 'ms'),
        fmt(total, 'ms'),
        fmt(open / base.open, '×'),
        fmt(total / base.total, '×'),
        fmt(open / yBase.open, '×'),
        fmt(total / yBase.total, '×'),
        fmt(bytes / 1024 / 1024, 'MiB'),
      ]
    }
    printTable(
      `Cold open in Chromium (fresh browser per run) of an IndexedDB store holding ${N} memories (after compaction; ` +
        `y-indexeddb at its default PREFERRED_TRIM_SIZE ${PREFERRED_TRIM_SIZE}: ${yidbImported.records} update records, untrimmed), median of ${RUNS} runs; target ≤ 1.5× plain`,
      ['subject', 'open', 'first list', 'open+list', 'open vs plain', 'open+list vs plain', 'open vs y-idb', 'open+list vs y-idb', 'payload'],
      [
        row('plain Yjs from indexedDbStorage (baseline)', plain, stores.plain.body.length),
        row(`plain Y.Doc with y-indexeddb IndexeddbPersistence`, yidb, yidbImported.bytes),
        row('ContextSync on indexedDbStorage', device, stores.device.body.length),
      ],
    )
    console.log(
      `y-indexeddb's updates store: ${yidbImported.records} records, ${yidbImported.bytes} B after the import (the state, plus the empty doc's state written on open); ` +
        `${yidbAfter.records} records, ${yidbAfter.bytes} B after ${RUNS + 1} cold opens (it adds one record per open: y-indexeddb issue #31)`,
    )
  } finally {
    await context?.close()
    await new Promise<void>((r) => http.close(() => r()))
    rmSync(profile, { recursive: true, force: true })
  }
}

// `tsx bench/browser.ts` runs it on its own.
if (import.meta.url === `file://${process.argv[1]}`) await benchBrowser()
