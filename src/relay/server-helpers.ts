/**
 * Small helpers of the relay server: the upgrade request's room and token, health probes, the
 * relay's URL, a timer at an absolute time, and what it tracks of a TCP connection.
 *
 * @module
 */
import { tokenFromProtocols } from '../wire/token-protocol.js'

/** Parse `/<roomId>?token=…`; undefined for a missing or unusable room id. */
export function parseTarget(url: string | undefined, protocols?: string | string[]): { roomId: string | undefined; token: string | undefined } {
  const raw = url ?? '/'
  const q = raw.indexOf('?')
  const path = q < 0 ? raw : raw.slice(0, q)
  // The token travels in a subprotocol entry (contextsync clients) or in the query (stock ones).
  const token = tokenFromProtocols(protocols) ?? (q < 0 ? undefined : (new URLSearchParams(raw.slice(q + 1)).get('token') ?? undefined))
  let roomId: string | undefined
  try {
    roomId = decodeURIComponent(path.slice(1))
  } catch {
    roomId = undefined
  }
  // eslint-disable-next-line no-control-regex
  if (!roomId || roomId.length > 256 || /[\u0000-\u001f]/.test(roomId)) roomId = undefined
  return { roomId, token }
}

/** Whether `ping` resolves within 2 s. */
export async function reachable(ping: () => Promise<void>): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), 2_000)))
  try {
    return await Promise.race([ping().then(() => true), timeout])
  } catch {
    return false
  } finally {
    clearTimeout(timer)
  }
}

/** The relay's `ws://host:port`, an IPv6 host in brackets. */
export function formatUrl(host: string, port: number): string {
  return `ws://${host.includes(':') ? `[${host}]` : host}:${port}`
}

/**
 * Run `fn` once at time `when` (ms), by this clock; re-armed on the way for times past
 * setTimeout's 2^31 − 1 ms. The timer never keeps the process alive.
 */
export function at(when: number, fn: () => void): { cancel: () => void } {
  let timer: NodeJS.Timeout | undefined
  const arm = (): void => {
    const left = when - Date.now()
    if (left <= 0) return fn()
    timer = setTimeout(arm, Math.min(left, 2 ** 31 - 1))
    timer.unref()
  }
  arm()
  return { cancel: () => clearTimeout(timer) }
}

/** What the relay tracks of a TCP connection until it closes. */
export interface SocketState {
  /** Source address (counted in the TCP gate when no address header is configured). */
  address: string
  /** Set when the gate refused it: it may upgrade only to receive the close code. */
  over: 'connectionsPerAddress' | 'connections' | undefined
  /** Destroys the socket if it has not upgraded (or sent an HTTP request) in time. */
  timer: NodeJS.Timeout | undefined
}
