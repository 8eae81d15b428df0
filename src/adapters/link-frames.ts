/**
 * Link packets (WIRE.md "Link frames"): one channel message each, at most the channel's MTU. A
 * link message (an OPEN, a y-protocols frame for a room, …) is cut into data packets — a *start*
 * carrying the message's total length, then *continuations* — each numbered with an 8-bit
 * sequence number that runs across messages, so the receiver notices a lost, repeated or
 * overtaking packet. Two control packets carry the handshake (`HELLO`) and flow control,
 * keepalive and resync requests (`STATE`); they are never fragmented and never need credit.
 *
 * ```
 * byte 0: version (high nibble, 1) · kind (low nibble)
 *   kind 0 START:    u8 seq · varuint totalLength · payload…
 *   kind 1 CONT:     u8 seq · payload…
 *   kind 2 HELLO:    u8 role (0 initiator, 1 responder) · u8 flags (1: got yours)
 *                    · varuint maxMessageBytes · u8 nextSeq · u8 creditLimit
 *   kind 3 STATE:    u8 nextSeq · u8 ack · u8 creditLimit
 *                    · u8 flags (1: reply wanted, 2: resync, 4: retransmit from ack)
 *   kind 4 START and kind 5 CONT of the priority lane: as kinds 0 and 1
 * ```
 *
 * Two lanes share the one sequence (and so credit, acks and go-back-N): a small message in the
 * priority lane (presence, at most {@link PRIORITY_LANE_MAX_BYTES}) may start while a large one in
 * the bulk lane is half sent, and its packets go between the large one's. Each lane is
 * reassembled on its own.
 *
 * This module only encodes and parses packets and reassembles messages; what the sequence and
 * credit numbers mean for sending lives in `link-flow.ts`.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { LinkError } from './link-errors.js'

/** Version nibble of every packet. */
export const LINK_VERSION = 1
/** Smallest MTU a link accepts: BLE's default ATT MTU of 23 leaves 20 bytes of payload. */
export const MIN_MTU = 20
/** Largest MTU a link accepts (a WebSocket or L2CAP channel may carry more than BLE's 512). */
export const MAX_MTU = 65_536
/** Bytes of a data packet's header (kind byte + sequence number). */
export const DATA_HEADER_BYTES = 2

/** Packet kinds (low nibble of byte 0). */
export const PacketKind = { Start: 0, Cont: 1, Hello: 2, State: 3, PriorityStart: 4, PriorityCont: 5 } as const

/**
 * Largest message the priority lane carries; larger ones go in the bulk lane. The reassembly
 * buffer holds at most `maxMessageBytes` in the bulk lane plus this much in the priority lane.
 */
export const PRIORITY_LANE_MAX_BYTES = 4096

/** Flags of a `STATE` packet. */
export const StateFlag = { ReplyWanted: 1, Resync: 2, Retransmit: 4 } as const

/** Which end of a channel an endpoint is: it decides who wins when both open the same room. */
export type LinkRole = 'initiator' | 'responder'

/** A parsed packet. */
export type LinkPacket =
  | { kind: 'start'; seq: number; total: number; payload: Uint8Array; priority?: boolean }
  | { kind: 'cont'; seq: number; payload: Uint8Array; priority?: boolean }
  | { kind: 'hello'; role: LinkRole; gotYours: boolean; maxMessageBytes: number; nextSeq: number; creditLimit: number }
  | { kind: 'state'; nextSeq: number; ack: number; creditLimit: number; replyWanted: boolean; resync: boolean; retransmit: boolean }

const header = (kind: number): number => (LINK_VERSION << 4) | kind

/** Encode a `HELLO` packet. */
export function encodeHello(hello: Omit<Extract<LinkPacket, { kind: 'hello' }>, 'kind'>): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8(enc, header(PacketKind.Hello))
  encoding.writeUint8(enc, hello.role === 'initiator' ? 0 : 1)
  encoding.writeUint8(enc, hello.gotYours ? 1 : 0)
  encoding.writeVarUint(enc, hello.maxMessageBytes)
  encoding.writeUint8(enc, hello.nextSeq & 0xff)
  encoding.writeUint8(enc, hello.creditLimit & 0xff)
  return encoding.toUint8Array(enc)
}

/** Encode a `STATE` packet. */
export function encodeState(state: Omit<Extract<LinkPacket, { kind: 'state' }>, 'kind'>): Uint8Array {
  return Uint8Array.of(
    header(PacketKind.State),
    state.nextSeq & 0xff,
    state.ack & 0xff,
    state.creditLimit & 0xff,
    (state.replyWanted ? StateFlag.ReplyWanted : 0) | (state.resync ? StateFlag.Resync : 0) | (state.retransmit ? StateFlag.Retransmit : 0),
  )
}

/**
 * Parse one channel message. Throws a {@link LinkError} (`malformed`, `oversized`) for anything
 * that is not exactly one well-formed packet of at most `mtu` bytes; the caller reports and drops.
 */
export function parsePacket(bytes: Uint8Array, mtu: number): LinkPacket {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new LinkError('malformed', 'empty packet')
  if (bytes.length > mtu) throw new LinkError('oversized', `packet of ${bytes.length} bytes exceeds the MTU of ${mtu}`)
  const version = bytes[0]! >> 4
  const kind = bytes[0]! & 0x0f
  if (version !== LINK_VERSION) throw new LinkError('malformed', `packet version ${version}`)
  try {
    const dec = decoding.createDecoder(bytes)
    decoding.readUint8(dec)
    switch (kind) {
      case PacketKind.Start:
      case PacketKind.PriorityStart: {
        const seq = decoding.readUint8(dec)
        const total = decoding.readVarUint(dec)
        const payload = bytes.subarray(dec.pos)
        if (total === 0 || payload.length === 0 || payload.length > total) throw new LinkError('malformed', 'start packet length')
        return kind === PacketKind.Start ? { kind: 'start', seq, total, payload } : { kind: 'start', seq, total, payload, priority: true }
      }
      case PacketKind.Cont:
      case PacketKind.PriorityCont: {
        const seq = decoding.readUint8(dec)
        const payload = bytes.subarray(dec.pos)
        if (payload.length === 0) throw new LinkError('malformed', 'empty continuation')
        return kind === PacketKind.Cont ? { kind: 'cont', seq, payload } : { kind: 'cont', seq, payload, priority: true }
      }
      case PacketKind.Hello: {
        const role = decoding.readUint8(dec)
        const flags = decoding.readUint8(dec)
        const maxMessageBytes = decoding.readVarUint(dec)
        const nextSeq = decoding.readUint8(dec)
        const creditLimit = decoding.readUint8(dec)
        if (role > 1 || flags > 1 || decoding.hasContent(dec)) throw new LinkError('malformed', 'hello packet')
        return { kind: 'hello', role: role === 0 ? 'initiator' : 'responder', gotYours: flags === 1, maxMessageBytes, nextSeq, creditLimit }
      }
      case PacketKind.State: {
        const nextSeq = decoding.readUint8(dec)
        const ack = decoding.readUint8(dec)
        const creditLimit = decoding.readUint8(dec)
        const flags = decoding.readUint8(dec)
        if (flags > 7 || decoding.hasContent(dec)) throw new LinkError('malformed', 'state packet')
        return {
          kind: 'state',
          nextSeq,
          ack,
          creditLimit,
          replyWanted: (flags & StateFlag.ReplyWanted) !== 0,
          resync: (flags & StateFlag.Resync) !== 0,
          retransmit: (flags & StateFlag.Retransmit) !== 0,
        }
      }
      default:
        throw new LinkError('malformed', `packet kind ${kind}`)
    }
  } catch (error) {
    if (error instanceof LinkError) throw error
    throw new LinkError('malformed', 'truncated packet')
  }
}

/** Check a channel's MTU; throws a {@link LinkError} (`invalid-argument`) when unusable. */
export function checkMtu(mtu: number): number {
  if (!Number.isInteger(mtu) || mtu < MIN_MTU || mtu > MAX_MTU) {
    throw new LinkError('invalid-argument', `channel MTU must be an integer in ${MIN_MTU}..${MAX_MTU}, got ${mtu}`)
  }
  return mtu
}

/**
 * Cuts one message into data packets, lazily: a 1 MiB message on a 20-byte MTU is ~58 000
 * packets, so they are produced one at a time as credit allows instead of all at once.
 */
export class Fragmenter {
  private offset = 0

  constructor(
    private readonly message: Uint8Array,
    private readonly mtu: number,
    /** Cut into the priority lane's packets (the message must fit {@link PRIORITY_LANE_MAX_BYTES}). */
    readonly priority = false,
  ) {
    if (priority && message.length > PRIORITY_LANE_MAX_BYTES) {
      throw new LinkError('invalid-argument', `a priority message holds at most ${PRIORITY_LANE_MAX_BYTES} bytes, got ${message.length}`)
    }
  }

  /** Whether every byte has been put into a packet. */
  get done(): boolean {
    return this.offset >= this.message.length
  }

  /** The next packet, numbered `seq`. */
  next(seq: number): Uint8Array {
    const first = this.offset === 0
    const enc = encoding.createEncoder()
    const kind = this.priority ? (first ? PacketKind.PriorityStart : PacketKind.PriorityCont) : first ? PacketKind.Start : PacketKind.Cont
    encoding.writeUint8(enc, header(kind))
    encoding.writeUint8(enc, seq & 0xff)
    if (first) encoding.writeVarUint(enc, this.message.length)
    const room = this.mtu - encoding.length(enc)
    const end = Math.min(this.message.length, this.offset + room)
    encoding.writeUint8Array(enc, this.message.subarray(this.offset, end))
    this.offset = end
    return encoding.toUint8Array(enc)
  }
}

/**
 * What {@link Reassembler.accept} made of a data packet: a completed message, a refusal, or
 * neither (a partial message grew). `gap` is set when packets before this one are missing (the
 * caller asks for a retransmission) or a broken message was dropped (the caller asks for a resync).
 */
export interface ReassemblyResult {
  message: Uint8Array | undefined
  error: LinkError | undefined
  gap: boolean
}

const PARTIAL: ReassemblyResult = { message: undefined, error: undefined, gap: false }
const refusal = (error: LinkError, gap: boolean): ReassemblyResult => ({ message: undefined, error, gap })

/** Distance from `a` to `b` going forward modulo 256. */
export function seqAhead(a: number, b: number): number {
  return (b - a) & 0xff
}

/**
 * Puts data packets back together in sequence order, holding at most one partial message per
 * lane — of at most `maxMessageBytes` in the bulk lane and {@link PRIORITY_LANE_MAX_BYTES} in the
 * priority lane (its chunks, not a buffer of the declared size: a peer claiming 16 MiB and sending
 * 20 bytes makes the receiver hold 20 bytes).
 *
 * Sequence rules (one sequence across both lanes): the packet numbered `expected` is consumed.
 * One from the past (within half the sequence space) is a `duplicate` and is dropped without
 * touching anything. One from the future is `out-of-order` — something before it was lost or it
 * overtook: it is dropped too (`gap: true`; the caller asks the sender to go back to `expected`),
 * and the partial messages are kept.
 */
export class Reassembler {
  /** Sequence number of the next packet to consume. */
  expected = 0
  private readonly lanes: readonly [Lane, Lane]
  private peak = 0

  constructor(maxMessageBytes: number) {
    const grew = (): void => void (this.peak = Math.max(this.peak, this.heldBytes))
    this.lanes = [new Lane(maxMessageBytes, grew), new Lane(Math.min(maxMessageBytes, PRIORITY_LANE_MAX_BYTES), grew)]
  }

  /** Bytes of the partial messages held now (both lanes). */
  get heldBytes(): number {
    return this.lanes[0].held + this.lanes[1].held
  }

  /** The most bytes ever held at once. */
  get peakBytes(): number {
    return this.peak
  }

  /** Forget the partial messages (the channel closed mid-message). */
  reset(): void {
    for (const lane of this.lanes) lane.reset()
  }

  /** Take one data packet. */
  accept(packet: Extract<LinkPacket, { kind: 'start' | 'cont' }>): ReassemblyResult {
    const ahead = seqAhead(this.expected, packet.seq)
    if (ahead >= 128) {
      return refusal(new LinkError('duplicate', `packet ${packet.seq} repeats one already consumed (expected ${this.expected})`), false)
    }
    if (ahead > 0) {
      // Go-back-N: the sender retransmits from the expected packet, so this one is dropped and
      // the partial messages kept.
      return refusal(new LinkError('out-of-order', `packet ${packet.seq} arrived while ${this.expected} was expected`), true)
    }
    this.expected = (packet.seq + 1) & 0xff
    return this.lanes[packet.priority ? 1 : 0].consume(packet)
  }
}

/** One lane's partial message. */
class Lane {
  private chunks: Uint8Array[] = []
  held = 0
  private total = 0
  /** Inside an oversized or broken message: its continuations are dropped until the next start. */
  private skipping = false

  constructor(
    private readonly maxMessageBytes: number,
    /** Called when the lane holds more (before a completed message is handed out). */
    private readonly grew: () => void,
  ) {}

  reset(): void {
    this.chunks = []
    this.held = 0
    this.total = 0
    this.skipping = false
  }

  consume(packet: Extract<LinkPacket, { kind: 'start' | 'cont' }>): ReassemblyResult {
    if (packet.kind === 'start') {
      const abandoned = this.held > 0
      this.reset()
      if (packet.total > this.maxMessageBytes) {
        this.skipping = true
        return refusal(new LinkError('oversized', `message of ${packet.total} bytes exceeds the limit of ${this.maxMessageBytes}`), false)
      }
      this.total = packet.total
      const result = this.add(packet.payload)
      if (abandoned) return { ...result, error: new LinkError('malformed', 'a message started before the previous one was complete'), gap: true }
      return result
    }
    if (this.skipping) return PARTIAL
    if (this.total === 0) return refusal(new LinkError('malformed', 'continuation without a start'), false)
    return this.add(packet.payload)
  }

  private add(payload: Uint8Array): ReassemblyResult {
    if (this.held + payload.length > this.total) {
      this.reset()
      this.skipping = true
      return refusal(new LinkError('malformed', 'packet overruns the declared message length'), true)
    }
    // Copy: the channel may reuse its buffer once the listener returns.
    this.chunks.push(payload.slice())
    this.held += payload.length
    this.grew()
    if (this.held < this.total) return PARTIAL
    const message = new Uint8Array(this.total)
    let offset = 0
    for (const chunk of this.chunks) {
      message.set(chunk, offset)
      offset += chunk.length
    }
    this.reset()
    return { message, error: undefined, gap: false }
  }
}
