/**
 * `contextsync/websocket` as Node resolves it (the package's `node` export condition): the same
 * transport with `ws` as its default WebSocket, since Node 20 has no global one and `ws` is a
 * dependency already. Browsers, React Native and other runtimes get `./websocket.ts`, which uses
 * the platform `WebSocket`. Chosen by export conditions, not by sniffing the runtime, so bundlers
 * for the browser never see `ws`.
 *
 * @module
 */
import WebSocket from 'ws'
import { websocketTransport as platformTransport, type WebsocketTransport, type WebsocketTransportOptions } from '../adapters/websocket.js'

export { WebsocketTransportError, type WebSocketConstructor, type WebsocketTransport, type WebsocketTransportOptions } from '../adapters/websocket.js'

/**
 * Create a WebSocket transport; `WebSocketPolyfill` defaults to `ws`.
 *
 * @example
 * ```ts
 * import { websocketTransport } from 'contextsync/websocket'
 * const transport = websocketTransport({ url: 'ws://127.0.0.1:8787' })
 * ```
 */
export function websocketTransport(options: WebsocketTransportOptions): WebsocketTransport {
  return platformTransport({ ...options, WebSocketPolyfill: options?.WebSocketPolyfill ?? WebSocket })
}
