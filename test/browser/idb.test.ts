/**
 * IndexedDB in a real browser (issue 4): Debian's Chromium, driven by playwright-core, loads a page
 * that is the glasses runtime (test/browser/glasses-page.ts, bundled for `platform: 'browser'`):
 * a contextsync device on `indexedDbStorage` and the browser's native WebSocket. A Node phone
 * (the account owner) invites it through a real relay; the page joins with the code. Then:
 *
 * (a) the page and the phone sync memories and a conversation both ways;
 * (b) after a page reload the device reopens from IndexedDB alone — offline first, so nothing can
 *     come from the network — with the same id, name and data, and keeps syncing; the same after
 *     the whole browser is restarted on its profile (IndexedDB on disk, not in memory), and after
 *     it is killed with SIGKILL right after writes resolved (they are there);
 * (c) writes made while the browser is offline (`context.setOffline`, which stops WebSocket
 *     traffic and new connections) reach the phone once it is back online; and writes made while
 *     the relay is down survive an abrupt page reload and are uploaded when the relay returns;
 * (d) a byte search of every IndexedDB record (and of the profile's IndexedDB files on disk)
 *     finds none of the plaintext markers written on either device — while the same bytes,
 *     reopened as a store in Node, do yield them, and the same search finds a plaintext control;
 * (e) a tampering relay takes the relay's place and wipes every room, the registry's included:
 *     the glasses lose nothing, report it (`Erased`, 14), and reopen from IndexedDB alone after an
 *     abrupt reload with every memory and their keys; the rooms fill again (republished).
 *
 * Loopback only (relay and page server on 127.0.0.1). Skips loudly without Chromium.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { ContextSync, createAccount, memoryStorage, type Transport } from '../../src/index.js'
import { websocketTransport } from '../../src/entries/websocket.js'
import { createRelay, silentLogger, type Relay } from '../../src/relay/index.js'
import { createTamperingRelay } from '../../src/entries/testing.js'
import { RejectCode } from '../../src/index.js'
import { GLASSES_DB, type DumpedRecord, type GlassesApi } from './glasses-api.js'
import { bundleForBrowser, CHROMIUM_LAUNCH, hasChromium, warnIfNoChromium } from './harness.js'

warnIfNoChromium('test/browser/idb.test.ts (IndexedDB in real Chromium)')

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>glasses</title></head>
<body><script type="module" src="/glasses.js"></script></body></html>`

async function until(predicate: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now()
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
  return Date.now() - start
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The names of `markers` found in `bytes`, as UTF-8, UTF-16LE or UTF-16BE (as test/crypto/at-rest.test.ts does). */
function foundIn(bytes: Buffer, markers: Record<string, string>): string[] {
  const found: string[] = []
  for (const [name, marker] of Object.entries(markers)) {
    const le = Buffer.from(marker, 'utf16le')
    const be = Buffer.from(le).swap16()
    if (bytes.includes(marker) || bytes.includes(le) || bytes.includes(be)) found.push(name)
  }
  return found
}

function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...filesUnder(path))
    else out.push(path)
  }
  return out
}

describe.skipIf(!hasChromium)('the glasses runtime in real Chromium (IndexedDB + native WebSocket) with a Node phone through a relay', () => {
  const tag = randomBytes(6).toString('hex')
  const mark = (name: string) => `MARK-${name}-${tag}`
  /** Every plaintext that must never reach the glasses' IndexedDB, by name. */
  const markers: Record<string, string> & { glassesName: string; phoneName: string } = {
    glassesName: `Glasses of Ana ${tag}`,
    phoneName: `Phone of Ana ${tag}`,
  }
  const text = (name: string) => {
    markers[name] = mark(name)
    return markers[name]!
  }

  const cleanups: Array<() => unknown> = []
  let dataDir: string
  let profileDir: string
  let relay: Relay
  let relayPort: number
  let http: Server
  let pageUrl: string
  let context: BrowserContext
  let page: Page
  let phone: ContextSync
  const pageErrors: string[] = []
  /** What the glasses wrote, by id → text; and what the phone wrote. */
  const fromGlasses = new Map<string, string>()
  const fromPhone = new Map<string, string>()
  let glassesId: string
  let sessionId: string
  const timings: Record<string, number> = {}

  /** Call a function of `window.glasses` in the page. */
  function call<K extends keyof GlassesApi>(name: K, ...args: Parameters<GlassesApi[K]>): Promise<Awaited<ReturnType<GlassesApi[K]>>> {
    return page.evaluate(
      ([n, a]) => (window.glasses as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>)[n]!(...a),
      [name, args] as [string, unknown[]],
    ) as Promise<Awaited<ReturnType<GlassesApi[K]>>>
  }

  async function startRelay(port = 0): Promise<Relay> {
    const r = await createRelay({ port, dataDir, logger: silentLogger, persistence: { mergeIntervalMs: 100 } })
    relay = r
    return r
  }

  /** PIDs of this test's Chromium processes (they all carry its unique profile dir). */
  function chromiumPids(): Array<{ pid: number; main: boolean }> {
    const out: Array<{ pid: number; main: boolean }> = []
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      let cmdline: string
      try {
        cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      } catch {
        continue // exited meanwhile
      }
      const args = cmdline.split('\0')
      if (args.includes(`--user-data-dir=${profileDir}`)) out.push({ pid: Number(entry), main: !args.some((a) => a.startsWith('--type=')) })
    }
    return out
  }

  /** SIGKILL the browser process (no shutdown, no flush), then make sure none of its processes is left. */
  async function killBrowser(): Promise<void> {
    const main = chromiumPids().filter((p) => p.main)
    expect(main).toHaveLength(1)
    process.kill(main[0]!.pid, 'SIGKILL')
    try {
      await until(() => chromiumPids().length === 0, 5_000, 'the killed browser processes to exit')
    } catch {
      for (const { pid } of chromiumPids()) process.kill(pid, 'SIGKILL')
    }
  }

  async function launch(): Promise<void> {
    context = await chromium.launchPersistentContext(profileDir, CHROMIUM_LAUNCH)
    page = context.pages()[0] ?? (await context.newPage())
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`))
    await loadPage()
  }

  async function loadPage(reload = false): Promise<void> {
    if (reload) await page.reload()
    else await page.goto(pageUrl)
    await page.waitForFunction(() => window.glasses !== undefined, undefined, { timeout: 10_000 })
  }

  async function phoneRemembers(name: string, scope?: string): Promise<string> {
    const item = await phone.memory.remember({ text: text(name), ...(scope !== undefined && { scope }) })
    fromPhone.set(item.id, item.text)
    return item.id
  }

  async function glassesRemember(name: string): Promise<string> {
    const id = await call('remember', text(name))
    fromGlasses.set(id, markers[name]!)
    return id
  }

  async function glassesHave(ids: Iterable<string>): Promise<boolean> {
    const seen = new Map((await call('list')).map((m) => [m.id, m.text]))
    return [...ids].every((id) => seen.get(id) === (fromPhone.get(id) ?? fromGlasses.get(id)))
  }

  const phoneHas = (ids: Iterable<string>) => [...ids].every((id) => phone.memory.get(id)?.text === fromGlasses.get(id))

  beforeAll(async () => {
    const started = Date.now()
    dataDir = mkdtempSync(join(tmpdir(), 'contextsync-browser-relay-'))
    profileDir = mkdtempSync(join(tmpdir(), 'contextsync-browser-profile-'))
    cleanups.push(() => rmSync(dataDir, { recursive: true, force: true }), () => rmSync(profileDir, { recursive: true, force: true }))

    const bundle = await bundleForBrowser({ glasses: 'test/browser/glasses-page.ts' })
    expect(bundle.errors).toEqual([])
    const script = bundle.outputs.get('glasses.js')!
    http = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (path === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE_HTML)
      else if (path === '/glasses.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script)
      else res.writeHead(404).end()
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise<void>((r) => http.close(() => r())))
    pageUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`

    relayPort = (await startRelay()).port
    cleanups.push(() => relay.close())

    const account = await createAccount()
    const transport: Transport = websocketTransport({ url: relay.url, WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket, maxBackoffTime: 300 })
    cleanups.push(() => transport.close())
    phone = await ContextSync.open({ account, device: { kind: 'phone', name: markers.phoneName }, storage: memoryStorage(), transports: [transport] })
    cleanups.push(() => phone.close())

    await launch()
    cleanups.push(() => context.close())
    timings.setup = Date.now() - started
  }, 30_000)

  afterAll(async () => {
    if (page && !page.isClosed()) await call('close').catch(() => undefined)
    for (const fn of cleanups.splice(0).reverse()) {
      try {
        await fn()
      } catch {
        // best effort: keep releasing the rest
      }
    }
    console.info(`[browser-idb] timings (ms): ${JSON.stringify(timings)}`)
  }, 20_000)

  it('(a) pairs with an invite code from the Node phone, then the two sync memories and a conversation both ways', async () => {
    let started = Date.now()
    const invite = await phone.devices.invite({ kind: 'glasses', name: markers.glassesName })
    const joined = await call('join', invite.code, relay.url, markers.glassesName)
    timings.join = Date.now() - started
    glassesId = joined.deviceId
    expect(joined.kind).toBe('glasses')
    expect(joined.scopes).toEqual(expect.arrayContaining(['personal', 'health', 'location']))
    expect(joined.scopes).not.toContain('payments')
    await until(() => phone.devices.list().some((d) => d.deviceId === glassesId && d.kind === 'glasses'), 10_000, 'the phone to list the glasses')

    started = Date.now()
    await phoneRemembers('phoneMemory')
    await phoneRemembers('phoneHealth', 'health')
    await glassesRemember('glassesMemory')
    sessionId = await call('converse', text('glassesTitle'), text('glassesTurn'))
    await until(() => glassesHave(fromPhone.keys()), 15_000, 'the glasses to receive the phone memories')
    await until(() => phoneHas(fromGlasses.keys()), 15_000, 'the phone to receive the glasses memory')
    await until(() => phone.sessions.get(sessionId)?.turns[0]?.text === markers.glassesTurn, 15_000, 'the conversation on the phone')
    expect(phone.sessions.get(sessionId)?.title).toBe(markers.glassesTitle)
    timings.syncBothWays = Date.now() - started
    expect(await call('problems')).toEqual([])
    expect(pageErrors).toEqual([])
  }, 40_000)

  it('(b) reopens from IndexedDB alone after a reload, a browser restart and a browser SIGKILL: same id, same data, and keeps syncing', async () => {
    expect(glassesId).toBeDefined()
    const everything = () => new Set([...fromPhone.keys(), ...fromGlasses.keys()])
    const ways = ['page reload', 'browser restart', 'browser killed'] as const
    for (const how of ways) {
      const suffix = { 'page reload': 'Reload', 'browser restart': 'Restart', 'browser killed': 'Kill' }[how]
      const started = Date.now()
      if (how === 'page reload') {
        // Abrupt: the device is not closed first; the page's IndexedDB connection just goes away.
        await loadPage(true)
      } else if (how === 'browser restart') {
        // A clean shutdown of Chromium: IndexedDB lives on disk in the profile, not in memory.
        await context.close()
        await launch()
      } else {
        // SIGKILL right after writes resolved: a resolved write is durable (durability 'strict').
        for (let i = 1; i <= 3; i++) await glassesRemember(`beforeKill${i}`)
        await killBrowser()
        await launch()
      }
      // No transport: whatever the device has now came from IndexedDB.
      const offline = await call('open')
      timings[`open after ${how}`] = Date.now() - started
      expect(offline).toEqual({ deviceId: glassesId, kind: 'glasses', name: markers.glassesName, scopes: expect.arrayContaining(['personal', 'health']) })
      expect(await glassesHave(everything())).toBe(true)
      expect(await call('turns', sessionId)).toEqual([markers.glassesTurn])
      await call('close')

      // Online again, with the same store: it keeps syncing both ways.
      const online = await call('open', relay.url)
      expect(online.deviceId).toBe(glassesId)
      const mine = await glassesRemember(`afterReopen${suffix}`)
      const theirs = await phoneRemembers(`phoneAfter${suffix}`)
      await until(() => phoneHas([mine]), 15_000, `the phone to receive a write made after the ${how}`)
      await until(() => glassesHave([theirs]), 15_000, `the glasses to receive a phone write after the ${how}`)
      expect(await call('problems')).toEqual([])
    }
    expect(pageErrors).toEqual([])
  }, 45_000)

  it('(c) keeps writes made offline: browser offline (setOffline) and relay down across an abrupt reload', async () => {
    // 1. The browser goes offline. Chromium's offline emulation does not close open WebSockets;
    //    it stops their traffic in both directions (and refuses new ones) until it is lifted.
    await context.setOffline(true)
    const offlineGlasses = [await glassesRemember('offlineGlasses1'), await glassesRemember('offlineGlasses2'), await glassesRemember('offlineGlasses3')]
    const offlinePhone = await phoneRemembers('phoneWhileGlassesOffline')
    // Offline really is offline: a new WebSocket from the page fails, and nothing crosses for a while.
    const probe = await call('probeWebSocket', `${relay.url}/probe`, 3_000)
    expect(probe).toBe('closed')
    await sleep(1_000)
    expect(offlineGlasses.filter((id) => phone.memory.get(id) !== undefined)).toEqual([])
    expect(await glassesHave([offlinePhone])).toBe(false)
    let started = Date.now()
    await context.setOffline(false)
    await until(() => phoneHas(offlineGlasses), 15_000, 'the phone to receive the writes made offline')
    await until(() => glassesHave([offlinePhone]), 15_000, 'the glasses to catch up with the phone')
    timings.catchUpAfterOffline = Date.now() - started

    // 2. The relay goes down; the glasses write, then the page is reloaded abruptly (not closed)
    //    and the device reopened, still without a relay: the writes must come back from
    //    IndexedDB and be uploaded when the relay returns (same port, same data dir).
    await relay.close()
    await until(async () => Object.values(await call('status')).every((s) => s === 'disconnected' || s === 'connecting'), 10_000, 'the glasses to notice the relay is gone')
    const downGlasses = [await glassesRemember('relayDownGlasses1'), await glassesRemember('relayDownGlasses2')]
    const downPhone = await phoneRemembers('phoneWhileRelayDown')
    await loadPage(true)
    const reopened = await call('open', `ws://127.0.0.1:${relayPort}`)
    expect(reopened.deviceId).toBe(glassesId)
    expect(await glassesHave(downGlasses)).toBe(true)
    expect(phoneHas(downGlasses)).toBe(false)
    started = Date.now()
    await startRelay(relayPort)
    await until(() => phoneHas(downGlasses), 20_000, 'the phone to receive the writes made while the relay was down')
    await until(() => glassesHave([downPhone]), 20_000, 'the glasses to receive the phone write made while the relay was down')
    timings.catchUpAfterRelayRestart = Date.now() - started
    // Everything, everywhere.
    expect(phoneHas(fromGlasses.keys())).toBe(true)
    expect(await glassesHave([...fromPhone.keys(), ...fromGlasses.keys()])).toBe(true)
    expect(await call('problems')).toEqual([])
    expect(pageErrors).toEqual([])
  }, 60_000)

  it('(d) no plaintext marker from either device is in IndexedDB (records and files on disk); the search can find one', async () => {
    expect(glassesId).toBeDefined()
    // The markers are there to be found: the device shows them through the API…
    const shown = (await call('list')).map((m) => m.text)
    for (const id of [...fromPhone.keys(), ...fromGlasses.keys()]) expect(shown).toContain(fromPhone.get(id) ?? fromGlasses.get(id))
    expect(Object.keys(markers).length).toBeGreaterThan(15)

    const records = await call('dumpIndexedDb')
    const decoded = records.map((r: DumpedRecord) => ({ ...r, bytes: Buffer.from(r.value, 'base64') }))
    expect(new Set(decoded.map((r) => `${r.database}/${r.store}`))).toEqual(new Set([`${GLASSES_DB}/contextsync-chunks`]))
    expect(decoded.every((r) => r.binary)).toBe(true)
    const all = Buffer.concat(decoded.flatMap((r) => [Buffer.from(r.key), r.bytes]))
    const totalBytes = decoded.reduce((n, r) => n + r.bytes.length, 0)

    // …and the dumped bytes hold them, encrypted: reopened as a store in Node (keys from the same
    // records, no network), they yield every marker.
    const storage = memoryStorage()
    for (const r of decoded) await storage.save(JSON.parse(r.key) as string[], new Uint8Array(r.bytes))
    const copy = await ContextSync.open({ storage })
    try {
      expect(copy.deviceId).toBe(glassesId)
      expect(copy.name).toBe(markers.glassesName)
      const texts = new Set(copy.memory.list().map((m) => m.text))
      for (const t of [...fromPhone.values(), ...fromGlasses.values()]) expect(texts.has(t), `${t} recovered from the dumped records`).toBe(true)
      expect(copy.sessions.get(sessionId)?.turns[0]?.text).toBe(markers.glassesTurn)
    } finally {
      await copy.close()
    }

    // The search itself: no marker, no device name, not even a scope name, in any key or value.
    const scopeNames = { personal: 'personal', health: 'health', location: 'location' }
    expect(foundIn(all, { ...markers, ...scopeNames })).toEqual([])

    // Control: the same dump + search finds plaintext written to IndexedDB by the same page.
    await call('writeControl', 'contextsync-control', mark('control'))
    const control = Buffer.concat((await call('dumpIndexedDb', 'contextsync-control')).map((r) => Buffer.from(r.value, 'base64')))
    expect(foundIn(control, { control: mark('control') })).toEqual(['control'])

    // The profile's IndexedDB files on disk: no marker; the control is visible there (in the
    // leveldb write-ahead log), so the disk search can fail too.
    const idbDir = join(profileDir, 'Default', 'IndexedDB')
    const files = filesUnder(idbDir)
    expect(files.length).toBeGreaterThan(0)
    const disk = Buffer.concat(files.map((f) => readFileSync(f)))
    expect(foundIn(disk, markers)).toEqual([])
    const controlOnDisk = foundIn(disk, { control: mark('control') })
    console.info(
      `[browser-idb] IndexedDB: ${decoded.length} records, ${totalBytes} bytes; profile IndexedDB dir: ${files.length} files, ${disk.length} bytes; ` +
        `plaintext control visible on disk: ${controlOnDisk.length === 1}`,
    )
    expect(controlOnDisk).toEqual(['control'])
  }, 30_000)

  it('(e) a relay wiping every room, the registry included, costs the glasses nothing, also after a reload from IndexedDB', async () => {
    expect(glassesId).toBeDefined()
    const everything = () => new Set([...fromPhone.keys(), ...fromGlasses.keys()])
    await relay.close()
    // A relay that lost everything and then turns hostile: both devices re-upload to it first.
    const tamper = await createTamperingRelay({ port: relayPort })
    cleanups.push(() => tamper.close())
    const personal = phone.roomId('personal')
    await until(() => (tamper.rooms().includes(personal) ? tamper.room(personal).entries().length > 0 : false), 20_000, 'the devices to re-upload')
    await until(async () => Object.values(await call('status')).some((s) => s === 'synced'), 20_000, 'the glasses to reconnect')
    const before = (await call('problems')).length
    for (const roomId of tamper.rooms()) tamper.room(roomId).wipe()
    await until(
      async () => (await call('problems')).slice(before).some((p) => p.startsWith(`rejected ${RejectCode.Erased} `)),
      15_000,
      'the glasses to report the erasure',
    )
    expect(await glassesHave(everything())).toBe(true)
    await until(() => tamper.room(personal).entries().length > 0, 15_000, 'the devices to republish')

    // Abrupt reload, then offline: everything comes back from IndexedDB, keys included.
    await loadPage(true)
    const offline = await call('open')
    expect(offline.deviceId).toBe(glassesId)
    expect(offline.scopes).toEqual(expect.arrayContaining(['personal', 'health']))
    expect(await glassesHave(everything())).toBe(true)
    await call('close')
    const online = await call('open', tamper.url)
    expect(online.deviceId).toBe(glassesId)
    const mine = await glassesRemember('afterWipe')
    await until(() => phoneHas([mine]), 15_000, 'the phone to receive a write made after the wipe')
    expect(pageErrors).toEqual([])
  }, 60_000)
})
