/**
 * A tunnel: the relay becomes unreachable for the head unit — a proxy on 127.0.0.1 between the car
 * and the relay drops every connection and refuses new ones — while the car and the phone both
 * write. When the tunnel ends the car reconnects by itself (jittered backoff), both converge, and
 * the proxy, which decodes every y-protocols sync frame in both directions, saw no envelope sent
 * twice: reconnecting exchanges state vectors, so each side sends only what the other lacks.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import * as decoding from 'lib0/decoding'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer, type RawData } from 'ws'
import * as Y from 'yjs'
import { ownerDevice, relayOn, teardown, tempDir, testCar, waitUntil } from '../helpers/car.js'

afterEach(async () => {
  await teardown()
  for (const fn of closers.splice(0)) await fn()
})
const closers: Array<() => Promise<void>> = []

interface TunnelProxy {
  url: string
  /** True: every connection is dropped and new ones are refused. */
  setTunnel(inTunnel: boolean): void
  /** Envelopes (hex) seen in sync frames, per direction, with how often each was sent. */
  sent: { up: Map<string, number>; down: Map<string, number> }
  /** Connections accepted so far. */
  connections: number
}

/** The envelopes a y-protocols sync frame (step 2 or update) inserts into a sealed log. */
function envelopesIn(frame: Uint8Array): Uint8Array[] {
  const dec = decoding.createDecoder(frame)
  if (decoding.readVarUint(dec) !== 0) return [] // not a sync message (awareness, …)
  const type = decoding.readVarUint(dec)
  if (type !== 1 && type !== 2) return [] // step 1 carries a state vector only
  const update = decoding.readVarUint8Array(dec)
  const out: Uint8Array[] = []
  for (const struct of Y.decodeUpdate(update).structs) {
    if (!(struct instanceof Y.Item)) continue
    for (const value of struct.content.getContent()) if (value instanceof Uint8Array) out.push(value)
  }
  return out
}

async function tunnelProxy(upstreamUrl: string): Promise<TunnelProxy> {
  const server: Server = createServer()
  const wss = new WebSocketServer({ noServer: true })
  const live = new Set<{ client: WebSocket; upstream: WebSocket }>()
  let inTunnel = false
  const proxy: TunnelProxy = {
    url: '',
    sent: { up: new Map(), down: new Map() },
    connections: 0,
    setTunnel: (value) => {
      inTunnel = value
      if (value) for (const pair of live) (pair.client.terminate(), pair.upstream.terminate())
    },
  }
  const count = (map: Map<string, number>, data: RawData) => {
    for (const envelope of envelopesIn(new Uint8Array(data as Buffer))) {
      const key = Buffer.from(envelope).toString('hex')
      map.set(key, (map.get(key) ?? 0) + 1)
    }
  }
  server.on('upgrade', (request, socket: Duplex, head) => {
    // In the tunnel nothing answers: the TCP connection just dies.
    if (inTunnel) return void socket.destroy()
    wss.handleUpgrade(request, socket, head, (client) => {
      proxy.connections++
      const protocols = request.headers['sec-websocket-protocol']?.split(',').map((p) => p.trim())
      const upstream = new WebSocket(upstreamUrl + (request.url ?? '/'), protocols)
      const pair = { client, upstream }
      live.add(pair)
      const queued: RawData[] = []
      client.on('message', (data) => {
        count(proxy.sent.up, data)
        if (upstream.readyState === WebSocket.OPEN) upstream.send(data)
        else queued.push(data)
      })
      upstream.on('open', () => {
        for (const data of queued.splice(0)) upstream.send(data)
      })
      upstream.on('message', (data) => {
        count(proxy.sent.down, data)
        if (client.readyState === WebSocket.OPEN) client.send(data)
      })
      const closeBoth = () => {
        live.delete(pair)
        client.terminate()
        upstream.terminate()
      }
      for (const ws of [client, upstream]) (ws.on('close', closeBoth), ws.on('error', closeBoth))
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  proxy.url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        proxy.setTunnel(true)
        wss.close()
        server.close(() => resolve())
      }),
  )
  return proxy
}

describe('a tunnel', () => {
  it('both sides write while the relay is unreachable; on return they converge and no envelope is sent twice', async () => {
    const relay = await relayOn()
    const proxy = await tunnelProxy(relay.url)
    const { dev: phone } = await ownerDevice(relay.url)
    const car = await testCar({ dataDir: tempDir(), relayUrl: proxy.url })
    await car.profiles.join({ id: 'alice', invite: (await phone.devices.invite({ kind: 'car' })).code })
    const warmup = await car.device.memory.remember({ text: 'before the tunnel' })
    await waitUntil(() => phone.memory.get(warmup.id) !== undefined, 10_000, 'warm-up on the phone')
    await waitUntil(() => car.pending().count === 0, 5000, 'empty outbox')

    proxy.setTunnel(true)
    const connectionsBefore = proxy.connections
    const fromCar: string[] = []
    const fromPhone: string[] = []
    for (let i = 0; i < 20; i++) {
      fromCar.push((await car.device.memory.remember({ text: `car in the tunnel ${i}`, scope: i % 2 ? 'location' : 'personal' })).id)
      fromPhone.push((await phone.memory.remember({ text: `phone meanwhile ${i}`, scope: i % 2 ? 'location' : 'personal' })).id)
    }
    const talk = car.device.sessions.start({ title: 'Tunnel talk' })
    const turn = talk.stream({ role: 'user' })
    for (const word of ['how', 'long', 'is', 'this', 'tunnel']) turn.write(`${word} `)
    await turn.end()
    // The car tries again and again meanwhile; nothing gets through.
    await new Promise((r) => setTimeout(r, 1_200))
    expect(proxy.connections).toBe(connectionsBefore)
    expect(car.pending().count).toBeGreaterThanOrEqual(20)
    expect(car.pending().scopes.location?.count).toBeGreaterThanOrEqual(10)
    expect(fromCar.some((id) => phone.memory.get(id) !== undefined)).toBe(false)

    const synced: string[][] = []
    car.on('synced', (e) => synced.push(e.scopes))
    proxy.setTunnel(false)
    await waitUntil(
      () => fromCar.every((id) => phone.memory.get(id) !== undefined) && fromPhone.every((id) => car.device.memory.get(id) !== undefined),
      20_000,
      'both sides converged',
    )
    await waitUntil(() => phone.sessions.get(talk.id)?.turns.at(-1)?.text === 'how long is this tunnel ', 10_000, 'the turn on the phone')
    await waitUntil(() => synced.length > 0 && car.pending().count === 0, 10_000, 'synced')
    expect(proxy.connections).toBeGreaterThan(connectionsBefore)
    // Every envelope crossed the proxy at most once in each direction.
    const twice = (map: Map<string, number>) => [...map.values()].filter((n) => n > 1).length
    expect(proxy.sent.up.size).toBeGreaterThanOrEqual(20)
    expect(proxy.sent.down.size).toBeGreaterThanOrEqual(20)
    expect(twice(proxy.sent.up)).toBe(0)
    expect(twice(proxy.sent.down)).toBe(0)
  }, 60_000)
})
