/**
 * The Node end of a link whose channel is a WebSocket standing in for a BLE characteristic pair:
 * a WebSocket server on 127.0.0.1 whose every connection becomes a {@link LinkChannel} of `mtu`
 * bytes for the phone's `serveLink`, with each direction capped at `bytesPerSecond` (a token
 * bucket drained on a timer, as a connection event drains a TX queue) and a TX queue that turns
 * `canSend` false when full. It refuses nothing itself: it records every message's size (so a
 * test can see the MTU framing held both ways) and keeps every byte that crossed (so a test can
 * search them for plaintext, as a BLE sniffer would).
 */
import type { AddressInfo } from 'node:net'
import { WebSocketServer, type WebSocket } from 'ws'
import type { LinkChannel } from '../../src/entries/link.js'

/** What crossed one bridge, both ways, over all its connections. */
export interface BridgeTraffic {
  /** Messages phone → glasses / glasses → phone. */
  messagesOut: number
  messagesIn: number
  bytesOut: number
  bytesIn: number
  /** Largest message each way (must stay within the MTU). */
  largestOut: number
  largestIn: number
  /** Every message, in order, each way (for byte searches). */
  captured: { in: Uint8Array[]; out: Uint8Array[] }
}

/** A bridge: a WebSocket server handing each connection to `onChannel` as a capped link channel. */
export interface LinkBridge {
  /** `ws://127.0.0.1:<port>` */
  readonly url: string
  readonly traffic: BridgeTraffic
  /** Close every connection now (the phone leaves Bluetooth range). */
  dropAll(): void
  close(): Promise<void>
}

/** Start a bridge on 127.0.0.1. */
export async function linkBridge(options: { mtu: number; bytesPerSecond: number; onChannel: (channel: LinkChannel) => void; txQueue?: number }): Promise<LinkBridge> {
  const traffic: BridgeTraffic = { messagesOut: 0, messagesIn: 0, bytesOut: 0, bytesIn: 0, largestOut: 0, largestIn: 0, captured: { in: [], out: [] } }
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  const sockets = new Set<WebSocket>()
  server.on('connection', (ws) => {
    sockets.add(ws)
    ws.on('close', () => sockets.delete(ws))
    options.onChannel(cappedChannel(ws, options.mtu, options.bytesPerSecond, options.txQueue ?? 32, traffic))
  })
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    traffic,
    dropAll() {
      for (const ws of sockets) ws.terminate()
    },
    async close() {
      for (const ws of sockets) ws.terminate()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

/** Both directions through one token bucket each; a tick every 10 ms sends what the budget allows. */
function cappedChannel(ws: WebSocket, mtu: number, bytesPerSecond: number, txQueue: number, traffic: BridgeTraffic): LinkChannel {
  const TICK_MS = 10
  const budgetPerTick = (bytesPerSecond * TICK_MS) / 1000
  const out: Uint8Array[] = []
  const inbound: Uint8Array[] = []
  let outBudget = 0
  let inBudget = 0
  let onMessage: ((bytes: Uint8Array) => void) | undefined
  let onClose: (() => void) | undefined
  let onDrain: (() => void) | undefined
  let open = true
  const drain = (queue: Uint8Array[], budget: number, deliver: (bytes: Uint8Array) => void): number => {
    // A message goes when the bucket holds its size; the bucket never saves more than one tick and one message.
    budget = Math.min(budget + budgetPerTick, budgetPerTick + mtu)
    while (queue.length > 0 && budget >= queue[0]!.length) {
      const bytes = queue.shift()!
      budget -= bytes.length
      deliver(bytes)
    }
    return budget
  }
  const timer = setInterval(() => {
    if (!open) return
    const wasFull = out.length >= txQueue
    outBudget = drain(out, outBudget, (bytes) => ws.send(bytes))
    inBudget = drain(inbound, inBudget, (bytes) => onMessage?.(bytes))
    if (wasFull && out.length < txQueue) onDrain?.()
  }, TICK_MS)
  ws.on('message', (data: Buffer) => {
    const bytes = new Uint8Array(data)
    traffic.messagesIn++
    traffic.bytesIn += bytes.length
    traffic.largestIn = Math.max(traffic.largestIn, bytes.length)
    traffic.captured.in.push(bytes)
    inbound.push(bytes)
  })
  ws.on('close', () => {
    if (!open) return
    open = false
    clearInterval(timer)
    onClose?.()
  })
  return {
    mtu,
    send(bytes) {
      if (!open || out.length >= txQueue) return // a full TX queue loses the message, as a BLE stack would
      traffic.messagesOut++
      traffic.bytesOut += bytes.length
      traffic.largestOut = Math.max(traffic.largestOut, bytes.length)
      const copy = new Uint8Array(bytes)
      traffic.captured.out.push(copy)
      out.push(copy)
    },
    onMessage: (listener) => {
      onMessage = listener
    },
    onClose: (listener) => {
      onClose = listener
    },
    canSend: () => open && out.length < txQueue,
    onDrain: (listener) => {
      onDrain = listener
    },
    close: () => ws.close(),
  }
}
