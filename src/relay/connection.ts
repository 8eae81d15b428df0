/**
 * One authenticated WebSocket joined to a room: rate limit, frame validation, quota check, then
 * hand-off to the room. Anything untrusted that fails a check closes this connection with its
 * documented code, is counted and logged (metadata only), and never reaches the room or storage.
 *
 * @module
 */
import type { RawData, WebSocket } from 'ws'
import { PAIRING_ROOM_PATTERN, type RelayIdentity } from './auth.js'
import { CloseCode, closeReason } from '../wire/close-codes.js'
import { concatBytes } from '../util/bytes.js'
import { TokenBucket, type RelayLimits } from './limits.js'
import type { RelayLogger } from './log.js'
import type { LimitName, RelayMetrics } from './metrics.js'
import type { RelayStorage } from './accounting.js'
import { accountOfRoom } from './store.js'
import { parseClientMessage } from './protocol.js'
import type { Room, RoomPeer } from './room.js'

/** What a connection needs from its relay. */
export interface ConnectionContext {
  limits: RelayLimits
  metrics: RelayMetrics
  logger: RelayLogger
  storage: RelayStorage
}

const OPEN = 1

/** ws error codes and the close code ws itself sends for them. */
function wsErrorCloseCode(code: unknown): number | undefined {
  if (code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') return CloseCode.MessageTooBig
  if (code === 'WS_ERR_INVALID_UTF8') return CloseCode.InvalidPayload
  if (typeof code === 'string' && code.startsWith('WS_ERR_')) return CloseCode.ProtocolError
  return undefined
}

/** Copy a ws message into one fresh `Uint8Array` (Yjs keeps views into it; don't pin socket buffers). */
function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return concatBytes(...data)
  return data instanceof ArrayBuffer ? new Uint8Array(data.slice(0)) : new Uint8Array(data)
}

/** A relay-side connection. Created by the server after auth and quota checks passed. */
export class RelayConnection implements RoomPeer {
  /** Set by pongs, cleared by the keep-alive sweep. */
  alive = true
  /** No more frames go out (refused or shutting down). */
  private closing = false
  /** Refused: nothing more it sends is read. A shutdown still reads in-flight updates. */
  private refused = false
  private readonly bucket: TokenBucket

  constructor(
    readonly ws: WebSocket,
    readonly room: Room,
    readonly identity: RelayIdentity,
    private readonly ctx: ConnectionContext,
    private readonly onClosed: (connection: RelayConnection) => void,
  ) {
    this.bucket = new TokenBucket(ctx.limits.messagesPerSecond, ctx.limits.burst)
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary))
    ws.on('pong', () => {
      this.alive = true
    })
    ws.on('error', (error: Error & { code?: unknown }) => this.onError(error))
    ws.on('close', () => this.onClose())
  }

  /** Join the room (sends sync step 1 and awareness). */
  start(): void {
    this.room.join(this)
  }

  /** Send one frame; dropped once the connection is closing. */
  send(frame: Uint8Array): void {
    if (this.closing || this.ws.readyState !== OPEN) return
    this.ctx.metrics.bytesOut += frame.length
    this.ctx.metrics.messagesOut += 1
    this.ws.send(frame, (error) => {
      if (error) this.ws.terminate()
    })
  }

  /**
   * Close with a refusal code: counted, logged, and the room stops sending to this connection at
   * once. Idempotent.
   */
  refuse(code: CloseCode, reason: string): void {
    if (this.refused) return
    this.refused = true
    this.ctx.metrics.reject(code)
    this.ctx.logger.info('connection closed by relay', {
      code,
      reason,
      roomId: this.room.id,
      deviceId: this.identity.deviceId,
    })
    this.shutdown(code, reason)
  }

  /**
   * Close without counting a refusal (relay shutdown). Updates already in flight from the client
   * are still applied and stored until its close frame arrives. Idempotent.
   */
  shutdown(code: number, reason: string): void {
    if (this.closing) return
    this.closing = true
    this.room.leave(this)
    this.ws.close(code, closeReason(reason))
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.refused) return
    const frame = toBytes(data)
    const { metrics, limits } = this.ctx
    metrics.bytesIn += frame.length
    metrics.messagesIn += 1
    if (!this.bucket.take()) return this.refuse(CloseCode.RateLimited, 'rate limit exceeded')
    if (!isBinary) return this.refuse(CloseCode.MalformedFrame, 'text frame')
    // ws enforces maxPayload already; this guards a custom ws server setup.
    if (frame.length > limits.maxMessageBytes) return this.refuse(CloseCode.MessageTooBig, 'message too big')
    const message = parseClientMessage(frame)
    if (!message) return this.refuse(CloseCode.MalformedFrame, 'malformed frame')
    switch (message.type) {
      case 'sync-step1':
        return this.replyStep2(message.stateVector)
      case 'sync-step2':
      case 'sync-update':
        return this.applyUpdate(message.update)
      case 'awareness':
        return this.applyAwareness(message.update)
      case 'query-awareness':
        return this.send(this.room.allAwareness())
    }
  }

  private replyStep2(stateVector: Uint8Array): void {
    let reply: Uint8Array[]
    try {
      reply = this.room.syncStep2(stateVector)
    } catch (error) {
      // The state vector was validated: the room's doc is what failed, not this client.
      this.ctx.logger.error('room state could not be encoded', {
        roomId: this.room.id,
        error: error instanceof Error ? error.message : 'unknown',
      })
      return this.refuse(CloseCode.InternalError, 'room unavailable')
    }
    for (const frame of reply) this.send(frame)
  }

  /** Apply what this connection may set of an awareness update; count what it may not. */
  private applyAwareness(update: Uint8Array): void {
    const { limits, metrics } = this.ctx
    let verdict
    try {
      verdict = this.room.applyAwareness(update, this, limits.maxAwarenessStatesPerConnection, limits.maxAwarenessBytesPerConnection)
    } catch {
      return this.refuse(CloseCode.MalformedFrame, 'awareness update could not be applied')
    }
    // Dropped, not closed: a device reconnecting races its own old connection for its client id.
    for (let i = 0; i < verdict.foreign; i++) metrics.limitHit('awarenessForeign')
    if (verdict.over) metrics.limitHit(verdict.over)
  }

  /**
   * Check the quotas against the room's estimated merged size (see `persistence.ts`): the update's
   * bytes minus the live content its deletions free. Proportional to the update, never to the
   * room; deletions that shrink the room always pass.
   */
  private applyUpdate(update: Uint8Array): void {
    const { storage, limits, metrics } = this.ctx
    const roomId = this.room.id
    let freed: number
    try {
      freed = this.room.bytesFreedBy(update)
    } catch {
      return this.refuse(CloseCode.MalformedFrame, 'update could not be applied')
    }
    const growth = update.length - freed
    const pairing = PAIRING_ROOM_PATTERN.test(roomId)
    const account = accountOfRoom(roomId)
    /** The first limit the update would pass, and by how many bytes. */
    const over = (): { limit: LimitName; excess: number } | undefined => {
      if (growth <= 0) return undefined
      const room = pairing ? storage.roomSize(roomId) + growth - limits.maxPairingRoomBytes : storage.sizeOfAccount(account) + growth - limits.maxStoredBytesPerAccount
      if (room > 0) return { limit: pairing ? 'pairingRoomBytes' : 'storedBytesPerAccount', excess: room }
      const total = storage.totalSize + growth - limits.maxStoredBytes
      return total > 0 ? { limit: 'storedBytes', excess: total } : undefined
    }
    let verdict = over()
    // The estimate only overcounts; an exact figure costs a merge of the room. It is worth it once
    // an eighth of the room was appended since the last one (merge work stays linear in bytes
    // written) — or when the overcount could be all of the excess (it is at most what was appended
    // since the last merge, plus the headers of what that deleted: twice the appended bytes bounds
    // it) and either a 64th of the room was appended since (still linear in bytes written) or
    // merges of this room are rare next to their cost (Room.mayMergeForExactSize).
    if (verdict && storage.rows(roomId) > 1) {
      const appended = storage.appendedSinceMerge(roomId)
      const size = storage.roomSize(roomId)
      if (appended * 8 >= size || (verdict.excess <= 2 * appended && (appended * 64 >= size || this.room.mayMergeForExactSize()))) {
        this.room.tryMerge()
        verdict = over()
      }
    }
    const limit = verdict?.limit
    if (limit) {
      metrics.limitHit(limit)
      const reason = limit === 'pairingRoomBytes' ? 'pairing room quota exceeded' : limit === 'storedBytes' ? 'relay storage full' : 'account storage quota exceeded'
      return this.refuse(CloseCode.QuotaExceeded, reason)
    }
    try {
      this.room.applyUpdate(update, this, growth)
    } catch {
      return this.refuse(CloseCode.MalformedFrame, 'update could not be applied')
    }
    storage.shrink(roomId, freed)
    // Rows on disk still hold what the deletions freed until a merge: past a quota, merge now when
    // that is paid for (an eighth of the room appended since the last merge), else soon.
    if (storage.bytesOfAccount(account) > limits.maxStoredBytesPerAccount || storage.totalBytes > limits.maxStoredBytes) {
      if (storage.appendedSinceMerge(roomId) * 8 >= storage.roomSize(roomId)) this.room.tryMerge()
      else this.room.mergeSoon()
    }
  }

  private onError(error: Error & { code?: unknown }): void {
    const code = wsErrorCloseCode(error.code)
    if (code === undefined || this.refused) return
    // ws closes the socket itself with `code`; count it and stop serving this peer.
    this.ctx.metrics.reject(code)
    this.ctx.logger.info('connection closed by relay', { code, reason: error.code as string, roomId: this.room.id })
    this.refused = true
    this.closing = true
    this.room.leave(this)
  }

  private onClose(): void {
    this.refused = true
    this.closing = true
    this.room.leave(this)
    this.onClosed(this)
  }
}
