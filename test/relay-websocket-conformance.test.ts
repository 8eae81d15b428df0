/**
 * The shared transport conformance suite for `websocketTransport` through a real relay (token
 * auth, real sockets). Each simulated device reaches the relay through its own TCP forwarder so a
 * single device can be taken offline (its sockets cut, new ones refused) while others stay up.
 */
import { createServer, connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { beforeAll } from 'vitest'
import { ready } from '../src/crypto/index.js'
import { runTransportTests } from '../src/adapters/transport-conformance.js'
import { websocketTransport } from '../src/adapters/websocket.js'
import type { Transport } from '../src/adapters/transport.js'
import { closeRelays, makeAccount, NodeWebSocket, startRelay } from './relay-helpers.js'

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
