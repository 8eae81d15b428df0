/**
 * `contextsync/link` — sync over a Bluetooth-sized link: {@link linkTransport} on a device (the
 * glasses) carries y-protocols sync and awareness for several rooms over any duplex message
 * channel the host app supplies, fragmented to the channel's MTU, with credit-based flow control,
 * keepalive, resumption from state vectors and a radio window; {@link linkServer} is the hub end
 * (the phone), which admits rooms with the relay's own token check and fans updates out between
 * its peers. WIRE.md "Link frames" is the byte format.
 *
 * @example
 * ```ts
 * import { linkServer, linkTransport } from 'contextsync/link'
 * const hub = linkServer({ auth: { audiences: ['link'] } })          // on the phone
 * const glasses = linkTransport({ radioWindowMs: 2_000 })             // on the glasses
 * glasses.attach({ roomId, doc, awareness, token })
 * glasses.connect(glassesEndOfTheBleChannel)
 * hub.accept(phoneEndOfTheBleChannel)
 * ```
 *
 * @module
 */
export { linkTransport, type LinkOptions, type LinkTransport, type LinkTransportEvents, type LinkTransportOptions } from '../adapters/link.js'
export { linkServer, type LinkHubRoom, type LinkServer, type LinkServerEvents, type LinkServerOptions } from '../adapters/link-server.js'
export { realClock, type LinkChannel, type LinkClock } from '../adapters/link-channel.js'
export { portChannel, type PortChannel, type PortLike } from '../adapters/link-port.js'
export { LinkError, type LinkErrorReason } from '../adapters/link-errors.js'
export { ABSENT_CODE, type LinkConnection, type LinkConnectionStats } from '../adapters/link-node.js'
export { MIN_MTU, MAX_MTU, LINK_VERSION, type LinkRole } from '../adapters/link-frames.js'
export type { LinkSessionStats } from '../adapters/link-session.js'
