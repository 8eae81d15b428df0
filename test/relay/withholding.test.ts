/**
 * A relay that withholds envelopes (DESIGN §3): it cannot forge or read them, but it can drop
 * them. Devices announce their latest seq per scope in sealed presence; a device that does not
 * receive an announced envelope reports `sync-lag`. The "malicious relay" here is a proxy on
 * 127.0.0.1 in front of the real relay that drops sync updates of chosen rooms towards one device
 * while passing everything else (awareness included).
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer, type RawData } from 'ws'
import { ContextSync, createAccount, memoryStorage, type SyncLagEvent, type Transport } from '../../src/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { createRelay, silentLogger } from '../../src/relay/index.js'
import { NodeWebSocket, waitFor } from './helpers.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

interface WithholdingProxy {
  url: string
  /** Rooms whose sync updates (step 2 and updates) are dropped on the way to the client. */
  withheld: Set<string>
  dropped: number
  /** Close every proxied connection (clients reconnect). */
  cutAll(): void
}

async function withholdingProxy(upstreamUrl: string): Promise<WithholdingProxy> {
  const server: Server = createServer()
  const wss = new WebSocketServer({ server })
  const sockets = new Set<WebSocket>()
  const proxy: WithholdingProxy = {
    url: '',
    withheld: new Set(),
    dropped: 0,
    cutAll: () => {
      for (const s of sockets) s.close()
    },
  }
  wss.on('connection', (client, request) => {
    const path = request.url ?? '/'
    const room = decodeURIComponent(path.slice(1).split('?')[0] ?? '')
    // Like any WebSocket proxy, it passes the subprotocols on (the token rides in one).
    const protocols = request.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim())
    const upstream = new WebSocket(upstreamUrl.replace(/\/$/, '') + path, protocols)
    sockets.add(client)
    const queued: RawData[] = []
    client.on('message', (data) => (upstream.readyState === WebSocket.OPEN ? upstream.send(data) : queued.push(data)))
    upstream.on('open', () => {
      for (const data of queued.splice(0)) upstream.send(data)
    })
    upstream.on('message', (data: Buffer) => {
      const bytes = new Uint8Array(data)
      // y-websocket: [0 = sync, 1 = step 2 | 2 = update, …]
      if (proxy.withheld.has(room) && bytes[0] === 0 && (bytes[1] === 1 || bytes[1] === 2)) {
        proxy.dropped++
        return
      }
      if (client.readyState === WebSocket.OPEN) client.send(data)
    })
    const closeBoth = () => {
      sockets.delete(client)
      if (client.readyState <= WebSocket.OPEN) client.close()
      if (upstream.readyState <= WebSocket.OPEN) upstream.close()
    }
    client.on('close', closeBoth)
    upstream.on('close', closeBoth)
    client.on('error', closeBoth)
    upstream.on('error', closeBoth)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        proxy.cutAll()
        wss.close()
        server.close(() => resolve())
      }),
  )
  return proxy
}

function transportTo(url: string): Transport {
  const t = websocketTransport({ url, WebSocketPolyfill: NodeWebSocket, maxBackoffTime: 200 })
  cleanups.push(() => t.close())
  return t
}

describe('a withholding relay is noticed', () => {
  it('reports sync-lag for the scopes whose envelopes were dropped, and caught-up once they arrive', async () => {
    const relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger })
    cleanups.push(() => relay.close())
    const proxy = await withholdingProxy(relay.url)
    const account = await createAccount()
    const sync = { lagTimeoutMs: 400 }
    const phone = await ContextSync.open({ account, device: { kind: 'phone' }, storage: memoryStorage(), transports: [transportTo(relay.url)], sync })
    cleanups.push(() => phone.close())
    const pc = await ContextSync.open({ account, device: { kind: 'pc' }, storage: memoryStorage(), transports: [transportTo(proxy.url)], sync })
    cleanups.push(() => pc.close())
    const lags: SyncLagEvent[] = []
    pc.on('sync-lag', (e) => lags.push(e))

    // Honest relay: writes in two scopes arrive, announcements match, nothing is reported.
    const first = await phone.memory.remember({ text: 'first, personal' })
    const firstWork = await phone.memory.remember({ text: 'first, work', scope: 'work' })
    await waitFor(() => pc.memory.get(first.id) !== undefined && pc.memory.get(firstWork.id) !== undefined, 10_000, 'first writes on the pc')
    await waitFor(
      () => ['personal', 'work'].every((scope) => pc.syncStatus().some((s) => s.scope === scope && s.deviceId === phone.deviceId && s.caughtUp)),
      10_000,
      'announcements of the phone on the pc',
    )
    await new Promise((r) => setTimeout(r, 900))
    expect(lags).toEqual([])

    // The relay starts dropping both rooms' updates towards the pc; presence still flows.
    proxy.withheld.add(phone.roomId('personal'))
    proxy.withheld.add(phone.roomId('work'))
    const hidden = await phone.memory.remember({ text: 'second, personal' })
    const hiddenWork = await phone.memory.remember({ text: 'second, work', scope: 'work' })
    await waitFor(() => lags.filter((e) => e.state === 'behind').length === 2, 10_000, 'two behind reports')
    expect(proxy.dropped).toBeGreaterThanOrEqual(2)
    expect(pc.memory.get(hidden.id)).toBeUndefined()
    expect(lags.map((e) => [e.state, e.scope, e.deviceId]).sort()).toEqual([
      ['behind', 'personal', phone.deviceId],
      ['behind', 'work', phone.deviceId],
    ])
    for (const e of lags) expect(e.behindForMs).toBeGreaterThanOrEqual(400)
    const behind = pc.syncStatus().filter((s) => !s.caughtUp)
    expect(behind.map((s) => s.scope).sort()).toEqual(['personal', 'work'])
    for (const s of behind) expect(s.behindSince).toBeTypeOf('number')

    // The relay behaves again; the pc reconnects, catches up, and says so.
    proxy.withheld.clear()
    proxy.cutAll()
    await waitFor(() => pc.memory.get(hidden.id) !== undefined && pc.memory.get(hiddenWork.id) !== undefined, 10_000, 'withheld writes after reconnect')
    await waitFor(() => lags.filter((e) => e.state === 'caught-up').length === 2, 10_000, 'two caught-up reports')
    expect(pc.syncStatus().every((s) => s.caughtUp)).toBe(true)
    // The phone, served honestly all along, never lagged.
    expect(phone.syncStatus().every((s) => s.caughtUp)).toBe(true)
  }, 30_000)
})
