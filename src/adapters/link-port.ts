/**
 * A {@link LinkChannel} over a `MessagePort`-like endpoint — a `MessagePort` between a webview and
 * its host, a `Worker`, Node's `worker_threads` port — for hosts whose Bluetooth stack lives on
 * the other side of such a bridge (a glasses app in a webview, the radio in native code).
 *
 * @module
 */
import type { LinkChannel } from './link-channel.js'
import { checkMtu } from './link-frames.js'

/** The part of a `MessagePort` the channel uses (DOM and `worker_threads` ports both fit). */
export interface PortLike {
  postMessage(message: unknown): void
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void
  close?(): void
  start?(): void
}

/**
 * A link channel over a port. `mtu` is what the far side can put in one radio packet (the BLE
 * ATT payload it negotiated); messages that are not `Uint8Array`s are ignored. `onClose` fires
 * when {@link PortChannel.closed} is called (ports have no close event of their own: the host
 * calls it when the Bluetooth connection behind the port drops).
 *
 * @example
 * ```ts
 * const { port1, port2 } = new MessageChannel()
 * const channel = portChannel(port1, { mtu: 185 })
 * transport.connect(channel)
 * bluetooth.onDisconnect(() => channel.closed())
 * ```
 */
export function portChannel(port: PortLike, options: { mtu: number }): PortChannel {
  const mtu = checkMtu(options.mtu)
  let onMessage: ((bytes: Uint8Array) => void) | undefined
  let onClose: (() => void) | undefined
  let open = true
  port.addEventListener('message', (event) => {
    if (open && event.data instanceof Uint8Array) onMessage?.(event.data)
  })
  port.start?.()
  const end = (): void => {
    if (!open) return
    open = false
    port.close?.()
    onClose?.()
  }
  return {
    mtu,
    send(bytes) {
      if (open) port.postMessage(bytes)
    },
    onMessage(listener) {
      onMessage = listener
    },
    onClose(listener) {
      onClose = listener
    },
    close: end,
    closed: end,
  }
}

/** A {@link LinkChannel} over a port, with a way for the host to say the connection dropped. */
export interface PortChannel extends LinkChannel {
  /** The connection behind the port dropped: the link sees `onClose`. Idempotent. */
  closed(): void
}
