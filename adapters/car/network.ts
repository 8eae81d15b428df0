/**
 * The head unit's link to the relay (ARCHITECTURE.md "adapters/car"): the WebSocket transport with
 * jittered exponential backoff (many cars dropped by one relay restart do not return in the same
 * instant), the host's view of connectivity (`setOnline`: off stops trying, on reconnects every
 * room at once), and each room's current state, known at any time — `ContextSync` reports only
 * changes, and some happen before `open` resolves.
 *
 * @module
 */
import type { Transport, TransportAttachment, TransportStatus } from '../../src/index.js'
import { websocketTransport } from '../../src/entries/websocket-node.js'
import { trackedTransport } from '../../src/adapters/tracked-transport.js'

/** A transport that remembers its rooms' states and can be told the network is down. */
export interface CarLink extends Transport {
  /** The room's connection state now (`disconnected` when not attached). */
  statusOf(roomId: string): TransportStatus
  /** The host's view of the network (see `WebsocketTransport.setOnline`); a no-op for other transports. */
  setOnline(online: boolean): void
}

/** Options of {@link carLink}. */
export interface CarLinkOptions {
  /** The relay, `ws://` or `wss://`. */
  relayUrl?: string
  /** A transport to use instead of the WebSocket one (a custom link, a test network). */
  transport?: Transport
  /** Longest reconnect delay (ms); default 30 000 — a car in a garage need not retry every 2 s. */
  maxBackoffTime?: number
  /** Whether the host says the network is up right now. Default true. */
  online?: boolean
}

/** Default {@link CarLinkOptions.maxBackoffTime}. */
export const CAR_MAX_BACKOFF_MS = 30_000

/** Build the head unit's link (see the module notes). */
export function carLink(options: CarLinkOptions): CarLink {
  const inner: Transport & { setOnline?: (online: boolean) => void } =
    options.transport ?? websocketTransport({ url: options.relayUrl ?? '', jitter: true, maxBackoffTime: options.maxBackoffTime ?? CAR_MAX_BACKOFF_MS })
  if (options.online === false) inner.setOnline?.(false)
  const attachments = new Map<string, TransportAttachment>()
  const tracked = trackedTransport(inner, attachments)
  return {
    kind: tracked.kind,
    attach: (room) => tracked.attach(room),
    statusOf: (roomId) => attachments.get(roomId)?.status ?? 'disconnected',
    setOnline: (online) => inner.setOnline?.(online),
    close: () => tracked.close(),
  }
}
