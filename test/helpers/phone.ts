/**
 * Test fixtures for the phone and the glasses: a relay on 127.0.0.1, a phone on it, glasses
 * paired with it (in memory, on Node), a PC member device, and link channels over a real
 * `MessageChannel` at MTU 185. Every fixture registers its own teardown.
 */
import { ContextSync, memoryStorage } from '../../src/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { portChannel, type PortChannel } from '../../src/adapters/link-port.js'
import { createRelay, silentLogger, type Relay } from '../../src/relay/index.js'
import { openPhone, type Phone, type PhoneOptions } from '../../adapters/phone/index.js'
import { openGlasses, type Glasses, type GlassesOptions } from '../../adapters/glasses/index.js'
import { NodeWebSocket } from '../relay/helpers.js'

const cleanups: Array<() => unknown> = []

/** Run every teardown registered so far, newest first (call from afterEach). */
export async function teardown(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn()
}

export async function relayOn(): Promise<Relay> {
  const relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger })
  cleanups.push(() => relay.close())
  return relay
}

export async function testPhone(url: string, options: Partial<PhoneOptions> = {}): Promise<Phone> {
  const phone = await openPhone({ storage: memoryStorage(), relayUrl: url, WebSocket: NodeWebSocket, maxBackoffTime: 200, link: { keepaliveMs: 0 }, ...options })
  cleanups.push(() => phone.close())
  return phone
}

export async function testGlasses(phone: Phone, url: string, options: Partial<GlassesOptions> = {}): Promise<Glasses> {
  const invite = await phone.invite({ kind: 'glasses' })
  const glasses = await openGlasses({
    storage: memoryStorage(),
    relayUrl: url,
    WebSocket: NodeWebSocket,
    maxBackoffTime: 200,
    invite: invite.code,
    power: { charging: true, batteryLevel: 1, screenOn: false },
    link: { keepaliveMs: 0 },
    timeoutMs: 20_000,
    ...options,
  })
  cleanups.push(() => glasses.close())
  return glasses
}

/** A PC on the relay (a member device, in memory). */
export async function testPc(phone: Phone, url: string): Promise<ContextSync> {
  const invite = await phone.invite({ kind: 'pc' })
  const transport = websocketTransport({ url, WebSocketPolyfill: NodeWebSocket, maxBackoffTime: 200 })
  const dev = await ContextSync.join({ invite: invite.code, device: { kind: 'pc', name: 'Test pc' }, storage: memoryStorage(), transports: [transport], timeoutMs: 20_000 })
  cleanups.push(async () => {
    await dev.close()
    await transport.close()
  })
  return dev
}

/** A Bluetooth-sized link between the phone and the glasses; `drop()` takes it down on both ends. */
export function linkUp(phone: Phone, glasses: Glasses, mtu = 185): { drop(): void; phoneEnd: PortChannel; glassesEnd: PortChannel } {
  const { port1, port2 } = new MessageChannel()
  const phoneEnd = portChannel(port1, { mtu })
  const glassesEnd = portChannel(port2, { mtu })
  phone.serveLink(phoneEnd)
  glasses.connectLink(glassesEnd)
  const drop = (): void => {
    phoneEnd.closed()
    glassesEnd.closed()
  }
  cleanups.push(drop)
  return { drop, phoneEnd, glassesEnd }
}

export async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now()
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
