/**
 * The glasses runtime in real Chromium over a Bluetooth-sized link to a Node phone: the page
 * (test/browser/glasses-link-page.ts) runs `openGlasses` on IndexedDB; the phone is `openPhone`
 * on a relay on 127.0.0.1, with a PC on the same relay. The link's channel is a WebSocket
 * standing in for the BLE characteristic pair, framed to a 185-byte MTU and capped at
 * 24 000 B/s each way on the Node side (test/browser/link-bridge.ts: 4 × 185 B per 30 ms
 * connection event ≈ 24.7 KB/s). It shows:
 *
 * (a) the glasses pair over the relay, then every room moves to the link once it is up and
 *     Wi-Fi is down; memories and a streamed conversation flow glasses → phone → relay → PC and
 *     back (the page sees the PC's answer grow token by token); no message exceeds the MTU;
 * (b) the phone offline from the relay: the glasses and the phone still sync both ways (a
 *     streamed answer included) and the PC sees none of it; the phone reconnects and the PC
 *     converges;
 * (c) the link drops and the page reloads: the glasses reopen from IndexedDB alone, the link
 *     comes back, and they catch up on what they missed;
 * (d) a sniffer on the link sees ciphertext frames only: none of the plaintexts written on any
 *     device is in the bytes that crossed it.
 *
 * Loopback only. Skips loudly without Chromium.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ContextSync } from '../../src/index.js'
import type { Phone } from '../../adapters/phone/index.js'
import type { Relay } from '../../src/relay/index.js'
import type { GlassesLinkApi } from './glasses-link-api.js'
import { bundleForBrowser, CHROMIUM_LAUNCH, hasChromium, warnIfNoChromium } from './harness.js'
import { linkBridge, type LinkBridge } from './link-bridge.js'
import { relayOn, teardown, testPc, testPhone, waitUntil } from '../helpers/phone.js'

warnIfNoChromium('test/browser/glasses-link.test.ts (openGlasses in real Chromium over a link to a Node phone)')

const MTU = 185
const BYTES_PER_SECOND = 24_000
const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>glasses</title></head>
<body><script type="module" src="/glasses.js"></script></body></html>`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

describe.skipIf(!hasChromium)('openGlasses in real Chromium, linked to a Node phone over a 185-byte, throughput-capped channel', () => {
  const tag = randomBytes(6).toString('hex')
  /** Every plaintext written on any device, by name: none may cross the link in the clear. */
  const markers: Record<string, string> = {}
  const text = (name: string) => (markers[name] = `MARK-${name}-${tag}`)

  let profileDir: string
  let http: Server
  let pageUrl: string
  let context: BrowserContext
  let page: Page
  let relay: Relay
  let phone: Phone
  let pc: ContextSync
  let bridge: LinkBridge
  let sessionId: string
  const pageErrors: string[] = []
  const timings: Record<string, number> = {}

  function call<K extends keyof GlassesLinkApi>(name: K, ...args: Parameters<GlassesLinkApi[K]>): Promise<Awaited<ReturnType<GlassesLinkApi[K]>>> {
    return page.evaluate(
      ([n, a]) => (window.glassesLink as unknown as Record<string, (...x: unknown[]) => Promise<unknown>>)[n]!(...a),
      [name, args] as [string, unknown[]],
    ) as Promise<Awaited<ReturnType<GlassesLinkApi[K]>>>
  }

  async function loadPage(reload = false): Promise<void> {
    if (reload) await page.reload()
    else await page.goto(pageUrl)
    await page.waitForFunction(() => window.glassesLink !== undefined, undefined, { timeout: 10_000 })
  }

  const glassesHave = async (ids: string[]) => {
    const seen = new Set((await call('list')).map((m) => m.id))
    return ids.every((id) => seen.has(id))
  }

  /** Stream an answer on `dev` into the session, a token every `gapMs`. */
  async function streamAnswer(dev: ContextSync, tokens: string[], gapMs: number): Promise<void> {
    const answer = (await dev.sessions.whenAvailable(sessionId, { timeoutMs: 15_000 })).stream({ role: 'assistant' })
    for (const token of tokens) {
      answer.write(token)
      await sleep(gapMs)
    }
    await answer.end()
  }

  const timed = async <T>(label: string, run: () => Promise<T>): Promise<T> => {
    const started = Date.now()
    try {
      return await run()
    } finally {
      timings[label] = Date.now() - started
    }
  }

  beforeAll(async () => {
    profileDir = mkdtempSync(join(tmpdir(), 'contextsync-glasses-link-profile-'))
    const bundle = await bundleForBrowser({ glasses: 'test/browser/glasses-link-page.ts' })
    expect(bundle.errors).toEqual([])
    const script = bundle.outputs.get('glasses.js')!
    http = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (path === '/') res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE_HTML)
      else if (path === '/glasses.js') res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(script)
      else res.writeHead(404).end()
    })
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    pageUrl = `http://127.0.0.1:${(http.address() as AddressInfo).port}/`

    relay = await relayOn()
    phone = await testPhone(relay.url, { name: text('phoneName') })
    pc = await testPc(phone, relay.url)
    bridge = await linkBridge({ mtu: MTU, bytesPerSecond: BYTES_PER_SECOND, onChannel: (channel) => phone.serveLink(channel) })

    context = await chromium.launchPersistentContext(profileDir, CHROMIUM_LAUNCH)
    page = context.pages()[0] ?? (await context.newPage())
    page.on('pageerror', (error) => pageErrors.push(`pageerror: ${error.message}`))
    await loadPage()
  }, 60_000)

  afterAll(async () => {
    if (page && !page.isClosed()) await call('close').catch(() => undefined)
    await context?.close().catch(() => undefined)
    await bridge?.close()
    await teardown()
    await new Promise<void>((r) => (http ? http.close(() => r()) : r()))
    if (profileDir) rmSync(profileDir, { recursive: true, force: true })
    const t = bridge?.traffic
    console.info(
      `[browser-glasses-link] timings (ms): ${JSON.stringify(timings)}; link: ${t?.messagesIn} msgs / ${t?.bytesIn} B glasses→phone, ` +
        `${t?.messagesOut} msgs / ${t?.bytesOut} B phone→glasses, largest ${t?.largestIn} / ${t?.largestOut} B (MTU ${MTU})`,
    )
  }, 30_000)

  it('(a) pairs over the relay, then syncs memories and a streamed conversation glasses → phone → relay → PC and back over the link', async () => {
    const invite = await phone.invite({ kind: 'glasses' })
    const joined = await timed('join', () => call('join', invite.code, relay.url, text('glassesName')))
    expect(joined.scopes.sort()).toEqual(['local', 'location', 'personal'])

    await timed('link up', async () => {
      await call('linkUp', bridge.url, MTU)
      await call('setWifi', false)
      await waitUntil(async () => Object.values(await call('paths')).every((p) => p === 'link'), 10_000, 'every room on the link')
    })
    expect(await call('paths')).toEqual({ personal: 'link', location: 'link' })

    const mine = await call('remember', text('glassesMemory'))
    await timed('glasses memory on the PC', () => waitUntil(() => pc.memory.get(mine)?.text === markers.glassesMemory, 20_000, 'the glasses memory on the PC'))
    expect(phone.device.memory.get(mine)?.text).toBe(markers.glassesMemory)
    const theirs = (await pc.memory.remember({ text: text('pcMemory') })).id
    await timed('PC memory on the glasses', () => waitUntil(() => glassesHave([theirs]), 20_000, 'the PC memory on the glasses'))

    // The glasses dictate a question, streamed; the PC streams the answer back.
    const question = ['Where ', 'can ', 'I ', 'park ', `near ${text('question')}?`]
    sessionId = await call('converse', text('title'), question, 60)
    await waitUntil(() => pc.sessions.get(sessionId)?.turns[0]?.done === true, 20_000, 'the dictated question on the PC')
    expect(pc.sessions.get(sessionId)!.turns[0]!.text).toBe(question.join(''))
    const answer = ['Level ', '3 ', 'of ', 'the ', 'garage ', 'on ', `${text('answer')}.`]
    await timed('streamed answer PC → glasses', async () => {
      await streamAnswer(pc, answer, 150)
      await waitUntil(async () => (await call('turns', sessionId))[1]?.done === true, 20_000, 'the answer on the glasses')
    })
    const turns = await call('turns', sessionId)
    expect(turns.map((t) => [t.role, t.text, t.deviceId])).toEqual([
      ['user', question.join(''), joined.deviceId],
      ['assistant', answer.join(''), pc.deviceId],
    ])
    // Streamed, not delivered whole at the end: the page saw the answer grow.
    const grew = await call('seenWhileStreaming', sessionId, 1)
    expect(grew.length).toBeGreaterThan(1)
    expect(grew.every((partial) => answer.join('').startsWith(partial))).toBe(true)

    expect(bridge.traffic.bytesIn).toBeGreaterThan(0)
    expect(bridge.traffic.bytesOut).toBeGreaterThan(0)
    expect(bridge.traffic.largestIn).toBeLessThanOrEqual(MTU)
    expect(bridge.traffic.largestOut).toBeLessThanOrEqual(MTU)
    expect(await call('problems')).toEqual([])
    expect(pageErrors).toEqual([])
  }, 90_000)

  it('(b) with the phone offline from the relay the glasses and the phone still sync; the phone reconnects and the PC converges', async () => {
    phone.setNetwork({ online: false })
    const fromGlasses = await call('remember', text('offlineGlasses'))
    await timed('offline: glasses → phone', () => waitUntil(() => phone.device.memory.get(fromGlasses)?.text === markers.offlineGlasses, 20_000, 'the glasses memory on the offline phone'))
    const fromPhone = (await phone.device.memory.remember({ text: text('offlinePhone') })).id
    await timed('offline: phone → glasses', () => waitUntil(() => glassesHave([fromPhone]), 20_000, 'the offline phone memory on the glasses'))
    const offlineAnswer = ['Saved ', 'while ', `offline: ${text('offlineAnswer')}`]
    await streamAnswer(phone.device, offlineAnswer, 80)
    await waitUntil(async () => (await call('turns', sessionId))[2]?.done === true, 20_000, 'the offline answer on the glasses')
    expect((await call('turns', sessionId))[2]!.text).toBe(offlineAnswer.join(''))

    await sleep(500)
    expect(pc.memory.get(fromGlasses)).toBeUndefined()
    expect(pc.memory.get(fromPhone)).toBeUndefined()
    expect(pc.sessions.get(sessionId)?.turns).toHaveLength(2)

    phone.setNetwork({ online: true })
    await timed('PC converges after reconnect', () =>
      waitUntil(
        () => pc.memory.get(fromGlasses) !== undefined && pc.memory.get(fromPhone) !== undefined && pc.sessions.get(sessionId)?.turns[2]?.done === true,
        20_000,
        'the PC converging',
      ),
    )
    expect(pc.sessions.get(sessionId)!.turns[2]!.text).toBe(offlineAnswer.join(''))
    expect(await call('problems')).toEqual([])
  }, 90_000)

  it('(c) after the link drops and the page reloads, the glasses reopen from IndexedDB alone and catch up over the link', async () => {
    bridge.dropAll()
    await waitUntil(() => phone.links.length === 0, 10_000, 'the phone to see the link drop')
    const missed = (await pc.memory.remember({ text: text('whileAway') })).id
    await waitUntil(() => phone.device.memory.get(missed) !== undefined, 20_000, 'the PC memory on the phone')
    await loadPage(true) // abrupt: the device is not closed first
    const reopened = await call('open', relay.url)
    expect(reopened.scopes.sort()).toEqual(['local', 'location', 'personal'])
    const before = await call('list')
    expect(before.some((m) => m.text === markers.offlinePhone)).toBe(true)
    expect(before.some((m) => m.id === missed)).toBe(false)
    await timed('catch up after reload', async () => {
      await call('linkUp', bridge.url, MTU)
      await waitUntil(() => glassesHave([missed]), 20_000, 'the missed memory over the link')
    })
    const after = await call('remember', text('afterReload'))
    await waitUntil(() => pc.memory.get(after) !== undefined, 20_000, 'a write after the reload on the PC')
    expect((await call('turns', sessionId)).map((t) => t.done)).toEqual([true, true, true])
    expect(await call('problems')).toEqual([])
    expect(pageErrors).toEqual([])
  }, 90_000)

  it('(d) a sniffer on the link sees ciphertext frames only', () => {
    // A marker split across two frames would slip past a per-frame search: search each direction's stream.
    const streams = [Buffer.concat(bridge.traffic.captured.in), Buffer.concat(bridge.traffic.captured.out)]
    expect(streams[0]!.length + streams[1]!.length).toBeGreaterThan(10_000)
    const names = Object.keys(markers)
    expect(names.length).toBeGreaterThan(8)
    expect(names.filter((name) => streams.some((bytes) => bytes.includes(markers[name]!)))).toEqual([])
    // The control: the same search finds a marker once it is in the bytes.
    expect(Buffer.concat([streams[1]!, Buffer.from(markers.answer!)]).includes(markers.answer!)).toBe(true)
  })
})
