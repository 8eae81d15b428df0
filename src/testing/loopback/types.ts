/**
 * The public types of the loopback network (README "Testing"): its options and fault model, the
 * messages its byte tap reports, its counters, and {@link LoopbackError}. The behaviour they
 * describe is documented on the module `index.ts`.
 *
 * @module
 */
import type * as Y from 'yjs'
import type { Transport } from '../../adapters/transport.js'
import { ContextSyncError } from '../../errors.js'

/** How attachments of a room are wired: through one in-process relay, or directly to each other. */
export type LoopbackLayout = 'hub' | 'mesh'

/**
 * Per-message faults, drawn from the network's seeded PRNG. Probabilities are in `[0, 1]`; delays
 * are whole virtual ticks. Omitted fields are 0, i.e. no faults (delivery is still asynchronous).
 */
export interface LoopbackFaults {
  /** Smallest delivery delay in ticks (also used for connection set-up). */
  minDelay?: number
  /** Largest delivery delay in ticks. */
  maxDelay?: number
  /** Probability that a message ignores per-link FIFO order and may overtake earlier ones. */
  reorder?: number
  /** Probability that a message is delivered twice (the copy at its own random time). */
  duplicate?: number
  /** Probability that a message is lost. Recovered by the next resync (see module docs). */
  drop?: number
}

/** Options of {@link loopbackNetwork}. */
export interface LoopbackOptions {
  /** Seed of the PRNG driving delays, faults and tie-breaking. Default `0x5eed`. */
  seed?: number
  /** Wiring of each room. Default `'hub'`. */
  layout?: LoopbackLayout
  /** Initial faults. Default: none. */
  faults?: LoopbackFaults
}

/** What kind of y-websocket frame a {@link LoopbackMessage} is. */
export type LoopbackMessageType = 'sync-step-1' | 'sync-step-2' | 'sync-update' | 'awareness'

/** One message put on the wire, as seen by the `message` tap. */
export interface LoopbackMessage {
  /** Room the link belongs to (links are per room, so the frame itself carries no room id). */
  roomId: string
  /** Sender: a transport name, or `'hub'` for the in-process relay. */
  from: string
  /** Receiver, named like `from`. */
  to: string
  /** The exact frame bytes. Read-only: the same array is delivered. */
  bytes: Uint8Array
  /** Frame kind, decoded from the first bytes. */
  type: LoopbackMessageType
  /** Virtual tick at which it was sent. */
  at: number
  /** The message was lost by the `drop` fault and will never be delivered. */
  dropped: boolean
  /** A second copy of the message will be delivered. */
  duplicated: boolean
}

/** Counters of a {@link LoopbackNetwork}; a snapshot, not a live view. */
export interface LoopbackStats {
  /** Messages put on the wire (each counted once, even when duplicated or dropped). */
  sent: number
  /** Deliveries, duplicates included. */
  delivered: number
  /** Messages lost by the `drop` fault. */
  dropped: number
  /** Extra copies created by the `duplicate` fault. */
  duplicated: number
  /** Deliveries discarded because their link was cut while they were in flight. */
  lost: number
  /** Sum of the sizes of sent messages. */
  bytesSent: number
  /** Sum of the sizes of delivered messages, duplicates included. */
  bytesDelivered: number
  /** Links re-synced by `heal`, `resync` or `settle` (one per link per round). */
  resyncs: number
  /** Frames the receiving side could not parse. */
  rejected: number
}

/** Events of a {@link LoopbackNetwork}. */
export interface LoopbackNetworkEvents {
  /** Every message sent over the network, including ones the `drop` fault loses. */
  message: (event: LoopbackMessage) => void
  /** A message reached its receiver (once per copy), at virtual tick `at`. */
  delivery: (event: { message: LoopbackMessage; at: number }) => void
}

/** A {@link Transport} on a loopback network. */
export interface LoopbackTransport extends Transport {
  /** Always `'loopback'`. */
  readonly kind: 'loopback'
  /** Name used in the tap and in error messages. */
  readonly name: string
}

/**
 * An in-process network of loopback transports, with a simulator's controls. Create one with
 * {@link loopbackNetwork}.
 */
export interface LoopbackNetwork {
  /** Wiring of each room. */
  readonly layout: LoopbackLayout
  /**
   * The PRNG seed; print it when a randomized test fails so it can be replayed. The same seed and
   * the same sequence of calls give the same deliveries and message counts; byte counts also
   * depend on the docs' client ids (random in Yjs), so fix `doc.clientID` for byte-exact replays.
   */
  readonly seed: number
  /** Current virtual time in ticks. */
  readonly now: number
  /** The faults in effect, with defaults filled in. */
  readonly faults: Readonly<Required<LoopbackFaults>>
  /** A snapshot of the counters. */
  readonly stats: LoopbackStats
  /** A new transport (one per simulated device). */
  transport(options?: { name?: string }): LoopbackTransport
  /**
   * Cut every link that crosses groups; the attachments that lose all their links go
   * `'disconnected'`. Replaces any earlier partition. Transports not named in any group form one
   * extra group together. In the `hub` layout the relay stays with the first group.
   */
  partition(...groups: Transport[][]): void
  /** Undo {@link partition} and {@link disconnect}, reconnect everything, and re-sync open links. */
  heal(): void
  /** Take one transport offline: its links are cut, its docs may keep changing locally. */
  disconnect(transport: Transport): void
  /** Bring a transport taken offline by {@link disconnect} back; it re-syncs on reconnect. */
  reconnect(transport: Transport): void
  /** Replace the faults in effect (omitted fields become 0). */
  setFaults(faults: LoopbackFaults): void
  /** Re-run sync step 1 both ways (and re-send awareness) on every open link now. */
  resync(): void
  /**
   * Resolve once nothing is in flight and every open link has converged: both ends hold the same
   * outer state (state vector and delete set), the same forwarded awareness, and have received a
   * sync step 2. Re-syncs links as often as needed to recover dropped messages; rejects with a
   * {@link LoopbackError} if that takes more than 200 rounds (e.g. `drop: 1`).
   */
  settle(): Promise<void>
  /** Subscribe to network events (the byte tap); returns an unsubscribe function. */
  on<E extends keyof LoopbackNetworkEvents>(event: E, listener: LoopbackNetworkEvents[E]): () => void
  /** The relay's copy of a room's outer doc (`hub` layout), for assertions; else `undefined`. */
  relayDoc(roomId: string): Y.Doc | undefined
  /** Close every transport, drop everything in flight and release the relay's awareness timers. */
  destroy(): void
}

/** Thrown on misuse of the loopback network (bad options, foreign transports, use after close). */
export class LoopbackError extends ContextSyncError {
  override readonly name = 'LoopbackError'
  /** `code`: `invalid-argument` (misuse), `config` (options that make no sense) or `closed` (use after close). */
  constructor(message: string, code: 'invalid-argument' | 'config' | 'closed' = 'invalid-argument') {
    super(code, message)
  }
}
