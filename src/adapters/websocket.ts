/**
 * `contextsync/websocket`: a {@link Transport} over y-websocket's `WebsocketProvider`, one provider
 * per attached room, talking to a contextsync relay or any stock y-websocket server.
 *
 * Isomorphic: browsers use their native `WebSocket`; in Node pass `ws` as `WebSocketPolyfill`
 * (this file never imports it, so it bundles for browsers).
 *
 * Why the transport drives (re)connection itself instead of the provider: relay tokens are
 * single-use and may come from an async source, so every attempt needs a fresh token fetched
 * *before* the socket opens — the provider's own reconnect would reuse the old URL. The provider
 * is created with `connect: false`; after each close we pick a delay (exponential backoff; the
 * longest delay at once after a refusal such as 4401/4403, so a revoked device does not hammer
 * the relay), fetch a token, set it as the `token` URL parameter and call `provider.connect()`.
 * The outer doc stays attached throughout, so writes made offline sync on reconnect.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import * as syncProtocol from 'y-protocols/sync'
import { WebsocketProvider } from 'y-websocket'
import { CloseCode, closeCodeName, REFUSAL_CODES } from '../wire/close-codes.js'
import { MessageType } from '../wire/messages.js'
import { MIN_SYNC_FRAME_BYTES, SYNC_FRAME_BYTES, SYNC_FRAME_OVERHEAD, syncStep2Frames, updateFrames, type SyncFrames } from '../wire/sync-frames.js'
import { cutState, cutTransaction } from '../crdt/cut-state.js'
import { TOKEN_PROTOCOL, TOKEN_PROTOCOL_PREFIX } from '../wire/token-protocol.js'
import { tokenAudience } from '../crypto/token.js'
import type { SealedLogRoom, Transport } from './transport.js'
import { ContextSyncError } from '../errors.js'
import { FrameBudget } from './frame-budget.js'
import { AttachmentBase } from './attachment-base.js'

/**
 * A WebSocket class: `globalThis.WebSocket` in browsers, `ws` in Node. Structural and loose on
 * purpose, so `ws` passes without a cast (its event types differ from the DOM's in detail).
 */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => object

/** Options of {@link websocketTransport}. */
export interface WebsocketTransportOptions {
  /** Relay base URL, e.g. `ws://127.0.0.1:8787`; rooms connect to `${url}/${roomId}`. */
  url: string
  /**
   * Returns a fresh access token for a room; called before every connection attempt (tokens are
   * single-use) with the audience to name — this relay's `host[:port]` (`tokenAudience(url)`).
   * Default: the room's own `token` (a `ContextSync` device mints them); rooms without one
   * connect without a token (a stock y-websocket server, pairing rooms).
   */
  token?: (roomId: string, request: { audience: string }) => string | Promise<string>
  /**
   * WebSocket implementation; default `globalThis.WebSocket`. In Node 20 pass `ws` (its class
   * type-checks as it is: any constructor taking a URL and protocols is accepted).
   */
  WebSocketPolyfill?: WebSocketConstructor
  /** Re-send sync step 1 at this interval (ms) to catch anything missed; default off. */
  resyncInterval?: number
  /** Longest reconnect delay in ms; default 2 500 (the provider's default). */
  maxBackoffTime?: number
  /**
   * Where the token travels: `'header'` (default) — a `Sec-WebSocket-Protocol` entry
   * (`contextsync.token.<token>`, next to `contextsync`), so it never appears in a URL that
   * proxies and access logs keep; `'url'` — the `token` query parameter, for a server that reads
   * only that. The contextsync relay reads both.
   */
  tokenIn?: 'header' | 'url'
  /**
   * Delay (ms) after the relay refused the connection (bad token, forbidden room, quota, too
   * big): at least this long before trying again; default 30 000 (or `maxBackoffTime` if larger).
   */
  refusedBackoffTime?: number
  /**
   * Spread reconnect delays at random over [½, 1] × the backoff ("equal jitter"), so many devices
   * dropped at once by a relay restart do not all come back in the same instant. Default false.
   */
  jitter?: boolean
  /**
   * Largest sync frame to send, in bytes; default 1 MiB. A first sync or a large transaction is
   * cut into frames of at most this size (whole envelopes each), so it fits the relay's
   * `maxMessageBytes`. A relay that still refuses a frame (close 1009) makes the transport halve
   * the budget and retry; an envelope too large for the relay on its own is reported as the
   * lasting `error` code `envelope-too-big`. At least 4 KiB.
   */
  maxFrameBytes?: number
  /**
   * Give up on a connection attempt that has not opened after this many ms, and try again with
   * the usual backoff; default 10 000. A network that drops packets (a tunnel, a captive portal
   * that accepts and never answers) would otherwise leave an attempt pending for minutes, or for
   * ever: neither browsers' `WebSocket` nor `ws` time out an opening handshake by default.
   */
  connectTimeoutTime?: number
}

/**
 * A {@link Transport} over WebSocket, with the host's view of the network: an app that knows the
 * device went offline (a tunnel, airplane mode) says so, and the transport stops trying; when it
 * says the network is back, every room reconnects at once instead of waiting out its backoff.
 */
export interface WebsocketTransport extends Transport {
  /**
   * `false`: close every room's socket and stop reconnecting; `true` (also when already online,
   * say after a network change): every room not connected tries now, its backoff reset. Writes
   * made meanwhile stay in the sealed logs and sync on reconnect.
   */
  setOnline(online: boolean): void
}

/** Thrown when a room is attached twice, the transport is used after `close()`, or its options make no sense. */
export class WebsocketTransportError extends ContextSyncError {
  override readonly name = 'WebsocketTransportError'
  /** `code`: `invalid-argument` (misuse), `config` (options that make no sense) or `closed` (use after close). */
  constructor(message: string, code: 'invalid-argument' | 'config' | 'closed' = 'invalid-argument') {
    super(code, message)
  }
}

/** Close codes that are plain disconnects, not worth an `error` event. */
const QUIET_CLOSE_CODES: ReadonlySet<number> = new Set([1000, 1001, 1005, 1006])

/** A close event as the providers report it (DOM `CloseEvent` or ws's equivalent). */
interface CloseInfo {
  code: number
  reason: string
}

function closeInfo(event: unknown): CloseInfo | undefined {
  if (typeof event !== 'object' || event === null) return undefined
  const { code, reason } = event as { code?: unknown; reason?: unknown }
  return typeof code === 'number' ? { code, reason: typeof reason === 'string' ? reason : '' } : undefined
}

/**
 * Create a WebSocket transport.
 *
 * @example
 * ```ts
 * import WebSocket from 'ws' // Node only
 * const transport = websocketTransport({
 *   url: relay.url,
 *   token: (roomId, { audience }) => createAccessToken({ rootPublicKey, relayPass, device, roomId, audience }),
 *   WebSocketPolyfill: WebSocket,
 * })
 * const attachment = transport.attach({ roomId, doc, awareness })
 * attachment.on('status', ({ status }) => console.log(status))
 * ```
 */
export function websocketTransport(options: WebsocketTransportOptions): WebsocketTransport {
  // The polyfill is taken on trust to be a WHATWG-compatible WebSocket (as `ws` is).
  const WS = (options.WebSocketPolyfill as typeof WebSocket | undefined) ?? (globalThis as { WebSocket?: typeof WebSocket }).WebSocket
  if (!WS) throw new WebsocketTransportError('no WebSocket implementation: pass WebSocketPolyfill (e.g. ws in Node)', 'config')
  if (options.tokenIn !== undefined && options.tokenIn !== 'header' && options.tokenIn !== 'url') {
    throw new WebsocketTransportError(`tokenIn must be 'header' or 'url', got ${JSON.stringify(options.tokenIn)}`, 'config')
  }
  const maxFrameBytes = options.maxFrameBytes ?? SYNC_FRAME_BYTES
  if (!Number.isSafeInteger(maxFrameBytes) || maxFrameBytes < MIN_SYNC_FRAME_BYTES) {
    throw new WebsocketTransportError(`maxFrameBytes must be an integer of at least ${MIN_SYNC_FRAME_BYTES}, got ${String(options.maxFrameBytes)}`, 'config')
  }
  const connectTimeout = options.connectTimeoutTime ?? 10_000
  if (typeof connectTimeout !== 'number' || !(connectTimeout > 0)) {
    throw new WebsocketTransportError(`connectTimeoutTime must be a positive number of ms, got ${String(options.connectTimeoutTime)}`, 'config')
  }
  const maxBackoff = options.maxBackoffTime ?? 2500
  const refusedBackoff = Math.max(options.refusedBackoffTime ?? 30_000, maxBackoff)
  const attachments = new Map<string, RoomAttachment>()
  let closed = false
  let online = true

  return {
    kind: 'websocket',
    attach(room) {
      if (closed) throw new WebsocketTransportError('transport is closed', 'closed')
      if (attachments.has(room.roomId)) throw new WebsocketTransportError(`room ${room.roomId} is already attached`)
      // The device that owns the doc mints tokens for its rooms; an explicit option overrides it.
      const token = options.token ?? (room.token ? (_roomId: string, request: { audience: string }) => room.token!(request) : undefined)
      const attachment = new RoomAttachment(room, {
        url: options.url,
        token,
        WS,
        resyncInterval: options.resyncInterval ?? -1,
        maxBackoff,
        refusedBackoff,
        tokenIn: options.tokenIn === 'url' ? 'url' : 'header',
        jitter: options.jitter === true,
        maxFrameBytes,
        connectTimeout,
        online,
        onDetach: () => attachments.delete(room.roomId),
      })
      attachments.set(room.roomId, attachment)
      return attachment
    },
    setOnline(value) {
      if (typeof value !== 'boolean') throw new WebsocketTransportError(`setOnline takes a boolean, got ${typeof value}`)
      online = value
      for (const attachment of attachments.values()) attachment.setOnline(value)
    },
    close() {
      closed = true
      for (const attachment of [...attachments.values()]) attachment.detach()
    },
  }
}

/** The shape of a y-websocket message handler (the provider keeps one per message type). */
type SyncHandler = (
  encoder: encoding.Encoder,
  decoder: decoding.Decoder,
  provider: { doc: Y.Doc; synced: boolean },
  emitSynced: boolean,
  messageType: number,
) => void

interface AttachmentConfig {
  url: string
  token: ((roomId: string, request: { audience: string }) => string | Promise<string>) | undefined
  WS: typeof WebSocket
  resyncInterval: number
  maxBackoff: number
  refusedBackoff: number
  tokenIn: 'header' | 'url'
  jitter: boolean
  maxFrameBytes: number
  connectTimeout: number
  /** Whether the host says the network is up when the room is attached. */
  online: boolean
  onDetach: () => void
}

/** One room on one provider. */
class RoomAttachment extends AttachmentBase {
  private readonly provider: WebsocketProvider
  private readonly roomId: string
  private detached = false
  private failures = 0
  private timer: ReturnType<typeof setTimeout> | undefined
  /** Bumped on every attempt and on detach, so a late token cannot revive a stale attempt. */
  private attempt = 0
  private resync: ReturnType<typeof setInterval> | undefined
  /** The host says the network is down: no socket, no attempts. */
  private offline: boolean
  private readonly budget: FrameBudget
  /** Gives up on an attempt that has not opened in time ({@link WebsocketTransportOptions.connectTimeoutTime}). */
  private connectTimer: ReturnType<typeof setTimeout> | undefined

  constructor(
    room: SealedLogRoom,
    private readonly config: AttachmentConfig,
  ) {
    super(room.roomId)
    this.roomId = room.roomId
    this.offline = !config.online
    this.budget = new FrameBudget(config.maxFrameBytes)
    this.provider = new WebsocketProvider(config.url, room.roomId, room.doc, {
      connect: false,
      awareness: room.awareness,
      WebSocketPolyfill: config.WS,
      // The provider's own resync timer reads the global `WebSocket.OPEN`, which Node 20 lacks.
      resyncInterval: -1,
      maxBackoffTime: config.maxBackoff,
      // Cross-tab BroadcastChannel would bypass the relay (and its auth); in Node it is an
      // in-process channel that would sync two attachments of one room behind the test's back.
      disableBc: true,
    })
    // In Node the provider adds a process 'exit' listener per room (to clear its awareness state,
    // which the relay drops on disconnect anyway); a device with many rooms would trip Node's
    // listener-leak warning, so take it off again.
    const exitHandler = (this.provider as unknown as { _exitHandler?: () => void })._exitHandler
    const proc = (globalThis as { process?: { off?: (event: string, fn: () => void) => void } }).process
    if (exitHandler && proc?.off) proc.off('exit', exitHandler)
    this.guardSyncMessages()
    this.cutLocalUpdates(room.doc)
    this.provider.on('status', ({ status }) => {
      // 'disconnected' comes from connection-close below, which also covers failed attempts.
      if (status === 'connected') {
        clearTimeout(this.connectTimer)
        this.budget.connected()
        this.setStatus('connected')
      }
    })
    this.provider.on('sync', (synced: boolean) => {
      if (synced) {
        this.failures = 0
        this.setStatus('synced')
      }
    })
    this.provider.on('connection-close', (event: unknown) => this.onClose(event))
    if (config.resyncInterval > 0) {
      this.resync = setInterval(() => this.sendStep1(room), config.resyncInterval)
    }
    if (!this.offline) void this.connect()
  }

  /** See {@link WebsocketTransport.setOnline}. */
  setOnline(online: boolean): void {
    if (this.detached) return
    if (!online) {
      if (this.offline) return
      this.offline = true
      clearTimeout(this.timer)
      clearTimeout(this.connectTimer)
      this.attempt += 1
      this.provider.disconnect()
      this.setStatus('disconnected')
      return
    }
    if (this.provider.wsconnected) {
      this.offline = false
      return
    }
    // A socket still opening may have gone into the network that was down (its packets dropped,
    // it could wait for minutes): start over now, as from offline.
    if (this.provider.ws !== null) this.setOnline(false)
    this.offline = false
    // Otherwise (just back, or waiting out a backoff): the host says the network is there, try now.
    clearTimeout(this.timer)
    this.failures = 0
    void this.connect()
  }

  detach(): void {
    if (this.detached) return
    this.detached = true
    this.attempt += 1
    clearTimeout(this.timer)
    clearTimeout(this.connectTimer)
    clearInterval(this.resync)
    this.provider.destroy()
    this.setStatus('disconnected')
    this.clearListeners()
    this.config.onDetach()
  }

  private async connect(): Promise<void> {
    const attempt = ++this.attempt
    this.setStatus('connecting')
    let token: string | undefined
    if (this.config.token) {
      try {
        token = await this.config.token(this.roomId, { audience: tokenAudience(this.config.url) })
      } catch (error) {
        if (attempt !== this.attempt) return
        this.emitError('token-failed', `could not get a relay token: ${error instanceof Error ? error.message : 'unknown error'}`)
        this.setStatus('disconnected')
        this.schedule(false)
        return
      }
    }
    if (attempt !== this.attempt || this.detached || this.offline) return
    // The token rides in a subprotocol header, not the URL (proxies and access logs keep URLs),
    // unless the server is known to read it from the query only.
    if (token === undefined) {
      this.provider.params = {}
      this.provider.protocols = []
    } else if (this.config.tokenIn === 'url') {
      this.provider.params = { token }
      this.provider.protocols = []
    } else {
      this.provider.params = {}
      this.provider.protocols = [TOKEN_PROTOCOL, TOKEN_PROTOCOL_PREFIX + token]
    }
    try {
      this.provider.connect()
      clearTimeout(this.connectTimer)
      this.connectTimer = setTimeout(() => this.connectTimedOut(attempt), this.config.connectTimeout)
    } catch (error) {
      // e.g. a malformed URL: the WebSocket constructor throws synchronously.
      this.emitError('connect-failed', error instanceof Error ? error.message : 'could not open a WebSocket')
      this.provider.ws = null
      this.setStatus('disconnected')
      this.schedule(false)
    }
  }

  /** The attempt has not opened in time: close it (the close handler schedules the next one). */
  private connectTimedOut(attempt: number): void {
    if (attempt !== this.attempt || this.detached || this.offline || this.provider.wsconnected || this.provider.ws === null) return
    this.emitError('connect-timeout', `the relay did not answer within ${this.config.connectTimeout} ms; trying again`)
    this.provider.disconnect()
  }

  /** Ask the server for anything missed (sync step 1), like the provider's resync would. */
  private sendStep1(room: SealedLogRoom): void {
    const ws = this.provider.ws
    if (!this.provider.wsconnected || !ws) return
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeSyncStep1(encoder, room.doc)
    try {
      ws.send(encoding.toUint8Array(encoder))
    } catch {
      // A socket closing under us; the close handler reconnects.
    }
  }

  /**
   * The provider's own sync handler hands whatever the server sends to `Y.applyUpdate`, which
   * allocates an array for each client's claimed struct count before reading any: a relay could
   * make a device allocate 256 MiB with a 9-byte update claiming 2^25 structs. So updates are
   * walked first with Yjs's lazy reader (no allocation per claim); one it cannot read is dropped
   * and reported (`error`, code `malformed-update`) — the relay is not trusted with the device's
   * memory any more than with its data.
   */
  private guardSyncMessages(): void {
    const handlers = (this.provider as unknown as { messageHandlers: SyncHandler[] }).messageHandlers
    handlers[MessageType.Sync] = (encoder, decoder, provider, emitSynced) => {
      encoding.writeVarUint(encoder, MessageType.Sync)
      const type = decoding.readVarUint(decoder)
      if (type === syncProtocol.messageYjsSyncStep1) {
        // Answered in frames of at most the budget, sent here; the encoder keeps only the message
        // type, which the provider does not send.
        const stateVector = decoding.readVarUint8Array(decoder)
        this.send(syncStep2Frames(cutState(provider.doc, this.budget.bytes - SYNC_FRAME_OVERHEAD, stateVector)))
        return
      }
      if (type !== syncProtocol.messageYjsSyncStep2 && type !== syncProtocol.messageYjsUpdate) return
      const update = decoding.readVarUint8Array(decoder)
      try {
        Y.parseUpdateMeta(update)
        Y.applyUpdate(provider.doc, update, provider)
      } catch {
        this.emitError('malformed-update', 'the server sent an update that does not parse; dropped')
        return
      }
      if (emitSynced && type === syncProtocol.messageYjsSyncStep2 && !provider.synced) provider.synced = true
    }
  }

  /**
   * Local transactions go out through {@link updateFrames} instead of the provider's own handler,
   * which would put a large one (an import, a first compaction) in one oversized frame.
   */
  private cutLocalUpdates(doc: Y.Doc): void {
    const provider = this.provider as unknown as { _updateHandler: (update: Uint8Array, origin: unknown) => void }
    doc.off('update', provider._updateHandler)
    // Kept under the provider's name, so its destroy() unregisters this one.
    provider._updateHandler = (update, origin) => {
      if (origin === this.provider) return
      const budget = this.budget.bytes - SYNC_FRAME_OVERHEAD
      // One that fits goes as it is, as y-websocket would send it; were the relay to refuse it
      // anyway, the next sync step 2 cuts it.
      this.send(updateFrames(update.length <= budget ? { updates: [update], splittable: [true] } : cutTransaction(doc, update, budget)))
    }
    doc.on('update', provider._updateHandler)
  }

  /** Send frames on the open socket (dropped when there is none: the next sync step 1 covers them). */
  private send(sync: SyncFrames): void {
    const ws = this.provider.ws
    if (!this.provider.wsconnected || !ws || ws.readyState !== ws.OPEN) return
    this.budget.sent(sync)
    try {
      for (const frame of sync.frames) ws.send(frame)
    } catch {
      // A socket closing under us; the close handler reconnects.
    }
  }

  private onClose(event: unknown): void {
    // The provider would reconnect on its own with the same (now spent) token; we take over.
    this.provider.shouldConnect = false
    if (this.detached) return
    if (this.offline) return this.setStatus('disconnected')
    this.setStatus('disconnected')
    const info = closeInfo(event)
    if (info?.code === CloseCode.MessageTooBig) return this.onTooBig()
    const refused = info !== undefined && REFUSAL_CODES.has(info.code)
    // Normal closure, going away, no status and abnormal drops are the network, not a refusal.
    if (info && !QUIET_CLOSE_CODES.has(info.code)) {
      this.emitError(
        String(info.code),
        `relay closed the connection: ${info.code} ${closeCodeName(info.code)}${info.reason ? ` (${info.reason})` : ''}`,
      )
    }
    this.schedule(refused)
  }

  /** The relay refused a frame as too big (1009): cut smaller and retry soon, unless nothing can be cut. */
  private onTooBig(): void {
    const verdict = this.budget.refused()
    if (verdict.outcome === 'smaller') {
      this.emitError('1009', `relay refused a frame as too big (1009); sending frames of at most ${verdict.budget} bytes from now on`)
      return this.schedule(false)
    }
    this.emitError(
      'envelope-too-big',
      `relay refuses a frame of ${verdict.frameBytes} bytes that cannot be cut smaller (1009): one envelope exceeds its maxMessageBytes; raise the relay's limit`,
    )
    this.schedule(true)
  }

  private schedule(refused: boolean): void {
    clearTimeout(this.timer)
    this.failures += 1
    const backoff = Math.min(100 * 2 ** this.failures, this.config.maxBackoff)
    const base = refused ? this.config.refusedBackoff : backoff
    const delay = this.config.jitter ? base * (0.5 + Math.random() / 2) : base
    this.timer = setTimeout(() => void this.connect(), delay)
  }
}
