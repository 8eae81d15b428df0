/**
 * What a tampering relay (`tampering-relay.ts`) offers a test: its options, the room copies with
 * their tamper operations, live connections, captured envelopes and withholding rules.
 *
 * @module
 */
import type * as Y from 'yjs'
import type { EnvelopeInfo, PublicStatement, SealedLogEntry, WipeResult } from './sealed-log-tamper.js'

/** Options of `createTamperingRelay`. */
export interface TamperingRelayOptions {
  /** Interface to bind; default `127.0.0.1`. */
  host?: string
  /** TCP port; default 0 (a free port). */
  port?: number
}

/** An envelope the relay saw in a room. */
export interface CapturedEnvelope extends EnvelopeInfo {
  /**
   * Device id of the connection it first arrived from; `undefined` when the relay put it there
   * itself (an injection) or the connection carried no readable token.
   */
  from: string | undefined
}

/** A live client connection. */
export interface RelayConnectionInfo {
  /** Unique per relay, in connection order. */
  id: number
  roomId: string
  /** Read from the connection's token; `undefined` without one (pairing rooms, stock clients). */
  deviceId: string | undefined
  /** Close it (default 1001 "going away", which clients treat as a plain disconnect and retry). */
  close(code?: number): void
}

/**
 * What to withhold. Without `to`, the rule acts on updates the relay *receives*: they are not
 * applied to its doc (so nobody gets them). With `to`, it acts on what the relay *sends* to that
 * device: its doc is updated as usual, but matching sync frames (updates and sync-step-2 replies)
 * towards that device's connections are held — so the device stays unsynced until released.
 * Every given condition must hold.
 */
export interface WithholdRule {
  /** Only in this room (default: every room). */
  roomId?: string
  /**
   * Only updates that carry at least one envelope this selects (default: every update, with or
   * without envelopes — deletions and public statements included).
   */
  envelope?: (envelope: EnvelopeInfo) => boolean
  /**
   * Only updates from this device: sent by its connections, or (towards `to`) carrying an
   * envelope first received from it.
   */
  from?: string
  /** Hold what the relay sends to this device instead of what it receives. */
  to?: string
}

/** A withholding in force; see {@link TamperingRelay.withhold}. */
export interface Withholding {
  /** The rule as given. */
  readonly rule: Readonly<WithholdRule>
  /** Updates (incoming) or frames (outgoing) held so far. */
  readonly heldCount: number
  /** Every envelope in what is held so far. */
  heldEnvelopes(): EnvelopeInfo[]
  /**
   * Stop withholding and deliver what was held: incoming updates are applied to the room's doc
   * (and so reach everyone), outgoing frames are sent to their connections if still open.
   */
  release(): void
  /** Stop withholding and drop what was held (nothing of it was applied or sent). */
  discard(): void
}

/** The server's copy of one room with the tamper operations bound to it. */
export interface TamperRoom {
  readonly roomId: string
  /** The server's outer doc (a fresh one after {@link TamperingRelay.forgetRoom}). */
  readonly doc: Y.Doc
  /** Every sealed-log entry with its parsed header. */
  entries(): SealedLogEntry[]
  /** Delete the entries `match` selects. */
  deleteEntries(match: (entry: SealedLogEntry) => boolean): SealedLogEntry[]
  /** Delete entries `[start, end)`. */
  deleteRange(start: number, end?: number): SealedLogEntry[]
  /** Keep the first `length` entries. */
  truncate(length: number): SealedLogEntry[]
  /** Delete every entry and every public statement. */
  wipe(): WipeResult
  /** Insert bytes at `at` (default: the end). */
  inject(entries: readonly Uint8Array[], at?: number): void
  /** Append captured (or any) envelope bytes again. */
  replay(entries: readonly Uint8Array[]): void
  /** Re-insert every entry in a seeded random order; returns the permutation. */
  reorder(seed: number): number[]
  /** Move the entries `match` selects to the end of another room's (or any outer doc's) log. */
  moveTo(target: TamperRoom | Y.Doc, match: (entry: SealedLogEntry) => boolean): SealedLogEntry[]
  /** Public statements (registry room). */
  publicStatements(): PublicStatement[]
  /** Delete the public statements `match` selects. */
  deletePublicStatements(match: (statement: PublicStatement) => boolean): PublicStatement[]
  /** Write one public statement. */
  setPublicStatement(key: string, bytes: Uint8Array): void
  /** Every envelope the relay ever saw in this room, first-seen order. */
  captured(): CapturedEnvelope[]
  /** Live connections of this room. */
  connections(): RelayConnectionInfo[]
}

/** A running tampering relay. */
export interface TamperingRelay {
  /** `ws://host:port`; clients connect to `${url}/${roomId}`. */
  readonly url: string
  readonly port: number
  /** A room's server copy and tamper operations (the room is created empty if new). */
  room(roomId: string): TamperRoom
  /** Ids of the rooms the relay currently holds a doc for. */
  rooms(): string[]
  /** Every envelope the relay ever saw in a room, first-seen order. */
  captured(roomId: string): CapturedEnvelope[]
  /** Start withholding; see {@link WithholdRule}. */
  withhold(rule: WithholdRule): Withholding
  /**
   * Lose a room's storage: close its connections (1001) and drop its doc and awareness. Clients
   * reconnect to an empty room and upload what they hold. The capture is kept.
   */
  forgetRoom(roomId: string): void
  /** Live connections (of one room, or all). */
  connections(roomId?: string): RelayConnectionInfo[]
  /** Close the live connections matching `filter` (default code 1001); returns how many. */
  closeConnections(filter: { roomId?: string; deviceId?: string }, code?: number): number
  /** Stop: terminate every connection, destroy every room, release the port. Idempotent. */
  close(): Promise<void>
}
