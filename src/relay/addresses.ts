/**
 * Source addresses and the connection caps counted per address and in total (README.md "The
 * relay"; THREAT_MODEL.md, anyone who can reach the relay).
 *
 * Anyone can mint an account and valid tokens, so the only thing an abuser cannot multiply for
 * free is where they connect from. IPv6 addresses count per /64 — one host usually holds a whole
 * /64 — and IPv4-mapped IPv6 addresses count as their IPv4 address.
 *
 * @module
 */
import { isIPv6 } from 'node:net'

/** The key a source address is counted under: IPv4 as is, IPv6 by its /64 prefix. */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown'
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)
  if (mapped) return mapped[1]!
  if (!isIPv6(address)) return address
  const [head = '', tail = ''] = address.toLowerCase().split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === '' ? [] : tail.split(':')
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`
}

/**
 * The source address of an upgrade request: the last entry of `header` when the operator names
 * one (what its own proxy appended; entries before it are the client's to forge), else the
 * socket's peer address.
 */
export function sourceAddress(remoteAddress: string | undefined, headers: Record<string, string | string[] | undefined>, header: string | undefined): string {
  if (header) {
    const raw = headers[header.toLowerCase()]
    const value = Array.isArray(raw) ? raw[raw.length - 1] : raw
    const last = value?.split(',').pop()?.trim()
    if (last) return addressKey(last)
  }
  return addressKey(remoteAddress)
}

/** What {@link ConnectionGate.enter} decided for a new connection. */
export type GateDecision =
  | { admit: true }
  /** Over a limit: let it upgrade only to deliver the close code. */
  | { admit: false; limit: 'connectionsPerAddress' | 'connections'; drop: false }
  /** Past twice a limit: destroy the socket at once. */
  | { admit: false; limit: 'connectionsPerAddress' | 'connections'; drop: true }

/**
 * Counts open connections per address and in total. Every entered connection counts until it
 * {@link ConnectionGate.leave}s — those over a limit too, so a flood of refused sockets is capped
 * at twice the limit.
 */
export class ConnectionGate {
  private readonly perAddress = new Map<string, number>()
  private total = 0

  /**
   * @param maxPerAddress connections one address may hold
   * @param maxTotal connections the relay may hold
   */
  constructor(
    private readonly maxPerAddress: number,
    private readonly maxTotal: number,
  ) {}

  /** Count a new connection from `address`; the caller must call {@link leave} once it closes. */
  enter(address: string): GateDecision {
    const mine = this.perAddress.get(address) ?? 0
    let decision: GateDecision = { admit: true }
    if (mine >= this.maxPerAddress) decision = { admit: false, limit: 'connectionsPerAddress', drop: mine >= 2 * this.maxPerAddress }
    else if (this.total >= this.maxTotal) decision = { admit: false, limit: 'connections', drop: this.total >= 2 * this.maxTotal }
    if ('drop' in decision && decision.drop) return decision
    this.perAddress.set(address, mine + 1)
    this.total += 1
    return decision
  }

  /** Stop counting a connection {@link enter} counted. */
  leave(address: string): void {
    const mine = (this.perAddress.get(address) ?? 1) - 1
    if (mine > 0) this.perAddress.set(address, mine)
    else this.perAddress.delete(address)
    this.total = Math.max(0, this.total - 1)
  }

  /** Distinct addresses with open connections (metrics). */
  get addresses(): number {
    return this.perAddress.size
  }

  /** Connections counted (metrics). */
  get size(): number {
    return this.total
  }
}
