/**
 * Relay counters and gauges, rendered in the Prometheus text exposition format for `/metrics`.
 *
 * Labels are bounded: rejections are labelled by close code and its fixed name only (never by
 * room, account or free-text reason), so cardinality stays constant.
 *
 * @module
 */
import { closeCodeName } from './close-codes.js'

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
  private readonly rejections = new Map<number, number>()

  /** @param storedBytes reads the current stored total from the storage layer. */
  constructor(private readonly storedBytes: () => number) {}

  /** Count one refusal/closure with `code`. */
  reject(code: number): void {
    this.rejections.set(code, (this.rejections.get(code) ?? 0) + 1)
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
      storedBytes: this.storedBytes(),
      merges: this.merges,
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
