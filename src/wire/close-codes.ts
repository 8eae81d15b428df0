/**
 * WebSocket close codes the relay sends and clients act on, as named constants (hocuspocus
 * `CloseEvents` style). Both sides import them from here: the relay closes with them, the WebSocket
 * transport names them and decides how long to back off.
 *
 * Codes 4400–4499 mirror HTTP 4xx: the relay refused something on purpose. 1001 and 1009 are the
 * standard RFC 6455 codes. Every refusal is counted in `/metrics` under its code and logged without
 * payloads or tokens. A refused connection receives no room state: auth refusals close the socket
 * right after the upgrade, before the relay sends its first sync message.
 *
 * | code | name                | meaning                                                           |
 * |------|---------------------|-------------------------------------------------------------------|
 * | 1001 | GoingAway           | the relay is shutting down; reconnect later                       |
 * | 1002 | ProtocolError       | WebSocket framing violated (sent by `ws` itself)                  |
 * | 1007 | InvalidPayload      | a text frame with invalid UTF-8 (sent by `ws` itself)             |
 * | 1009 | MessageTooBig       | a frame exceeded `limits.maxMessageBytes`                         |
 * | 1011 | InternalError       | the relay could not serve the room (storage failure, broken state)|
 * | 1013 | TryAgainLater       | the relay holds `maxConnections` connections; retry with backoff  |
 * | 4400 | MalformedFrame      | not a y-protocols message, or an update Yjs cannot decode/apply   |
 * | 4401 | Unauthorized        | token missing, garbled, forged, or its chain does not verify      |
 * | 4403 | Forbidden           | room not in the token's account, bad room id, device revoked¹, or account not authorized by the operator (`authorizeAccount`, `--accounts`) |
 * | 4408 | TokenExpired        | token outside its time window (or lifetime too long)              |
 * | 4409 | TokenReplayed       | token nonce already used: tokens are single-use                   |
 * | 4410 | RoomExpired         | a pairing room outlived `pairingRoomLifetimeMs`; it was deleted (reconnecting starts a fresh one) |
 * | 4413 | QuotaExceeded       | stored bytes would exceed `maxStoredBytesPerAccount`, `maxStoredBytes` (all accounts) or, in a pairing room, `maxPairingRoomBytes` |
 * | 4414 | TooManyRooms        | the account has `maxRoomsPerAccount` rooms, the relay `maxRooms`, or the source address `maxPairingRoomsPerAddress` pairing rooms |
 * | 4429 | RateLimited         | more messages than `messagesPerSecond` (+ `burst`) allow, or the source address holds `maxConnectionsPerAddress` connections |
 *
 * Which limit a shared code stands for is in `/metrics` (`contextsync_relay_limit_hits_total`,
 * label `limit`) and in the close reason. A socket that never completes its upgrade within
 * `upgradeTimeoutMs` gets no close code (there is no WebSocket yet): it is destroyed.
 *
 * ¹ A revoked device's registry-room connection first receives a sync update holding only its
 * root-signed revocation statement, so the device learns why (it verifies the statement itself).
 *
 * @module
 */

/** Named close codes. Stable numbers: part of the relay's wire contract. */
export const CloseCode = {
  /** The relay is shutting down gracefully (RFC 6455 "going away"). Transient. */
  GoingAway: 1001,
  /** The WebSocket framing itself was broken (bad opcode, RSV bits…); `ws` sends it. */
  ProtocolError: 1002,
  /** A text frame held invalid UTF-8; `ws` sends it. The relay only accepts binary frames anyway. */
  InvalidPayload: 1007,
  /** A frame was larger than `limits.maxMessageBytes` (RFC 6455 "message too big"). */
  MessageTooBig: 1009,
  /**
   * The relay could not serve the room: storage failed, or the room's doc can no longer be encoded
   * (Yjs is not Byzantine-tolerant; a device of the account can break its own room's outer doc).
   * Transient from the client's view; the operator sees an error log.
   */
  InternalError: 1011,
  /**
   * The relay holds `limits.maxConnections` connections (RFC 6455 "try again later"). Transient:
   * reconnect with backoff.
   */
  TryAgainLater: 1013,
  /** A frame was not a valid y-protocols message, or carried an update Yjs cannot apply. */
  MalformedFrame: 4400,
  /** Token missing, not decodable, forged, or its certificate chain does not verify. */
  Unauthorized: 4401,
  /** Authenticated, but not allowed here: room outside the account, bad room id, revoked device. */
  Forbidden: 4403,
  /** Token outside its validity window. A fresh token fixes it (if clocks agree). */
  TokenExpired: 4408,
  /** Token already used once. A fresh token fixes it. */
  TokenReplayed: 4409,
  /**
   * A pairing room reached `limits.pairingRoomLifetimeMs` and was deleted, so nobody can hold one
   * forever. Transient: reconnecting starts a fresh room (the devices resend what they hold).
   */
  RoomExpired: 4410,
  /**
   * Storing the update would exceed a stored-bytes quota (measured as merged size): the account's,
   * the relay's over all accounts, or a pairing room's.
   */
  QuotaExceeded: 4413,
  /**
   * Opening this room would exceed a room quota: the account's, the relay's over all accounts, or
   * the pairing rooms of the connection's source address.
   */
  TooManyRooms: 4414,
  /**
   * The connection sent messages faster than its token bucket allows, or its source address
   * already holds `maxConnectionsPerAddress` connections. A short wait fixes either.
   */
  RateLimited: 4429,
} as const

/** One of the {@link CloseCode} numbers. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode]

const NAMES = new Map<number, string>(Object.entries(CloseCode).map(([name, code]) => [code, name]))

/** The symbolic name of a close code, e.g. `closeCodeName(4401) === 'Unauthorized'`. */
export function closeCodeName(code: number): string {
  return NAMES.get(code) ?? `Unknown(${code})`
}

/** True for a number listed in {@link CloseCode}. */
export function isCloseCode(code: number): code is CloseCode {
  return NAMES.has(code)
}

/** Longest close reason RFC 6455 allows, in UTF-8 bytes. */
const MAX_REASON_BYTES = 123

/** Cut a close reason to what a close frame can carry (ws throws on longer ones). */
export function closeReason(reason: string): string {
  const bytes = new TextEncoder().encode(reason)
  if (bytes.length <= MAX_REASON_BYTES) return reason
  // Drop a partial multi-byte character at the cut.
  return new TextDecoder().decode(bytes.subarray(0, MAX_REASON_BYTES)).replace(/\uFFFD$/, '')
}

/**
 * Codes after which retrying at once cannot help (the same request would be refused again):
 * clients should back off to their longest delay. Expired/replayed tokens and rate limiting are
 * not in this set: a fresh token or a short wait fixes them.
 */
export const REFUSAL_CODES: ReadonlySet<number> = new Set<number>([
  CloseCode.Unauthorized,
  CloseCode.Forbidden,
  CloseCode.QuotaExceeded,
  CloseCode.TooManyRooms,
  CloseCode.MessageTooBig,
])
