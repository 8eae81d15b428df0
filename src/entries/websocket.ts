/**
 * `contextsync/websocket` — the WebSocket transport to a contextsync relay (or any y-websocket
 * server), built on y-websocket's `WebsocketProvider`, for runtimes with a platform WebSocket (browsers,
 * webviews, React Native). Node resolves `./websocket-node.ts` instead, which defaults to `ws`.
 *
 * @module
 */
export { websocketTransport, WebsocketTransportError, type WebSocketConstructor, type WebsocketTransport, type WebsocketTransportOptions } from '../adapters/websocket.js'
