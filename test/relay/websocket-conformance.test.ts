/**
 * The shared transport conformance suite for `websocketTransport` through a real relay (token
 * auth, real sockets). Each simulated device reaches the relay through its own TCP forwarder so a
 * single device can be taken offline (its sockets cut, new ones refused) while others stay up.
 */
import { createServer, connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import WebSocket, { WebSocketServer } from 'ws'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { afterEach, beforeAll, describe, expect, expectTypeOf, it } from 'vitest'
import { ready } from '../../src/crypto/index.js'
import { runTransportTests } from '../../src/adapters/transport-conformance.js'
import { websocketTransport, WebsocketTransportError, type WebSocketConstructor } from '../../src/adapters/websocket.js'
import type { Transport } from '../../src/adapters/transport.js'
import { closeRelays, makeAccount, NodeWebSocket, sealedLog, startRelay, waitFor } from './helpers.js'

beforeAll(async () => {
  await ready()
})

/** A loopback TCP forwarder to `port` that can drop all its connections and refuse new ones. */
async function forwarder(port: number) {
  let offline = false
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    if (offline) return client.destroy()
    const upstream = connect(port, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        client.destroy()
        upstream.destroy()
      })
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port: own } = server.address() as AddressInfo
  return {
    url: `ws://127.0.0.1:${own}`,
    goOffline() {
      offline = true
      for (const s of sockets) s.destroy()
    },
    goOnline() {
      offline = false
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

runTransportTests(async () => {
  const relay = await startRelay()
  const account = makeAccount()
  const forwarders = new Map<Transport, Awaited<ReturnType<typeof forwarder>>>()
  let rooms = 0
  return {
    async makeTransport() {
      const link = await forwarder(relay.port)
      const transport = websocketTransport({
        url: link.url,
        token: account.token,
        WebSocketPolyfill: NodeWebSocket,
        maxBackoffTime: 200,
      })
      forwarders.set(transport, link)
      return transport
    },
    settle: () => new Promise((resolve) => setTimeout(resolve, 20)),
    goOffline: (transport) => forwarders.get(transport)?.goOffline(),
    goOnline: (transport) => forwarders.get(transport)?.goOnline(),
    async teardown() {
      for (const link of forwarders.values()) await link.close()
      await closeRelays()
    },
    roomId: () => account.roomId(`conformance-${++rooms}`),
  }
}, 'websocket via relay')

describe('websocketTransport specifics', () => {
  afterEach(async () => {
    await closeRelays()
  })

  it('drops an update the server sends that does not parse (9 bytes claiming 2^25 structs) before Yjs allocates for it, and reports it', async () => {
    // A hostile server: answers every connection with that update, then a genuine one.
    const server = new WebSocketServer({ port: 0, host: '127.0.0.1' })
    await new Promise<void>((r) => server.once('listening', () => r()))
    const genuine = new Y.Doc()
    genuine.getArray<Uint8Array>('log').push([new Uint8Array([7, 7, 7])])
    const frame = (type: number, update: Uint8Array): Uint8Array => {
      const enc = encoding.createEncoder()
      encoding.writeVarUint(enc, 0) // sync message
      encoding.writeVarUint(enc, type)
      encoding.writeVarUint8Array(enc, update)
      return encoding.toUint8Array(enc)
    }
    const bomb = encoding.createEncoder()
    encoding.writeVarUint(bomb, 1) // one client
    encoding.writeVarUint(bomb, 2 ** 25 - 1) // structs claimed
    encoding.writeVarUint(bomb, 5) // client
    encoding.writeVarUint(bomb, 0) // clock
    encoding.writeUint8(bomb, 0) // one GC struct…
    encoding.writeVarUint(bomb, 3) // …then the input ends
    server.on('connection', (ws) => {
      ws.send(frame(1, encoding.toUint8Array(bomb))) // as sync step 2
      ws.send(frame(2, Y.encodeStateAsUpdate(genuine))) // an ordinary update
    })
    const transport = websocketTransport({ url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`, WebSocketPolyfill: NodeWebSocket })
    try {
      const room = sealedLog('hostile.room')
      const attachment = transport.attach(room)
      const errors: string[] = []
      attachment.on('error', ({ code }) => errors.push(code))
      await waitFor(() => room.log.length === 1, 5000, 'the genuine update applied')
      expect(errors).toContain('malformed-update')
      expect(room.log.get(0)).toEqual(new Uint8Array([7, 7, 7]))
    } finally {
      transport.close()
      for (const client of server.clients) client.terminate()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })

  it('needs a WebSocket implementation where there is no global one (Node 20)', () => {
    if (typeof (globalThis as { WebSocket?: unknown }).WebSocket !== 'undefined') return
    expect(() => websocketTransport({ url: 'ws://127.0.0.1:1' })).toThrow(WebsocketTransportError)
  })

  it('takes ws as the polyfill as it is, without a cast (checked by the typecheck)', () => {
    expectTypeOf(WebSocket).toMatchTypeOf<WebSocketConstructor>()
    expect(typeof websocketTransport({ url: 'ws://127.0.0.1:1', WebSocketPolyfill: WebSocket }).attach).toBe('function')
  })

  it('re-sends sync step 1 every resyncInterval (without the provider timer that breaks in Node 20)', async () => {
    const relay = await startRelay()
    const account = makeAccount()
    const transport = websocketTransport({
      url: relay.url,
      token: account.token,
      WebSocketPolyfill: NodeWebSocket,
      resyncInterval: 50,
    })
    const attachment = transport.attach(sealedLog(account.roomId()))
    await waitFor(() => attachment.status === 'synced', 5000, 'synced')
    const before = relay.metrics().messagesIn
    await new Promise((resolve) => setTimeout(resolve, 400))
    expect(relay.metrics().messagesIn - before).toBeGreaterThanOrEqual(4)
    transport.close()
  })

  it('reports a failing token source and retries with backoff', async () => {
    const relay = await startRelay()
    const account = makeAccount()
    let calls = 0
    const transport = websocketTransport({
      url: relay.url,
      token: async (roomId) => {
        calls += 1
        if (calls < 3) throw new Error('keychain locked')
        return account.token(roomId)
      },
      WebSocketPolyfill: NodeWebSocket,
      maxBackoffTime: 50,
    })
    const errors: string[] = []
    const attachment = transport.attach(sealedLog(account.roomId()))
    attachment.on('error', ({ code, message }) => errors.push(`${code}: ${message}`))
    await waitFor(() => attachment.status === 'synced', 5000, 'synced after the token source recovered')
    expect(errors).toEqual([
      'token-failed: could not get a relay token: keychain locked',
      'token-failed: could not get a relay token: keychain locked',
    ])
    transport.close()
  })
})
