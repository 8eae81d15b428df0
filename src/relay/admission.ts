/**
 * Admission of an upgraded connection (README "The relay"): {@link decideUpgrade} runs the
 * request's room and token through the auth hooks and the operator's `authorizeAccount` before
 * the relay sends anything; {@link admitConnection} applies the room quotas, loads the room and
 * joins the connection to it, or delivers the refusal's close code and closes.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http'
import type { WebSocket } from 'ws'
import { authenticate, PAIRING_ROOM_PATTERN, RelayRefusal, type AuthHook, type RelayIdentity } from './auth.js'
import { CloseCode, closeReason } from '../wire/close-codes.js'
import { RelayConnection, type ConnectionContext } from './connection.js'
import type { RelayLimits } from './limits.js'
import type { RelayLogger } from './log.js'
import type { LimitName, RelayMetrics } from './metrics.js'
import type { PairingRoomQuota } from './pairing-rooms.js'
import type { RelayStorage } from './accounting.js'
import type { Room } from './room.js'
import { accountOfRoom } from './store.js'
import { at, parseTarget } from './server-helpers.js'
import type { RelayOptions } from './server-options.js'

/** What {@link decideUpgrade} decided about an upgrade request. */
export type Decision =
  | { identity: RelayIdentity; roomId: string }
  | { refusal: RelayRefusal; roomId: string | undefined; limit?: LimitName }

/** What {@link admitConnection} needs of the running relay. */
export interface AdmissionDeps {
  storage: RelayStorage
  limits: RelayLimits
  metrics: RelayMetrics
  logger: RelayLogger
  context: ConnectionContext
  pairingQuota: PairingRoomQuota
  /** Live connections, and how many each loaded room has. */
  connections: Set<RelayConnection>
  roomConnections: Map<Room, number>
  /** True once the relay is shutting down. */
  closing: () => boolean
  openRoom: (roomId: string) => Promise<Room>
  unloadRoom: (room: Room) => void
  onClosed: (connection: RelayConnection) => void
}

/** Deliver a refusal: count it, send its notice if any, close with its code. */
function refuse(
  deps: Pick<AdmissionDeps, 'metrics' | 'logger'>,
  ws: WebSocket,
  code: CloseCode,
  reason: string,
  roomId: string | undefined,
  notice?: Uint8Array,
  limit?: LimitName,
): void {
  deps.metrics.reject(code)
  if (limit) deps.metrics.limitHit(limit)
  deps.logger.info('connection refused', { code, reason, roomId })
  ws.on('error', () => {})
  if (notice) ws.send(notice)
  ws.close(code, closeReason(reason))
}

/** Admit an upgraded socket per `decision`, or refuse it; `release` frees its place in the address gate. */
export async function admitConnection(ws: WebSocket, decision: Decision, address: string, release: () => void, deps: AdmissionDeps): Promise<void> {
const { storage, limits, pairingQuota, openRoom, unloadRoom, onClosed, connections, roomConnections, metrics, logger, context } = deps
  if ('refusal' in decision) {
    ws.once('close', release)
    return refuse(deps, ws, decision.refusal.closeCode, decision.refusal.reason, decision.roomId, decision.refusal.notice, decision.limit)
  }
  const { roomId, identity } = decision
  const refuseNow = (code: CloseCode, reason: string, limit?: LimitName): void => {
    ws.once('close', release)
    refuse(deps, ws, code, reason, roomId, undefined, limit)
  }
  const pairing = PAIRING_ROOM_PATTERN.test(roomId)
  if (!storage.hasRoom(roomId)) {
    if (storage.roomCount >= limits.maxRooms) return refuseNow(CloseCode.TooManyRooms, 'relay room limit reached', 'rooms')
    // Pairing rooms count per source address instead (anyone may open one without a token).
    if (!pairing && storage.roomsOfAccount(accountOfRoom(roomId)) >= limits.maxRoomsPerAccount) {
      return refuseNow(CloseCode.TooManyRooms, 'room quota exceeded', 'roomsPerAccount')
    }
  }
  if (pairing && !pairingQuota.enter(address, roomId)) {
    return refuseNow(CloseCode.TooManyRooms, 'too many pairing rooms from this address', 'pairingRoomsPerAddress')
  }
  let room: Room
  // Frames the client sends while its room loads wait in the socket (unread, so not lost); the
  // connection's handlers are attached in the same turn as the resume, before any is read.
  ws.pause()
  try {
    room = await openRoom(roomId)
    ws.resume()
  } catch (error) {
    ws.resume()
    if (pairing) pairingQuota.leave(address, roomId)
    logger.error('loading a room failed', { roomId, error: error instanceof Error ? error.message : 'unknown' })
    return refuseNow(CloseCode.InternalError, 'room unavailable')
  }
  if (ws.readyState !== ws.OPEN || deps.closing()) {
    // Gone while the room loaded; a room nobody joined is unloaded again.
    if (pairing) pairingQuota.leave(address, roomId)
    release()
    if (!roomConnections.has(room)) unloadRoom(room)
    return
  }
  let accessEnd: { cancel: () => void } | undefined
  const connection = new RelayConnection(ws, room, identity, context, (closed) => {
    accessEnd?.cancel()
    if (pairing) pairingQuota.leave(address, roomId)
    release()
    onClosed(closed)
  })
  connections.add(connection)
  roomConnections.set(room, (roomConnections.get(room) ?? 0) + 1)
  metrics.connections = connections.size
  metrics.connectionsTotal += 1
  logger.debug('connection admitted', { roomId, deviceId: identity.deviceId })
  connection.start()
  // A temporary grant or membership ends while connected: the device is out from then on.
  if (identity.until !== undefined) accessEnd = at(identity.until, () => connection.refuse(CloseCode.Forbidden, 'temporary access ended'))
}

/** Decide on an upgrade request: its room id, its token through the auth hooks, the account check. */
export async function decideUpgrade(
  request: IncomingMessage,
  hooks: readonly AuthHook[],
  authorizeAccount: RelayOptions['authorizeAccount'],
  logger: RelayLogger,
): Promise<Decision> {
  const { roomId, token } = parseTarget(request.url, request.headers['sec-websocket-protocol'])
  if (roomId === undefined) return { refusal: new RelayRefusal(CloseCode.Forbidden, 'bad room id'), roomId }
  let identity: RelayIdentity
  try {
    identity = await authenticate(hooks, { roomId, token, request })
  } catch (error) {
    const refusal =
      error instanceof RelayRefusal ? error : new RelayRefusal(CloseCode.Unauthorized, 'authentication failed')
    return { refusal, roomId }
  }
  if (authorizeAccount && !PAIRING_ROOM_PATTERN.test(roomId)) {
    let allowed: boolean
    try {
      allowed = (await authorizeAccount(identity.accountId)) === true
    } catch (error) {
      logger.error('authorizeAccount failed', { error: error instanceof Error ? error.message : 'unknown' })
      return { refusal: new RelayRefusal(CloseCode.InternalError, 'account check unavailable'), roomId }
    }
    if (!allowed) return { refusal: new RelayRefusal(CloseCode.Forbidden, 'account not authorized on this relay'), roomId, limit: 'account' }
  }
  return { identity, roomId }
}
