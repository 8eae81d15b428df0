/**
 * Relay counters and gauges, rendered in the Prometheus text exposition format for `/metrics`.
 *
 * Labels are bounded: rejections are labelled by close code and its fixed name only, limit hits by
 * the fixed {@link LimitName} — never by room, account, address or free-text reason — so
 * cardinality stays constant.
 *
 * @module
 */
import { closeCodeName } from '../wire/close-codes.js'

/**
 * The limits counted in `contextsync_relay_limit_hits_total{limit}` (see `limits.ts`): each time
 * one refused a connection, closed one, or dropped (part of) an update.
 */
export const LIMIT_NAMES = [
  'connectionsPerAddress',
  'connections',
  'upgradeTimeout',
  'account',
  'roomsPerAccount',
  'rooms',
  'storedBytesPerAccount',
  'storedBytes',
  'pairingRoomsPerAddress',
  'pairingRoomBytes',
  'pairingRoomLifetime',
  'awarenessForeign',
  'awarenessStates',
  'awarenessBytes',
] as const

/** One of {@link LIMIT_NAMES}. */
export type LimitName = (typeof LIMIT_NAMES)[number]

/** A point-in-time copy of the relay's metrics (what `relay.metrics()` returns). */
export interface RelayMetricsSnapshot {
  /** Open WebSocket connections (authenticated and joined to a room). */
  connections: number
  /** Connections accepted since start. */
  connectionsTotal: number
  /** Rooms currently loaded in memory. */
  rooms: number
  /** Bytes of frames received / sent on room connections. */
  bytesIn: number
  bytesOut: number
  /** Frames received / sent on room connections. */
  messagesIn: number
  messagesOut: number
  /** Connections refused or closed by the relay, by close code. */
  rejections: Record<number, number>
  /** Bytes currently stored, over all accounts. */
  storedBytes: number
  /** Storage merges (update rows replaced by one merged state) since start. */
  merges: number
  /** Times each limit refused, closed or dropped something, by {@link LimitName}. */
  limitHits: Record<LimitName, number>
  /** TCP connections counted against the connection caps (pending upgrades included). */
  sockets: number
  /** Distinct source addresses with open connections. */
  addresses: number
  /** Estimated merged size over all accounts: what the stored-bytes quotas count. */
  storedSize: number
  /** Rooms stored or open, over all accounts. */
  roomsKnown: number
  /** Token nonces the replay cache holds. */
  nonces: number
  /** Fan-out (several relay nodes): notifications received from other nodes / published. */
  fanoutIn: number
  fanoutOut: number
  /** Catch-up fetches from the store (gap, fan-out reconnect, timer) and the rows they brought. */
  catchUps: number
  catchUpRows: number
  /** Times a notification's seq showed that earlier ones were lost or are late. */
  gaps: number
  /** Sum and count of publish-to-receive delays of update notifications, in ms (mean = sum / count). */
  fanoutLagMsSum: number
  fanoutLagCount: number
  /** Largest publish-to-receive delay seen, in ms. */
  fanoutLagMsMax: number
}

/** Gauges the relay reads from its parts when a snapshot is taken. */
export interface MetricsSources {
  storedBytes(): number
  storedSize?(): number
  roomsKnown?(): number
  sockets?(): number
  addresses?(): number
  nonces?(): number
}

/** Mutable counters owned by one relay instance. */
export class RelayMetrics {
  connections = 0
  connectionsTotal = 0
  rooms = 0
  bytesIn = 0
  bytesOut = 0
  messagesIn = 0
  messagesOut = 0
  merges = 0
  fanoutIn = 0
  fanoutOut = 0
  catchUps = 0
  catchUpRows = 0
  gaps = 0
  fanoutLagMsSum = 0
  fanoutLagCount = 0
  fanoutLagMsMax = 0
  private readonly rejections = new Map<number, number>()
  private readonly hits = new Map<LimitName, number>()
  private readonly sources: MetricsSources

  /** @param sources reads the stored total (a function) or every gauge from the relay's parts. */
  constructor(sources: (() => number) | MetricsSources) {
    this.sources = typeof sources === 'function' ? { storedBytes: sources } : sources
  }

  /** Count one refusal/closure with `code`. */
  reject(code: number): void {
    this.rejections.set(code, (this.rejections.get(code) ?? 0) + 1)
  }

  /** Count a notification that took `lagMs` from publish to receipt. */
  fanoutLag(lagMs: number): void {
    const lag = Math.max(0, lagMs)
    this.fanoutLagMsSum += lag
    this.fanoutLagCount += 1
    if (lag > this.fanoutLagMsMax) this.fanoutLagMsMax = lag
  }

  /** Count one hit of a limit. */
  limitHit(limit: LimitName): void {
    this.hits.set(limit, (this.hits.get(limit) ?? 0) + 1)
  }

  /** Copy the current values. */
  snapshot(): RelayMetricsSnapshot {
    return {
      connections: this.connections,
      connectionsTotal: this.connectionsTotal,
      rooms: this.rooms,
      bytesIn: this.bytesIn,
      bytesOut: this.bytesOut,
      messagesIn: this.messagesIn,
      messagesOut: this.messagesOut,
      rejections: Object.fromEntries(this.rejections),
      storedBytes: this.sources.storedBytes(),
      merges: this.merges,
      limitHits: Object.fromEntries(LIMIT_NAMES.map((name) => [name, this.hits.get(name) ?? 0])) as Record<LimitName, number>,
      sockets: this.sources.sockets?.() ?? 0,
      addresses: this.sources.addresses?.() ?? 0,
      storedSize: this.sources.storedSize?.() ?? 0,
      roomsKnown: this.sources.roomsKnown?.() ?? 0,
      nonces: this.sources.nonces?.() ?? 0,
      fanoutIn: this.fanoutIn,
      fanoutOut: this.fanoutOut,
      catchUps: this.catchUps,
      catchUpRows: this.catchUpRows,
      gaps: this.gaps,
      fanoutLagMsSum: this.fanoutLagMsSum,
      fanoutLagCount: this.fanoutLagCount,
      fanoutLagMsMax: this.fanoutLagMsMax,
    }
  }
}

/**
 * Render a snapshot as Prometheus text (version 0.0.4).
 *
 * @example
 * ```ts
 * res.setHeader('content-type', PROMETHEUS_CONTENT_TYPE)
 * res.end(renderPrometheus(relay.metrics()))
 * ```
 */
export function renderPrometheus(s: RelayMetricsSnapshot): string {
  const lines: string[] = []
  const metric = (name: string, type: 'counter' | 'gauge', help: string, value: number): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`)
  }
  metric('contextsync_relay_connections', 'gauge', 'Open room connections.', s.connections)
  metric('contextsync_relay_connections_total', 'counter', 'Room connections accepted since start.', s.connectionsTotal)
  metric('contextsync_relay_rooms', 'gauge', 'Rooms loaded in memory.', s.rooms)
  metric('contextsync_relay_received_bytes_total', 'counter', 'Bytes received on room connections.', s.bytesIn)
  metric('contextsync_relay_sent_bytes_total', 'counter', 'Bytes sent on room connections.', s.bytesOut)
  metric('contextsync_relay_received_messages_total', 'counter', 'Frames received on room connections.', s.messagesIn)
  metric('contextsync_relay_sent_messages_total', 'counter', 'Frames sent on room connections.', s.messagesOut)
  metric('contextsync_relay_stored_bytes', 'gauge', 'Bytes stored over all accounts.', s.storedBytes)
  metric('contextsync_relay_merges_total', 'counter', 'Storage merges since start.', s.merges)
  metric('contextsync_relay_sockets', 'gauge', 'TCP connections counted against the connection caps.', s.sockets)
  metric('contextsync_relay_addresses', 'gauge', 'Distinct source addresses with open connections.', s.addresses)
  metric('contextsync_relay_stored_size_bytes', 'gauge', 'Estimated merged size over all accounts (what quotas count).', s.storedSize)
  metric('contextsync_relay_rooms_known', 'gauge', 'Rooms stored or open over all accounts.', s.roomsKnown)
  metric('contextsync_relay_token_nonces', 'gauge', 'Token nonces held by the replay cache.', s.nonces)
  metric('contextsync_relay_fanout_received_total', 'counter', 'Notifications received from other relay nodes.', s.fanoutIn)
  metric('contextsync_relay_fanout_published_total', 'counter', 'Notifications published to other relay nodes.', s.fanoutOut)
  metric('contextsync_relay_catchup_fetches_total', 'counter', 'Catch-up fetches from the store (gap, fan-out reconnect, timer).', s.catchUps)
  metric('contextsync_relay_catchup_rows_total', 'counter', 'Rows catch-up fetches brought that this node had not applied.', s.catchUpRows)
  metric('contextsync_relay_fanout_gaps_total', 'counter', 'Notifications whose seq showed earlier ones lost or late.', s.gaps)
  lines.push(
    '# HELP contextsync_relay_fanout_lag_seconds Publish-to-receive delay of update notifications.',
    '# TYPE contextsync_relay_fanout_lag_seconds summary',
    `contextsync_relay_fanout_lag_seconds_sum ${s.fanoutLagMsSum / 1000}`,
    `contextsync_relay_fanout_lag_seconds_count ${s.fanoutLagCount}`,
  )
  metric('contextsync_relay_fanout_lag_max_seconds', 'gauge', 'Largest publish-to-receive delay seen.', s.fanoutLagMsMax / 1000)
  lines.push(
    '# HELP contextsync_relay_limit_hits_total Times a limit refused, closed or dropped something, by limit.',
    '# TYPE contextsync_relay_limit_hits_total counter',
  )
  for (const name of LIMIT_NAMES) lines.push(`contextsync_relay_limit_hits_total{limit="${name}"} ${s.limitHits[name] ?? 0}`)
  lines.push(
    '# HELP contextsync_relay_rejections_total Connections refused or closed by the relay, by close code.',
    '# TYPE contextsync_relay_rejections_total counter',
  )
  for (const [code, count] of Object.entries(s.rejections).sort(([a], [b]) => Number(a) - Number(b))) {
    lines.push(`contextsync_relay_rejections_total{code="${code}",reason="${closeCodeName(Number(code))}"} ${count}`)
  }
  return lines.join('\n') + '\n'
}

/** Content type of {@link renderPrometheus} output. */
export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'
