/**
 * `contextsync/websocket` — the WebSocket transport to a contextsync relay (or any y-websocket
 * server), built on y-websocket's `WebsocketProvider`. Browsers use the native WebSocket; in Node
 * pass `ws` as `WebSocketPolyfill`.
 *
 * @module
 */
export { websocketTransport, WebsocketTransportError, type WebSocketConstructor, type WebsocketTransportOptions } from '../adapters/websocket.js'
