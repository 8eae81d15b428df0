/**
 * How a relay token travels: as a WebSocket subprotocol entry, so it sits in the
 * `Sec-WebSocket-Protocol` header instead of the URL (where proxies and access logs keep it).
 * The client offers the entries ({@link TOKEN_PROTOCOL}, then the token behind
 * {@link TOKEN_PROTOCOL_PREFIX}); the relay reads the token back with {@link tokenFromProtocols}.
 *
 * @module
 */

/**
 * WebSocket subprotocols a contextsync client offers so its relay token travels in the
 * `Sec-WebSocket-Protocol` header instead of the URL (where proxies and access logs keep it):
 * `[TOKEN_PROTOCOL, TOKEN_PROTOCOL_PREFIX + token]`. The relay selects {@link TOKEN_PROTOCOL};
 * a server that knows nothing of it (stock y-websocket on `ws`) selects the first offered too.
 */
export const TOKEN_PROTOCOL = 'contextsync'
/** Prefix of the subprotocol entry carrying the token (base64url: valid subprotocol characters). */
export const TOKEN_PROTOCOL_PREFIX = 'contextsync.token.'

/**
 * The token a client offered in its `Sec-WebSocket-Protocol` header (as Node gives the header:
 * a comma-separated string), or `undefined`.
 */
export function tokenFromProtocols(header: string | string[] | undefined): string | undefined {
  const offered = (Array.isArray(header) ? header.join(',') : (header ?? '')).split(',')
  for (const entry of offered) {
    const trimmed = entry.trim()
    if (trimmed.startsWith(TOKEN_PROTOCOL_PREFIX) && trimmed.length > TOKEN_PROTOCOL_PREFIX.length) return trimmed.slice(TOKEN_PROTOCOL_PREFIX.length)
  }
  return undefined
}
