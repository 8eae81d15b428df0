/**
 * What a host app hands the link transport: a duplex message channel, and (for simulations) a
 * clock. A channel is one connection; when it closes the host supplies a new one and the link
 * resumes from state vectors.
 *
 * @module
 */

/**
 * A duplex message channel: a BLE GATT characteristic pair (write-without-response one way,
 * notifications the other), an L2CAP channel, a `MessagePort`, a WebSocket. Messages are
 * delivered whole and in order, or lost; the link handles the rest.
 *
 * @example
 * ```ts
 * // A BLE characteristic pair, in a few lines (react-native-ble-plx style):
 * const channel: LinkChannel = {
 *   mtu: device.mtu - 3, // ATT header
 *   send: (bytes) => void device.writeCharacteristicWithoutResponseForService(SERVICE, RX, toBase64(bytes)),
 *   onMessage: (listener) => { device.monitorCharacteristicForService(SERVICE, TX, (_, c) => c && listener(fromBase64(c.value!))) },
 *   onClose: (listener) => { device.onDisconnected(() => listener()) },
 * }
 * transport.connect(channel)
 * ```
 */
export interface LinkChannel {
  /** Largest message the channel carries, in bytes (BLE: ATT MTU − 3, i.e. 20–512). */
  readonly mtu: number
  /** Send one message of at most `mtu` bytes. */
  send(bytes: Uint8Array): void
  /** Register the listener for incoming messages (called once). */
  onMessage(listener: (bytes: Uint8Array) => void): void
  /** Register the listener for the channel closing (called once). */
  onClose(listener: () => void): void
  /** Whether `send` would be accepted now (a full BLE TX buffer says no); default always. */
  canSend?(): boolean
  /** Register a listener for when `canSend` turns true again. */
  onDrain?(listener: () => void): void
  /** Close the channel (the link calls it on a keepalive timeout or a handshake failure). */
  close?(): void
  /**
   * Call `listener` once, just before the next connection event this device's radio attends
   * anyway — a BLE peripheral's firmware learns it from the stack (Nordic SoftDevice "radio
   * notification"); phone OS APIs do not offer it, so a phone's channel leaves this out. With
   * `rideRadioEvents`, the link sends held data then, so it costs no wake-up of its own; data
   * queued inside the listener must go out in that event.
   */
  nextRadioEvent?(listener: () => void): void
  /**
   * Ask for a new BLE peripheral latency (connection events the peripheral may skip when it has
   * nothing to send): a peripheral's connection parameter update request, which the central
   * applies a few events later. A glasses power profile asks for a high latency with the screen
   * off and 0 while someone reads. Channels that cannot ask (a phone's, a WebSocket) leave it out.
   */
  requestPeripheralLatency?(latency: number): void
}

/** Timers the link runs on; a simulator passes a virtual clock so seeded runs take no real time. */
export interface LinkClock {
  /** Milliseconds, monotonic. */
  now(): number
  /** Run `fn` after `ms` milliseconds; returns a handle for {@link clearTimer}. */
  setTimer(fn: () => void, ms: number): unknown
  /** Cancel a timer. */
  clearTimer(handle: unknown): void
}

/** The real clock: `setTimeout`, unref'd in Node so an idle link does not keep a process alive. */
export const realClock: LinkClock = {
  now: () => Date.now(),
  setTimer(fn, ms) {
    const handle = setTimeout(fn, ms) as { unref?: () => void }
    handle.unref?.()
    return handle
  },
  clearTimer(handle) {
    clearTimeout(handle as ReturnType<typeof setTimeout>)
  },
}
