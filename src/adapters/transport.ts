/**
 * The transport contract: something that carries a room's sealed log (an outer `Y.Doc`) and its
 * awareness between holders — a relay over WebSocket, a phone↔glasses link, or the in-process
 * loopback network used in tests.
 *
 * Transports only ever see sealed logs: an outer doc of encrypted envelopes. They speak the
 * standard y-protocols sync (state vector → missing structs) so any holder can merge and serve
 * a sealed log without keys.
 *
 * @module
 */
import type * as Y from 'yjs'
import type { Awareness } from 'y-protocols/awareness'

/** Connection state of one attached room, as reported by `status` events. */
export type TransportStatus = 'connecting' | 'connected' | 'synced' | 'disconnected'

/** Events of a {@link TransportAttachment}. */
export interface TransportAttachmentEvents {
  /** The room's connection state changed. */
  status: (event: { status: TransportStatus; roomId: string }) => void
  /** The transport dropped something untrusted it received (a malformed frame, a refusal). */
  error: (event: { code: string; message: string; roomId: string }) => void
}

/** What {@link Transport.attach} needs: the room id, its sealed log and its awareness. */
export interface SealedLogRoom {
  /** Opaque room id (`<accountId>.<hash>`); never reveals a scope name. */
  roomId: string
  /** The outer doc holding `Y.Array<Uint8Array>('log')` of envelopes. */
  doc: Y.Doc
  /** Awareness for the room; carries only encrypted presence envelopes. */
  awareness: Awareness
  /**
   * A fresh single-use access token for this room, minted by the device that owns the doc
   * (see `createAccessToken`). Transports that authenticate (the WebSocket transport to a
   * contextsync relay) call it before every connection attempt with the relay's audience (the
   * `host[:port]` they connect to, so the token is good at that relay only); others ignore it.
   */
  token?: (request: { audience: string }) => string | Promise<string>
}

/**
 * One room attached to a transport. Detaching stops syncing that room; the doc is left intact.
 */
export interface TransportAttachment {
  /** The current connection state. */
  readonly status: TransportStatus
  /** Subscribe to an event; returns an unsubscribe function. */
  on<E extends keyof TransportAttachmentEvents>(event: E, listener: TransportAttachmentEvents[E]): () => void
  /** Stop syncing this room. Idempotent. */
  detach(): void
}

/**
 * Carries sealed logs between holders. One transport instance serves one device and can carry
 * many rooms at once.
 *
 * @example
 * ```ts
 * const net = loopbackNetwork({ seed: 1 })
 * const transport = net.transport()
 * const attachment = transport.attach({ roomId, doc, awareness })
 * attachment.on('status', ({ status }) => console.log(status))
 * ```
 */
export interface Transport {
  /** A short name for logs and metrics, e.g. `'websocket'` or `'loopback'`. */
  readonly kind: string
  /** Start syncing a room's sealed log. Attaching the same room id twice throws. */
  attach(room: SealedLogRoom): TransportAttachment
  /** Detach every room and release resources. */
  close(): Promise<void> | void
}
