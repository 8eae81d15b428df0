/**
 * One link session: everything that happens on one channel below the rooms — the `HELLO`
 * handshake, fragmentation and reassembly, credit-based flow control, keepalive, gap detection
 * with resync requests, and the radio window that holds outgoing data and sends it in one burst
 * (WIRE.md "Link frames"). What the messages mean is the link node's job (`link-node.ts`).
 *
 * Everything the peer sends is untrusted: a packet that breaks the rules is dropped and reported
 * (`LinkError`), never thrown; the session keeps going. Only a version or role mismatch in the
 * handshake, or a peer gone silent for three keepalive intervals, ends it.
 *
 * @module
 */
import type { LinkChannel, LinkClock } from './link-channel.js'
import { LinkError } from './link-errors.js'
import { ReceiveCredit, SendCredit } from './link-flow.js'
import {
  checkMtu,
  encodeHello,
  encodeState,
  Fragmenter,
  parsePacket,
  PRIORITY_LANE_MAX_BYTES,
  Reassembler,
  seqAhead,
  type LinkPacket,
  type LinkRole,
} from './link-frames.js'

/** Tuning of a session; every field has a default in {@link resolveSessionOptions}. */
export interface LinkSessionOptions {
  /** Hold outgoing data this long and send it in one burst (ms); 0 sends at once. Default 0. */
  radioWindowMs: number
  /**
   * Send held data (and owed acks and credit) at the next radio event the channel reports
   * (`LinkChannel.nextRadioEvent`), the radio window being only the latest moment. Default false.
   */
  rideRadioEvents: boolean
  /** Probe a silent peer after this long (ms), give up after three times it; 0 disables. Default 15 000. */
  keepaliveMs: number
  /** Re-send an unanswered `HELLO` or probe a peer that owes credit after this long (ms). Default 1 000. */
  retryMs: number
  /** Credit window in packets (1–127). Default 32. */
  window: number
  /** Largest message accepted (and the bound of the reassembly buffer), in bytes. Default 16 MiB. */
  maxMessageBytes: number
  /** Timers. Default the real clock. */
  clock: LinkClock
}

/** Counters of one session; a snapshot. */
export interface LinkSessionStats {
  /** Data and control packets sent. */
  packetsSent: number
  /** Bytes of every packet sent. */
  bytesSent: number
  /** Packets received (including refused ones). */
  packetsReceived: number
  /** Bytes of every packet received. */
  bytesReceived: number
  /** Link messages sent and received whole. */
  messagesSent: number
  messagesReceived: number
  /** Flushes that sent at least one packet: how often the radio had to wake for this session. */
  bursts: number
  /** Packets refused (malformed, duplicate, out of order, beyond credit, oversized). */
  refused: number
  /** Resyncs asked of the peer after a broken message. */
  resyncsRequested: number
  /** Data packets sent again after a loss (go-back-N). */
  retransmitted: number
  /** Bytes of the partial message held now, and the most ever held. */
  reassemblyBytes: number
  reassemblyPeakBytes: number
}

/** What a session reports to its owner. */
export interface LinkSessionHandler {
  /** The peer's `HELLO` arrived: the session may carry messages. */
  ready(): void
  /** A whole link message arrived. */
  message(bytes: Uint8Array): void
  /** At each flush: the messages held for the radio window (coalesced updates; awareness in the priority lane). */
  collect(): { bulk: Uint8Array[]; priority: Uint8Array[] }
  /** Data may have been lost in either direction: re-announce rooms and re-run sync step 1. */
  resync(): void
  /** Something the peer sent was refused. */
  error(error: LinkError): void
  /** The channel closed or the session ended. */
  closed(): void
}

/** Fill in defaults and check the values a host passed. */
export function resolveSessionOptions(options: Partial<LinkSessionOptions>, clock: LinkClock): LinkSessionOptions {
  const resolved: LinkSessionOptions = {
    radioWindowMs: options.radioWindowMs ?? 0,
    rideRadioEvents: options.rideRadioEvents ?? false,
    keepaliveMs: options.keepaliveMs ?? 15_000,
    retryMs: options.retryMs ?? 1_000,
    window: options.window ?? 32,
    maxMessageBytes: options.maxMessageBytes ?? 16 * 1024 * 1024,
    clock: options.clock ?? clock,
  }
  const { radioWindowMs, keepaliveMs, retryMs, window, maxMessageBytes } = resolved
  for (const [name, value] of Object.entries({ radioWindowMs, keepaliveMs, maxMessageBytes })) {
    if (!Number.isFinite(value) || value < 0) throw new LinkError('invalid-argument', `${name} must be a number >= 0, got ${value}`)
  }
  if (!(retryMs > 0)) throw new LinkError('invalid-argument', `retryMs must be > 0, got ${retryMs}`)
  if (!Number.isInteger(window) || window < 1 || window > 127) throw new LinkError('invalid-argument', `window must be an integer in 1..127, got ${window}`)
  return resolved
}

/** Flags of an outgoing `STATE`. */
interface StateFlags {
  replyWanted?: boolean
  resync?: boolean
  retransmit?: boolean
}

/** One channel's session. */
export class LinkSession {
  readonly mtu: number
  private readonly sendCredit = new SendCredit()
  private readonly receiveCredit: ReceiveCredit
  private readonly reassembler: Reassembler
  /** Whole messages waiting for credit; the head one may be partly sent. */
  private readonly outbox: Uint8Array[] = []
  private fragmenter: Fragmenter | undefined
  /** The priority lane (WIRE.md "Link frames"): small messages whose packets go before the bulk lane's. */
  private readonly priorityOutbox: Uint8Array[] = []
  private priorityFragmenter: Fragmenter | undefined
  private peerHello = false
  private closedFlag = false
  private flushTimer: unknown
  private retryTimer: unknown
  private keepaliveTimer: unknown
  private lastHeard: number
  private resyncPending = false
  private blockedOnChannel = false
  /** Control packets the full channel did not take yet (sent first at the drain). */
  private owedHello: boolean | undefined
  private owedState: StateFlags | undefined
  /** Packets to send again (go-back-N), before anything new. */
  private resend: Uint8Array[] = []
  /** The expected sequence number a retransmission was last asked for (one request per gap). */
  private nackedFor: number | undefined
  private nackedAt = Number.NEGATIVE_INFINITY
  /** Data consumed since the last `STATE` this end sent (which carries the ack). */
  private ackOwed = false
  /** Fresh credit to grant at the next radio event (only when riding radio events). */
  private grantOwed = false
  /** A `nextRadioEvent` listener is registered and has not fired yet. */
  private radioEventAsked = false
  private readonly counters = {
    packetsSent: 0,
    bytesSent: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    messagesSent: 0,
    messagesReceived: 0,
    bursts: 0,
    refused: 0,
    resyncsRequested: 0,
    retransmitted: 0,
  }

  constructor(
    private readonly channel: LinkChannel,
    readonly role: LinkRole,
    private readonly options: LinkSessionOptions,
    private readonly handler: LinkSessionHandler,
  ) {
    this.mtu = checkMtu(channel.mtu)
    this.receiveCredit = new ReceiveCredit(options.window)
    this.reassembler = new Reassembler(options.maxMessageBytes)
    this.lastHeard = options.clock.now()
    channel.onMessage((bytes) => this.receive(bytes))
    channel.onClose(() => this.end(false))
    channel.onDrain?.(() => {
      if (!this.blockedOnChannel) return
      this.blockedOnChannel = false
      this.drain()
    })
    this.sendHello(false)
    this.armRetry()
    this.armKeepalive()
  }

  /** Whether the session has ended. */
  get closed(): boolean {
    return this.closedFlag
  }

  /** Whether the peer's `HELLO` arrived. */
  get ready(): boolean {
    return this.peerHello
  }

  /** A snapshot of the counters. */
  get stats(): LinkSessionStats {
    return { ...this.counters, reassemblyBytes: this.reassembler.heldBytes, reassemblyPeakBytes: this.reassembler.peakBytes }
  }

  /**
   * Queue a message. `urgent` ones (handshakes, sync steps) flush now; the rest wait for the radio
   * window together with whatever {@link LinkSessionHandler.collect} returns then. `priority`
   * ones (room control, presence) go in the priority lane: their packets go out before any
   * further packet of a large message already under way (messages over
   * `PRIORITY_LANE_MAX_BYTES` stay in the bulk lane).
   */
  send(message: Uint8Array, urgent: boolean, priority = false): void {
    if (this.closedFlag) return
    this.enqueue(message, priority)
    if (urgent) this.flushSoon(0)
    else this.schedule()
  }

  /** Something is held for the radio window: make sure a flush is coming. */
  schedule(): void {
    this.flushSoon(this.options.radioWindowMs)
    if (this.options.radioWindowMs > 0) this.askRadioEvent()
  }

  /** Whether held data and owed control packets wait for the channel's radio events. */
  private get ridesRadio(): boolean {
    return this.options.rideRadioEvents && this.channel.nextRadioEvent !== undefined
  }

  private askRadioEvent(): void {
    if (!this.ridesRadio || this.radioEventAsked || this.closedFlag) return
    this.radioEventAsked = true
    this.channel.nextRadioEvent!(() => {
      this.radioEventAsked = false
      this.onRadioEvent()
    })
  }

  /** The radio is about to attend an event anyway: whatever is held or owed rides it. */
  private onRadioEvent(): void {
    if (this.closedFlag) return
    if (this.flushTimer !== undefined) {
      this.options.clock.clearTimer(this.flushTimer)
      this.flushTimer = undefined
      this.flush()
    }
    if (this.grantOwed || this.ackOwed) {
      this.grantOwed = false
      this.sendState()
    }
  }

  /** End the session and close its channel. */
  close(): void {
    this.end(true)
  }

  // ——— sending

  private enqueue(message: Uint8Array, priority: boolean): void {
    if (priority && message.length <= PRIORITY_LANE_MAX_BYTES) this.priorityOutbox.push(message)
    else this.outbox.push(message)
  }

  private get sending(): boolean {
    return this.fragmenter !== undefined || this.priorityFragmenter !== undefined || this.outbox.length > 0 || this.priorityOutbox.length > 0
  }

  private flushSoon(delay: number): void {
    if (this.closedFlag) return
    if (this.flushTimer !== undefined) {
      if (delay > 0) return
      // An urgent message cuts the window short: the radio wakes now and takes everything along.
      this.options.clock.clearTimer(this.flushTimer)
    }
    // Even "immediate" goes through a zero timer: never send inside the caller's Yjs transaction.
    this.flushTimer = this.options.clock.setTimer(() => {
      this.flushTimer = undefined
      this.flush()
    }, delay)
  }

  private flush(): void {
    if (this.closedFlag) return
    if (this.resyncPending && this.peerHello) {
      this.resyncPending = false
      this.handler.resync()
    }
    const held = this.handler.collect()
    for (const message of held.priority) this.enqueue(message, true)
    for (const message of held.bulk) this.enqueue(message, false)
    const before = this.counters.packetsSent
    this.drain()
    if (this.counters.packetsSent > before) {
      this.counters.bursts++
      // The radio is on anyway: take the owed ack along.
      if (this.ackOwed) this.sendState()
    }
  }

  /** Send owed control packets, retransmissions, then new data packets, while credit and the channel allow. */
  private drain(): void {
    if (this.owedHello !== undefined || this.owedState !== undefined) {
      if (this.channel.canSend && !this.channel.canSend()) {
        this.blockedOnChannel = true
        return
      }
      const hello = this.owedHello
      const state = this.owedState
      this.owedHello = this.owedState = undefined
      if (hello !== undefined) this.sendHello(hello)
      if (state !== undefined) this.sendState(state)
    }
    while (!this.closedFlag && this.resend.length > 0) {
      if (this.channel.canSend && !this.channel.canSend()) {
        this.blockedOnChannel = true
        return
      }
      this.counters.retransmitted++
      this.emit(this.resend.shift()!)
    }
    while (!this.closedFlag && this.peerHello && this.sending) {
      if (!this.sendCredit.available) {
        this.armRetry()
        return
      }
      if (this.channel.canSend && !this.channel.canSend()) {
        this.blockedOnChannel = true
        return
      }
      // The priority lane first: a presence frame waits for no more of a large sync than the
      // packets already handed to the channel.
      const priority = this.priorityFragmenter !== undefined || this.priorityOutbox.length > 0
      let fragmenter = priority ? this.priorityFragmenter : this.fragmenter
      if (!fragmenter) {
        fragmenter = new Fragmenter((priority ? this.priorityOutbox : this.outbox).shift()!, this.mtu, priority)
        if (priority) this.priorityFragmenter = fragmenter
        else this.fragmenter = fragmenter
        this.counters.messagesSent++
      }
      const packet = fragmenter.next(this.sendCredit.spend())
      this.sendCredit.record(packet)
      this.emit(packet)
      if (fragmenter.done) {
        if (priority) this.priorityFragmenter = undefined
        else this.fragmenter = undefined
      }
      // Without keepalive, nothing else would notice a lost tail.
      if (this.options.keepaliveMs <= 0) this.armRetry()
    }
  }

  private emit(packet: Uint8Array): void {
    this.counters.packetsSent++
    this.counters.bytesSent += packet.length
    try {
      this.channel.send(packet)
    } catch {
      // A channel failing under us: its close event ends the session; state vectors recover.
    }
  }

  /** Whether the channel takes a control packet now; if not, it is owed until the drain. */
  private controlBlocked(): boolean {
    if (!this.channel.canSend || this.channel.canSend()) return false
    this.blockedOnChannel = true
    return true
  }

  private sendHello(gotYours: boolean): void {
    if (this.controlBlocked()) {
      this.owedHello = (this.owedHello ?? false) || gotYours
      return
    }
    this.emit(
      encodeHello({
        role: this.role,
        gotYours,
        maxMessageBytes: this.options.maxMessageBytes,
        nextSeq: this.sendCredit.next,
        creditLimit: this.receiveCredit.limit,
      }),
    )
  }

  private sendState(flags: StateFlags = {}): void {
    if (this.controlBlocked()) {
      // A STATE is rebuilt when sent, so the owed one carries fresh numbers; flags accumulate.
      const owed = this.owedState ?? {}
      this.owedState = {
        replyWanted: (owed.replyWanted ?? false) || (flags.replyWanted ?? false),
        resync: (owed.resync ?? false) || (flags.resync ?? false),
        retransmit: (owed.retransmit ?? false) || (flags.retransmit ?? false),
      }
      return
    }
    this.emit(
      encodeState({
        nextSeq: this.sendCredit.next,
        ack: this.reassembler.expected,
        creditLimit: this.receiveCredit.limit,
        replyWanted: flags.replyWanted ?? false,
        resync: flags.resync ?? false,
        retransmit: flags.retransmit ?? false,
      }),
    )
    this.ackOwed = false
  }

  // ——— receiving

  private receive(bytes: Uint8Array): void {
    if (this.closedFlag) return
    this.counters.packetsReceived++
    this.counters.bytesReceived += bytes instanceof Uint8Array ? bytes.length : 0
    this.lastHeard = this.options.clock.now()
    let packet
    try {
      packet = parsePacket(bytes, this.mtu)
    } catch (error) {
      this.refuse(error instanceof LinkError ? error : new LinkError('malformed', 'unreadable packet'))
      return
    }
    switch (packet.kind) {
      case 'hello':
        this.onHello(packet.role, packet.gotYours, packet.creditLimit)
        return
      case 'state':
        this.onState(packet)
        return
      default:
        this.onData(packet)
    }
  }

  private onHello(role: LinkRole, gotYours: boolean, creditLimit: number): void {
    if (role === this.role) {
      this.refuse(new LinkError('handshake', `both ends of the channel claim to be the ${role}`))
      this.end(true)
      return
    }
    this.sendCredit.grant(creditLimit)
    if (!gotYours) this.sendHello(true)
    if (this.peerHello) {
      this.drain()
      return
    }
    this.peerHello = true
    this.handler.ready()
    this.flushSoon(0)
  }

  private onState(packet: Extract<LinkPacket, { kind: 'state' }>): void {
    this.sendCredit.ack(packet.ack)
    this.sendCredit.grant(packet.creditLimit)
    if (packet.retransmit) {
      // Go back to the receiver's ack: everything after it is sent again, in order.
      this.resend = this.sendCredit.pending()
    }
    if (packet.resync) this.requestLocalResync()
    const missing = seqAhead(this.reassembler.expected, packet.nextSeq)
    if (missing > 0 && missing < 128) {
      // The peer sent packets we never got (a lost tail): ask for them again.
      this.askRetransmit(new LinkError('out-of-order', `${missing} packet(s) before ${packet.nextSeq} never arrived`), true)
    } else if (packet.replyWanted) this.sendState()
    this.drain()
  }

  private onData(packet: Extract<LinkPacket, { kind: 'start' | 'cont' }>): void {
    const ahead = seqAhead(this.reassembler.expected, packet.seq)
    if (ahead > 0 && ahead < 128 && !this.receiveCredit.covers(packet.seq)) {
      this.refuse(new LinkError('no-credit', `packet ${packet.seq} is beyond the credit limit ${this.receiveCredit.limit}`))
      return
    }
    const result = this.reassembler.accept(packet)
    if (result.error?.reason === 'out-of-order') {
      this.askRetransmit(result.error, false)
      return
    }
    if (result.error) this.refuse(result.error)
    this.ackOwed = true
    if (result.message) {
      this.counters.messagesReceived++
      this.handler.message(result.message)
    }
    if (this.closedFlag) return
    if (result.gap) this.requestResync()
    const limit = this.receiveCredit.regrant(this.reassembler.expected)
    if (limit === undefined) return
    if (this.ridesRadio) {
      // The grant rides the next event the radio attends anyway; the sender still holds credit
      // for the rest of the window meanwhile (link-flow.ts regrants at half of it).
      this.grantOwed = true
      this.askRadioEvent()
    } else this.sendState()
  }

  /**
   * Packets are missing before `expected`: ask the sender to go back (once per gap, or always
   * when the sender asked where we are), and report the refusal once.
   */
  private askRetransmit(error: LinkError, force: boolean): void {
    const expected = this.reassembler.expected
    const now = this.options.clock.now()
    // Once per gap — unless the retransmission itself seems lost (half a retry interval passed).
    if (!force && this.nackedFor === expected && now - this.nackedAt < this.options.retryMs / 2) {
      this.counters.refused++
      return
    }
    this.nackedFor = expected
    this.nackedAt = now
    this.refuse(error)
    this.sendState({ retransmit: true })
  }

  private refuse(error: LinkError): void {
    this.counters.refused++
    this.handler.error(error)
  }

  /** Ask the peer to re-announce everything, and re-announce our side too (both may have lost). */
  private requestResync(): void {
    this.counters.resyncsRequested++
    this.sendState({ resync: true })
    this.requestLocalResync()
  }

  private requestLocalResync(): void {
    this.resyncPending = true
    this.flushSoon(0)
  }

  // ——— timers

  private armRetry(): void {
    if (this.retryTimer !== undefined || this.closedFlag) return
    this.retryTimer = this.options.clock.setTimer(() => {
      this.retryTimer = undefined
      if (this.closedFlag) return
      if (!this.peerHello) {
        this.sendHello(false)
        this.armRetry()
      } else if (
        (this.sending && !this.sendCredit.available) ||
        (this.options.keepaliveMs <= 0 && this.sendCredit.inFlight > 0)
      ) {
        // Credit or acks may be stuck behind a lost grant or lost data: ask the peer where it is.
        this.sendState({ replyWanted: true })
        this.armRetry()
      }
    }, this.options.retryMs)
  }

  private armKeepalive(): void {
    const interval = this.options.keepaliveMs
    if (interval <= 0 || this.closedFlag) return
    this.keepaliveTimer = this.options.clock.setTimer(() => {
      this.keepaliveTimer = undefined
      if (this.closedFlag) return
      const silent = this.options.clock.now() - this.lastHeard
      if (silent >= 3 * interval) {
        this.refuse(new LinkError('timeout', `nothing heard from the peer for ${silent} ms`))
        this.end(true)
        return
      }
      // Acks are lazy: owed ones go out once per interval (or with our next burst), so a sender of
      // small bursts hears from us without waking the radio for an ack after every burst.
      if (silent >= interval) this.sendState({ replyWanted: true })
      else if (this.ackOwed) this.sendState()
      this.armKeepalive()
    }, interval)
  }

  private end(closeChannel: boolean): void {
    if (this.closedFlag) return
    this.closedFlag = true
    const clock = this.options.clock
    for (const timer of [this.flushTimer, this.retryTimer, this.keepaliveTimer]) if (timer !== undefined) clock.clearTimer(timer)
    this.flushTimer = this.retryTimer = this.keepaliveTimer = undefined
    this.outbox.length = 0
    this.priorityOutbox.length = 0
    this.resend = []
    this.fragmenter = undefined
    this.priorityFragmenter = undefined
    this.reassembler.reset()
    if (closeChannel) {
      try {
        this.channel.close?.()
      } catch {
        // Already closed.
      }
    }
    this.handler.closed()
  }
}
