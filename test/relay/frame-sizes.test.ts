/**
 * A store larger than the relay's frame limit syncs both ways in frames under it; an envelope no
 * frame size gets through is one lasting, coded error instead of a resend loop.
 */
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { ContextSync, createAccount, memoryStorage, type Account } from '../../src/index.js'
import { websocketTransport, type WebsocketTransport } from '../../src/adapters/websocket.js'
import { createRelay, silentLogger, type Relay } from '../../src/relay/index.js'
import { SYNC_FRAME_BYTES } from '../../src/wire/sync-frames.js'

/** Sizes of every frame the tapped sockets received from the relay. */
const received: number[] = []
/** `ws` recording the size of each message it receives. */
class TappedWebSocket extends WebSocket {
  constructor(...args: ConstructorParameters<typeof WebSocket>) {
    super(...args)
    this.on('message', (data: Buffer) => received.push(data.byteLength))
  }
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
  received.length = 0
})

async function relayWithLimit(maxMessageBytes: number): Promise<Relay> {
  const relay = await createRelay({ logger: silentLogger, limits: { maxMessageBytes } })
  cleanups.push(() => relay.close())
  return relay
}

function transportTo(url: string, options: { refusedBackoffTime?: number } = {}): WebsocketTransport {
  const t = websocketTransport({ url, WebSocketPolyfill: TappedWebSocket, maxBackoffTime: 200, ...options })
  cleanups.push(() => t.close())
  return t
}

interface TransportErrorSeen {
  code: string
  at: number
}

async function device(account: Account, kind: 'phone' | 'pc', transport: WebsocketTransport) {
  const dev = await ContextSync.open({ account, device: { kind, name: `frames ${kind}` }, storage: memoryStorage(), transports: [transport] })
  cleanups.push(() => dev.close())
  const errors: TransportErrorSeen[] = []
  dev.on('transport-error', ({ code }) => errors.push({ code, at: Date.now() }))
  return { dev, errors }
}

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Write `count` memories in batches (one envelope per batch), the text padded to `bytes`. */
async function writeMemories(dev: ContextSync, count: number, batch: number, bytes = 200): Promise<void> {
  for (let done = 0; done < count; done += batch) {
    const writes = []
    for (let i = done; i < Math.min(count, done + batch); i++) writes.push(dev.memory.remember({ text: `memory ${i} `.padEnd(bytes, '.') }))
    await Promise.all(writes)
  }
}

/**
 * A device that wrote `count` memories (in batches of `batch`, one envelope each) while offline,
 * then comes online: everything goes out in its first sync step 2.
 */
async function wroteOffline(account: Account, kind: 'phone' | 'pc', relay: Relay, count: number, batch: number, options: { refusedBackoffTime?: number } = {}) {
  const transport = transportTo(relay.url, options)
  transport.setOnline(false)
  const opened = await device(account, kind, transport)
  await writeMemories(opened.dev, count, batch)
  transport.setOnline(true)
  return { ...opened, transport }
}

describe('frame sizes', () => {
  it('a store larger than the relay frame limit reaches the relay and a new device in frames under it, both ways', async () => {
    // Before frames were cut, the phone's first sync step 2 (~2.5 MB) was refused with 1009 and
    // resent after every backoff, forever; and a snapshot of the store was one envelope as large.
    const relay = await relayWithLimit(2 * 1024 * 1024)
    const account = await createAccount()
    const count = 8000
    const phone = await wroteOffline(account, 'phone', relay, count, 200)
    await until(() => relay.metrics().storedBytes > count * 200, 60_000, 'the phone store on the relay')

    received.length = 0
    const pcTransport = transportTo(relay.url)
    const pc = await device(account, 'pc', pcTransport)
    await until(() => pc.dev.memory.list({ limit: count + 10 }).length === count, 60_000, `all ${count} memories on the new device`)
    // The relay answered in several frames, none over its budget.
    expect(received.filter((size) => size > 100_000).length).toBeGreaterThan(1)
    expect(Math.max(...received)).toBeLessThanOrEqual(SYNC_FRAME_BYTES)

    // And back: the new device writes a large batch offline, then reconnects.
    pcTransport.setOnline(false)
    await writeMemories(pc.dev, 3000, 200)
    pcTransport.setOnline(true)
    await until(() => phone.dev.memory.list({ limit: count + 4000 }).length === count + 3000, 60_000, 'the pc batch on the phone')
    expect(phone.errors).toEqual([])
    expect(pc.errors).toEqual([])
  }, 180_000)

  it('a relay whose limit is under the frame budget: the transport cuts smaller frames after its 1009', async () => {
    const relay = await relayWithLimit(256 * 1024)
    const account = await createAccount()
    // ~900 KB in envelopes of ~30 KB: each fits the relay, together they do not.
    const count = 3000
    const phone = await wroteOffline(account, 'phone', relay, count, 100)
    const pc = await device(account, 'pc', transportTo(relay.url))
    await until(() => pc.dev.memory.list({ limit: count + 10 }).length === count, 60_000, `all ${count} memories on the new device`)
    const codes = phone.errors.map((e) => e.code)
    expect(codes).toContain('1009')
    expect(codes).not.toContain('envelope-too-big')
    // Halving from 1 MiB reaches 256 KiB in a few steps.
    expect(codes.length).toBeLessThanOrEqual(4)
  }, 120_000)

  it('an envelope larger than the relay accepts is a lasting, coded error, and nothing is lost', async () => {
    const relay = await relayWithLimit(64 * 1024)
    const account = await createAccount()
    // One batch: a single envelope of ~500 KB, which no frame size gets under 64 KiB.
    const phone = await wroteOffline(account, 'phone', relay, 2000, 2000, { refusedBackoffTime: 60_000 })
    await until(() => phone.errors.some((e) => e.code === 'envelope-too-big'), 30_000, 'the lasting error')
    const lasting = phone.errors.find((e) => e.code === 'envelope-too-big')!
    // Before it: a few halvings of the budget, each a quick retry, not an endless loop.
    expect(phone.errors.filter((e) => e.code === '1009' && e.at <= lasting.at).length).toBeLessThanOrEqual(8)
    await new Promise((r) => setTimeout(r, 1500))
    expect(phone.errors.filter((e) => e.at > lasting.at)).toEqual([])
    expect(phone.dev.memory.list({ limit: 3000 })).toHaveLength(2000)
  }, 60_000)
})
