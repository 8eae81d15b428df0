/**
 * A WebSocket attempt that never opens (a server that accepts TCP and never answers, as a
 * tunnel or captive portal does) is given up after `connectTimeoutTime` and tried again.
 */
import { createServer, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import WebSocket from 'ws'
import { websocketTransport, WebsocketTransportError } from '../../src/adapters/websocket.js'

const cleanups: Array<() => void | Promise<void>> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

async function silentServer(): Promise<{ url: string; accepted: () => number }> {
  const sockets: Socket[] = []
  const server = createServer((socket) => sockets.push(socket.on('error', () => undefined)))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  cleanups.push(() => {
    for (const socket of sockets) socket.destroy()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return { url: `ws://127.0.0.1:${(server.address() as { port: number }).port}`, accepted: () => sockets.length }
}

describe('websocket transport connect timeout', () => {
  it('gives up on an attempt that never opens, reports connect-timeout, and tries again', async () => {
    const server = await silentServer()
    const transport = websocketTransport({ url: server.url, WebSocketPolyfill: WebSocket, connectTimeoutTime: 300, maxBackoffTime: 100 })
    cleanups.push(() => transport.close())
    const doc = new Y.Doc()
    const awareness = new Awareness(doc)
    cleanups.push(() => awareness.destroy())
    const attachment = transport.attach({ roomId: 'room-timeout', doc, awareness })
    const errors: string[] = []
    attachment.on('error', ({ code }) => errors.push(code))
    const deadline = Date.now() + 5_000
    while (errors.filter((code) => code === 'connect-timeout').length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    expect(errors.filter((code) => code === 'connect-timeout').length).toBeGreaterThanOrEqual(2)
    expect(server.accepted()).toBeGreaterThanOrEqual(2)
  })

  it('refuses a timeout that is not a positive number', () => {
    expect(() => websocketTransport({ url: 'ws://127.0.0.1:1', WebSocketPolyfill: WebSocket, connectTimeoutTime: 0 })).toThrow(WebsocketTransportError)
  })
})
