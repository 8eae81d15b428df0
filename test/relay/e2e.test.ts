/**
 * ContextSync devices through a real relay over real sockets: sync, restart, offline writes,
 * pairing and revocation, and the same devices through a stock y-websocket server.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'
import { setupWSConnection } from '@y/websocket-server/utils'
import { ContextSync, createAccount, memoryStorage, type Account, type Transport } from '../../src/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { createRelay, silentLogger, type Relay } from '../../src/relay/index.js'

const frames: Buffer[] = []
/** `ws` with every sent frame recorded: what the relay received. */
class TappedWebSocket extends WebSocket {
  override send(data: unknown, ...rest: unknown[]): void {
    if (data instanceof Uint8Array) frames.push(Buffer.from(data))
    ;(super.send as (...args: unknown[]) => void)(data, ...rest)
  }
}
const WS = TappedWebSocket as unknown as typeof globalThis.WebSocket

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
  frames.length = 0
})

function transportTo(url: string): Transport {
  const t = websocketTransport({ url, WebSocketPolyfill: WS, maxBackoffTime: 200 })
  cleanups.push(() => t.close())
  return t
}

async function relayAt(options: { dataDir?: string; port?: number } = {}): Promise<Relay> {
  const relay = await createRelay({ ...options, logger: silentLogger, persistence: { mergeIntervalMs: 100 } })
  cleanups.push(() => relay.close())
  return relay
}

async function device(account: Account, kind: 'phone' | 'pc' | 'glasses' | 'car', url: string) {
  const dev = await ContextSync.open({ account, device: { kind, name: `E2E ${kind}` }, storage: memoryStorage(), transports: [transportTo(url)] })
  cleanups.push(() => dev.close())
  return dev
}

async function until(predicate: () => boolean, timeoutMs = 15_000, what = 'condition'): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** Connect a raw socket with a token and report the close code the relay answers with. */
function closeCodeOf(relay: Relay, roomId: string, token: string): Promise<number> {
  return new Promise<number>((resolve) => {
    const ws = new WebSocket(`${relay.url}/${roomId}?token=${token}`)
    ws.on('close', (code) => resolve(code))
    ws.on('error', () => undefined)
  })
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-e2e-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

function dirBytes(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f))))
}

describe('ContextSync through the relay', () => {
  it('two devices sync memory and sessions; the relay data dir and the frames hold no plaintext', async () => {
    const dataDir = tempDir()
    const relay = await relayAt({ dataDir })
    const account = await createAccount()
    const phone = await device(account, 'phone', relay.url)
    const pc = await device(account, 'pc', relay.url)
    const m = await phone.memory.remember({ text: 'RELAY-MARKER-memory-51c', tags: ['RELAY-MARKER-tag'] })
    const s = pc.sessions.start({ title: 'RELAY-MARKER-title' })
    await s.append({ role: 'user', text: 'RELAY-MARKER-turn' })
    const w = s.stream({ role: 'assistant' })
    w.write('RELAY-MARKER-')
    w.write('stream')
    await w.end()
    await until(() => pc.memory.get(m.id) !== undefined && phone.sessions.get(s.id)?.turns[1]?.done === true, 15_000, 'sync')
    expect(phone.sessions.get(s.id)?.turns.map((t) => t.text)).toEqual(['RELAY-MARKER-turn', 'RELAY-MARKER-stream'])
    await relay.close()
    const everything = Buffer.concat([...frames, dirBytes(dataDir)])
    expect(frames.length).toBeGreaterThan(5)
    expect(everything.includes('RELAY-MARKER')).toBe(false)
    expect(everything.includes('E2E phone')).toBe(false)
  })

  it('after a relay restart from the same data dir, a brand-new device receives the full history', async () => {
    const dataDir = tempDir()
    let relay = await relayAt({ dataDir })
    const account = await createAccount()
    const phone = await device(account, 'phone', relay.url)
    const items = await Promise.all(Array.from({ length: 20 }, (_, i) => phone.memory.remember({ text: `history ${i}` })))
    await until(() => relay.metrics().storedBytes > 0, 5_000, 'stored')
    await new Promise((r) => setTimeout(r, 300))
    await phone.close()
    await relay.close()
    relay = await relayAt({ dataDir })
    const fresh = await device(account, 'pc', relay.url)
    await until(() => items.every((i) => fresh.memory.get(i.id)?.text === i.text), 15_000, 'history on the new device')
  })

  it('a device writes while the relay is down; when it returns every device converges', async () => {
    const dataDir = tempDir()
    let relay = await relayAt({ dataDir })
    const port = relay.port
    const account = await createAccount()
    const phone = await device(account, 'phone', relay.url)
    const pc = await device(account, 'pc', relay.url)
    const first = await phone.memory.remember({ text: 'before the outage' })
    await until(() => pc.memory.get(first.id) !== undefined, 15_000, 'first sync')
    await relay.close()
    const offline = await pc.memory.remember({ text: 'written while the relay is down' })
    const alsoOffline = await phone.memory.remember({ text: 'phone, also offline' })
    relay = await relayAt({ dataDir, port })
    await until(() => phone.memory.get(offline.id) !== undefined && pc.memory.get(alsoOffline.id) !== undefined, 20_000, 'convergence')
  })

  it('pairs a car through the relay; after revocation the relay refuses it and closes its connections', async () => {
    const relay = await relayAt()
    const account = await createAccount()
    const phone = await device(account, 'phone', relay.url)
    const invite = await phone.devices.invite({ kind: 'car', scopes: ['personal', 'location'] })
    const car = await ContextSync.join({ invite: invite.code, device: { kind: 'car' }, storage: memoryStorage(), transports: [transportTo(relay.url)], timeoutMs: 15_000 })
    cleanups.push(() => car.close())
    const m = await phone.memory.remember({ text: 'shared with the car' })
    await until(() => car.memory.get(m.id) !== undefined, 15_000, 'car sync')
    // Defense in depth: even with the health room's id, the car's pass does not cover it.
    const healthRoom = phone.roomId('health')
    expect(await closeCodeOf(relay, healthRoom, car.accessToken(healthRoom))).toBe(4403)
    const connectionsBefore = relay.metrics().connections
    await phone.devices.revoke(car.deviceId)
    await until(() => relay.metrics().connections < connectionsBefore, 10_000, 'relay closing the car')
    // A fresh token of the car is refused.
    expect(await closeCodeOf(relay, car.roomId('personal'), car.accessToken(car.roomId('personal')))).toBe(4403)
  })

  it('joining says what went wrong: an unreachable relay, a code nobody answers, a used code', async () => {
    // A port nothing listens on (a relay started and closed again).
    const gone = await createRelay({ logger: silentLogger })
    const goneUrl = gone.url
    await gone.close()
    const joinVia = (url: string, code: string, timeoutMs: number) =>
      ContextSync.join({ invite: code, device: { kind: 'car' }, storage: memoryStorage(), transports: [transportTo(url)], timeoutMs })
    await expect(joinVia(goneUrl, 'AAAA-BBBB-CCCC-DDDD', 800)).rejects.toMatchObject({
      name: 'PairingError',
      code: 'pairing',
      reason: 'unreachable',
      message: expect.stringMatching(/could not reach the relay/),
    })
    const relay = await relayAt()
    await expect(joinVia(relay.url, 'AAAA-BBBB-CCCC-DDDD', 800)).rejects.toMatchObject({
      reason: 'timeout',
      message: expect.stringMatching(/reached the relay, but no owner device answered/),
    })
    const account = await createAccount()
    const phone = await device(account, 'phone', relay.url)
    const invite = await phone.devices.invite({ kind: 'car' })
    const car = await joinVia(relay.url, invite.code, 15_000)
    cleanups.push(() => car.close())
    await expect(joinVia(relay.url, invite.code, 5_000)).rejects.toMatchObject({ reason: 'refused', message: expect.stringMatching(/already used, has expired/) })
  })

  it('a revoked device learns it through the relay — connected when it is revoked, and coming back after it', async () => {
    const relay = await relayAt()
    const account = await createAccount()
    const phone = await device(account, 'phone', relay.url)
    const join = async (kind: 'car' | 'glasses', storage = memoryStorage()) => {
      const invite = await phone.devices.invite({ kind })
      const dev = await ContextSync.join({ invite: invite.code, device: { kind }, storage, transports: [transportTo(relay.url)], timeoutMs: 15_000 })
      cleanups.push(() => dev.close())
      return { dev, storage }
    }
    const { dev: car } = await join('car')
    const glassesStorage = memoryStorage()
    const { dev: glasses } = await join('glasses', glassesStorage)
    await until(() => car.devices.list().length === 3 && glasses.devices.list().length === 3, 15_000, 'everyone listed')
    const selfRevoked = (dev: ContextSync) => dev.devices.list().find((d) => d.deviceId === dev.deviceId)?.revoked === true

    // Connected: the relay cuts the car off the moment the revocation lands — after handing it the
    // (root-signed) revocation on its registry connection.
    let carEvents = 0
    car.on('revoked', () => carEvents++)
    await phone.devices.revoke(car.deviceId)
    await until(() => carEvents === 1, 10_000, 'the car hearing of its revocation')
    expect(selfRevoked(car)).toBe(true)

    // Offline: the glasses are closed when they are revoked, then come back from their store. The
    // relay refuses their token — with the revocation first, so they learn why.
    const glassesId = glasses.deviceId
    await glasses.close()
    await phone.devices.revoke(glassesId)
    const back = await ContextSync.open({ storage: glassesStorage, transports: [transportTo(relay.url)] })
    cleanups.push(() => back.close())
    let backEvents = 0
    back.on('revoked', () => backEvents++)
    await until(() => backEvents === 1, 10_000, 'the glasses hearing of their revocation')
    expect(selfRevoked(back)).toBe(true)
    expect(back.scopes.available()).toEqual([])
  })
})

describe('ContextSync through a stock y-websocket server', () => {
  it('the same devices sync through @y/websocket-server with no auth: the sealed log is opaque to it', async () => {
    const server: Server = createServer()
    const wss = new WebSocketServer({ server })
    wss.on('connection', (conn, req) => setupWSConnection(conn, req, { gc: true }))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise<void>((r) => {
      for (const c of wss.clients) c.terminate()
      wss.close()
      server.close(() => r())
    }))
    const url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`
    const account = await createAccount()
    const phone = await device(account, 'phone', url)
    const pc = await device(account, 'pc', url)
    const m = await phone.memory.remember({ text: 'through a stock server' })
    await until(() => pc.memory.get(m.id) !== undefined, 15_000, 'sync via stock server')
    expect(frames.some((f) => f.includes('through a stock server'))).toBe(false)
  })
})
