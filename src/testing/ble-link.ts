/**
 * A Bluetooth Low Energy link simulator for the link transport (`contextsync/link`): pairs of
 * {@link LinkChannel} endpoints — a central (the phone) and a peripheral (the glasses) — that
 * carry messages the way a GATT characteristic pair does, in virtual time, seeded.
 *
 * The model: each connection has a connection interval (7.5 ms – 4 s in the Bluetooth Core
 * Specification; phones pick 15–45 ms), and at every connection event each side sends up to
 * `packetsPerEvent` queued messages, within an optional throughput cap. A message sent between
 * events waits for the next one; each arrives `latencyMs` after its event (host stack and
 * scheduling delay). Sending fills a TX buffer of `txBufferPackets` (a real stack's queue for
 * write-without-response); `canSend()` turns false when it is full and `onDrain` fires when it
 * has room again; a message sent to a full buffer is lost, as a stack refusing it would lose it.
 *
 * Faults, drawn from a seeded PRNG (`lib0/prng`), so one seed always yields one run: `drop` loses
 * a message, `duplicate` delivers one twice, `reorder` lets one overtake the one before it, and
 * `disconnect` ends the connection at a connection event — possibly in the middle of a
 * fragmented message, and everything in flight is lost. A new connection is {@link
 * BleLinkSimulator.connect}ed by the test, as a host reconnects after a supervision timeout.
 *
 * Peripheral latency (Bluetooth Core Specification v5.3, Vol 6, Part B §4.5.1): the peripheral
 * may skip up to `peripheralLatency` consecutive connection events when it has nothing to send;
 * it must attend the next one. The central cannot wake it: the central's data waits for the next
 * event the peripheral attends — one where the peripheral sends, a forced one, or the event right
 * after one in which the central had more queued than it could send (the MD bit, §4.5.6). With
 * latency 0 the peripheral attends every event. Supervision timeout (§4.5.2): a connection that
 * hears nothing for `supervisionTimeoutMs` is lost — {@link BleLink.outage} takes the peer out of
 * range for a while, and the `disconnect` fault's hosts learn of the loss after the timeout.
 *
 * Typical parameters (what the defaults and the bench use, and where they come from):
 * - Apple, Accessory Design Guidelines for Apple Devices (R20), "Bluetooth Low Energy —
 *   Connection Parameters": interval min ≥ 15 ms in multiples of 15 ms, peripheral latency ≤ 30,
 *   interval max × (latency + 1) ≤ 2 s, supervision timeout 2–6 s and larger than
 *   interval max × (latency + 1) × 3. So 30 ms × (30 + 1) = 930 ms with a 6 s timeout fits.
 * - Android (`BluetoothGatt.requestConnectionPriority`): `CONNECTION_PRIORITY_LOW_POWER` asks for
 *   a 100–125 ms interval with peripheral latency 2; `BALANCED` 30–50 ms with latency 0.
 * - The Core specification's bounds: interval 7.5 ms – 4 s, latency 0–499, supervision timeout
 *   100 ms – 32 s and larger than (1 + latency) × interval × 2.
 *
 * A peripheral's firmware can learn when its radio is about to attend an event (Nordic's
 * SoftDevice calls it *radio notification*); the simulated peripheral channel offers that as
 * `nextRadioEvent`, so a link can put held data on an event the radio attends anyway.
 *
 * A radio power model (`radio-power.ts`) counts, per side, wake-ups, radio-on time and energy;
 * for the peripheral also the empty events it attends (`radioWakeUps`, `idleWakeUps`).
 *
 * @example
 * ```ts
 * const sim = bleLinkSimulator({ seed: 7, mtu: 185, connectionIntervalMs: 30, drop: 0.01 })
 * const hub = linkServer({ auth: 'none', clock: sim.clock })
 * const glasses = linkTransport({ clock: sim.clock, radioWindowMs: 2_000 })
 * const link = sim.connect()
 * hub.accept(link.central)
 * glasses.connect(link.peripheral)
 * glasses.attach(room)
 * await sim.advance(60_000)
 * console.log(link.radio.peripheral.wakeUps)
 * ```
 *
 * @module
 */
import * as prng from 'lib0/prng'
import type { LinkChannel } from '../adapters/link-channel.js'
import { LinkError } from '../adapters/link-errors.js'
import { Emitter } from '../util/emitter.js'
import { NRF52832_LE_1M, RadioMeter, type RadioPowerModel, type RadioStats } from './radio-power.js'
import { VirtualClock } from './virtual-clock.js'

/** Options of {@link bleLinkSimulator}. */
export interface BleLinkOptions {
  /** PRNG seed for faults and connection-event phases. Default `0x5eed`. */
  seed?: number
  /** Channel MTU: the ATT payload (ATT MTU − 3), 20–512. Default 244 (LE Data Length Extension). */
  mtu?: number
  /** Connection interval in ms. Default 30. */
  connectionIntervalMs?: number
  /** Messages each side may send per connection event. Default 4. */
  packetsPerEvent?: number
  /** Cap on each side's payload bytes per second (on top of the per-event limit). Default none. */
  throughputBytesPerSecond?: number
  /** Delay from a connection event to delivery, ms. Default 0. */
  latencyMs?: number
  /** Probability that a message is lost. Default 0. */
  drop?: number
  /** Probability that a message is delivered twice. Default 0. */
  duplicate?: number
  /** Probability that a message overtakes the one before it. Default 0. */
  reorder?: number
  /** Probability per connection event with traffic that the connection drops. Default 0. */
  disconnect?: number
  /** Messages each side's TX buffer holds. Default 32. */
  txBufferPackets?: number
  /** Connection events the peripheral may skip when it has nothing to send (Core: 0–499). Default 0. */
  peripheralLatency?: number
  /**
   * Supervision timeout in ms (Core: 100 ms – 32 s, larger than (1 + latency) × interval × 2): an
   * {@link BleLink.outage} this long loses the connection, and the hosts learn of a `disconnect`
   * fault this long after it. Default 0: hosts learn of a drop at once and outages never drop.
   */
  supervisionTimeoutMs?: number
  /** Power model parameters; defaults {@link NRF52832_LE_1M}. */
  power?: Partial<RadioPowerModel>
}

/** Counters of one simulated connection; a snapshot. */
export interface BleLinkStats {
  /** Messages put on air (duplicates counted once). */
  sent: number
  /** Messages delivered, duplicates included. */
  delivered: number
  dropped: number
  duplicated: number
  reordered: number
  /** Messages refused because the TX buffer was full. */
  overflowed: number
  /** Messages lost because the connection dropped while they were queued or in flight. */
  lost: number
  /** Connection events that carried data. */
  events: number
}

/** One simulated connection between a central and a peripheral. */
export interface BleLink {
  /** The central's end (the phone). */
  readonly central: LinkChannel
  /** The peripheral's end (the glasses). */
  readonly peripheral: LinkChannel
  /** Whether the connection is up. */
  readonly connected: boolean
  /** Counters. */
  readonly stats: BleLinkStats
  /** Radio use of each side. */
  readonly radio: { central: RadioStats; peripheral: RadioStats }
  /** Drop the connection now (both ends see `onClose`). */
  disconnect(): void
  /**
   * Take the devices out of range for `ms`: no connection event gets through. If `ms` reaches the
   * supervision timeout the connection is lost when the timeout expires; otherwise traffic
   * resumes after the outage and nothing is lost.
   */
  outage(ms: number): void
  /**
   * Change the peripheral latency, as a connection parameter update the peripheral asks for (a
   * glasses app dropping latency while an answer streams to a lit screen). Applies 6 connection
   * events later (Core v5.3 Vol 6 Part B §5.1.1: the central's instant is at least 6 events
   * ahead); the procedure's own control packets are not counted.
   */
  setPeripheralLatency(latency: number): void
}

/** Events of a {@link BleLinkSimulator}. */
export interface BleLinkSimulatorEvents {
  /** A connection dropped (by the `disconnect` fault or {@link BleLink.disconnect}). */
  disconnect: (event: { link: BleLink; at: number }) => void
}

/** A set of simulated BLE connections sharing one virtual clock and one seeded PRNG. */
export interface BleLinkSimulator {
  /** The seed; print it when a randomized test fails. */
  readonly seed: number
  /** The virtual clock; pass it to `linkTransport` and `linkServer` as `clock`. */
  readonly clock: VirtualClock
  /** Resolved options. */
  readonly options: Readonly<Required<Omit<BleLinkOptions, 'power'>>> & { power: Readonly<RadioPowerModel> }
  /** A new connection. */
  connect(): BleLink
  /** Every connection made so far. */
  readonly links: readonly BleLink[]
  /** Run the simulation for `ms` virtual milliseconds. */
  advance(ms: number): Promise<void>
  /** Run until nothing is scheduled, or `maxMs` of virtual time passed; resolves whether it went quiet. */
  settle(maxMs?: number): Promise<boolean>
  /** Subscribe to events; returns an unsubscribe function. */
  on<E extends keyof BleLinkSimulatorEvents>(event: E, listener: BleLinkSimulatorEvents[E]): () => void
}

/**
 * Create a BLE link simulator.
 *
 * @example
 * ```ts
 * const sim = bleLinkSimulator({ seed, mtu: 20, drop: 0.02, disconnect: 0.001 })
 * ```
 */
export function bleLinkSimulator(options: BleLinkOptions = {}): BleLinkSimulator {
  const resolved = {
    seed: options.seed ?? 0x5eed,
    mtu: options.mtu ?? 244,
    connectionIntervalMs: options.connectionIntervalMs ?? 30,
    packetsPerEvent: options.packetsPerEvent ?? 4,
    throughputBytesPerSecond: options.throughputBytesPerSecond ?? Number.POSITIVE_INFINITY,
    latencyMs: options.latencyMs ?? 0,
    drop: options.drop ?? 0,
    duplicate: options.duplicate ?? 0,
    reorder: options.reorder ?? 0,
    disconnect: options.disconnect ?? 0,
    txBufferPackets: options.txBufferPackets ?? 32,
    peripheralLatency: options.peripheralLatency ?? 0,
    supervisionTimeoutMs: options.supervisionTimeoutMs ?? 0,
    power: Object.freeze({ ...NRF52832_LE_1M, ...options.power }),
  }
  if (!Number.isInteger(resolved.seed)) throw new LinkError('invalid-argument', `seed must be an integer, got ${resolved.seed}`)
  for (const name of ['drop', 'duplicate', 'reorder', 'disconnect'] as const) {
    const p = resolved[name]
    if (!(p >= 0 && p <= 1)) throw new LinkError('invalid-argument', `${name} must be a probability in [0, 1], got ${p}`)
  }
  if (!(resolved.connectionIntervalMs > 0) || !(resolved.packetsPerEvent >= 1) || !(resolved.txBufferPackets >= 1)) {
    throw new LinkError('invalid-argument', 'connectionIntervalMs, packetsPerEvent and txBufferPackets must be positive')
  }
  const checkLatency = (latency: number): void => {
    if (!Number.isInteger(latency) || latency < 0 || latency > 499) {
      throw new LinkError('invalid-argument', `peripheralLatency must be an integer in 0..499, got ${latency}`)
    }
    const supervision = resolved.supervisionTimeoutMs
    if (!(supervision >= 0) || (supervision > 0 && supervision <= (1 + latency) * resolved.connectionIntervalMs * 2)) {
      throw new LinkError(
        'invalid-argument',
        `supervisionTimeoutMs must be 0 or larger than (1 + peripheralLatency) × connectionIntervalMs × 2, got ${supervision}`,
      )
    }
  }
  checkLatency(resolved.peripheralLatency)
  const clock = new VirtualClock()
  const random = prng.create(resolved.seed)
  const events = new Emitter<BleLinkSimulatorEvents>()
  const links: BleLink[] = []
  const chance = (p: number): boolean => p > 0 && prng.real53(random) < p

  const connect = (): BleLink => {
    const meters = { central: new RadioMeter(resolved.power), peripheral: new RadioMeter(resolved.power) }
    const stats: BleLinkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0, reordered: 0, overflowed: 0, lost: 0, events: 0 }
    const phase = prng.real53(random) * resolved.connectionIntervalMs
    let up = true
    let latency = resolved.peripheralLatency
    let eventTimer: unknown
    /** Index of the connection event the timer is set for (event k is at phase + k × interval). */
    let eventIndex = 0
    let lastEventIndex = -1
    const interval = resolved.connectionIntervalMs
    /** The last event the peripheral attended; it must attend again by lastAttended + latency + 1. */
    let lastAttended = Math.max(-1, Math.ceil((clock.now() - phase) / interval) - 1)
    /** The central had more queued than it sent: the peripheral listens at the next event (MD). */
    let moreData = false
    let outageUntil = Number.NEGATIVE_INFINITY
    /** The peripheral host's one-shot radio-notification listeners. */
    const radioWaiters: Array<() => void> = []
    const ends = [new SimEnd(resolved.mtu, resolved.txBufferPackets), new SimEnd(resolved.mtu, resolved.txBufferPackets)] as const
    const bytesPerEvent = (resolved.throughputBytesPerSecond * resolved.connectionIntervalMs) / 1000

    const timeOf = (index: number): number => phase + index * interval
    /** The first event index at or after now (and after any outage), never one already run. */
    const firstIndex = (): number => {
      const from = Math.max(clock.now(), outageUntil)
      return Math.max(0, lastEventIndex + 1, Math.ceil((from - phase) / interval - 1e-9))
    }
    /** The first event at or after `from` the peripheral must attend although it has nothing to send. */
    const nextForced = (from: number): number => {
      const step = latency + 1
      return lastAttended + Math.max(1, Math.ceil((from - lastAttended) / step)) * step
    }
    /** Count the forced events before `upTo` that passed with no data as idle wake-ups. */
    const catchUpIdle = (upTo: number): void => {
      const step = latency + 1
      const count = Math.floor((upTo - 1 - lastAttended) / step)
      if (count <= 0) return
      meters.peripheral.idle(count)
      lastAttended += count * step
    }

    /** The next event that moves data: the next one if the peripheral will send, else the next it attends. */
    const wantedIndex = (): number | undefined => {
      const [centralEnd, peripheralEnd] = ends
      const first = firstIndex()
      if (peripheralEnd.queue.length > 0 || moreData) return first
      if (centralEnd.queue.length > 0 || radioWaiters.length > 0) return nextForced(first)
      return undefined
    }

    const scheduleEvent = (): void => {
      if (!up) return
      const index = wantedIndex()
      if (index === undefined) return
      if (eventTimer !== undefined) {
        if (index >= eventIndex) return
        clock.clearTimer(eventTimer)
      }
      eventIndex = index
      eventTimer = clock.setTimer(runEvent, Math.max(0, timeOf(index) - clock.now()))
    }

    const takeBurst = (end: SimEnd): Uint8Array[] => {
      const burst: Uint8Array[] = []
      let budget = bytesPerEvent
      while (end.queue.length > 0 && burst.length < resolved.packetsPerEvent && budget >= end.queue[0]!.length) {
        const message = end.queue.shift()!
        budget -= message.length
        burst.push(message)
      }
      // Always let one message through an event, or a tiny cap would stall the link for good.
      if (burst.length === 0 && end.queue.length > 0) burst.push(end.queue.shift()!)
      return burst
    }

    const runEvent = (): void => {
      eventTimer = undefined
      if (!up) return
      const index = eventIndex
      if (clock.now() < outageUntil) {
        scheduleEvent()
        return
      }
      catchUpIdle(index)
      const [centralEnd, peripheralEnd] = ends
      const attends = index === lastAttended + latency + 1 || peripheralEnd.queue.length > 0 || moreData
      if (!attends) {
        scheduleEvent()
        return
      }
      lastEventIndex = index
      lastAttended = index
      // Radio notification: just before the event, the peripheral's host may queue data to ride it.
      for (const waiter of radioWaiters.splice(0)) waiter()
      const fromCentral = takeBurst(centralEnd)
      const fromPeripheral = takeBurst(peripheralEnd)
      moreData = centralEnd.queue.length > 0
      if (fromCentral.length + fromPeripheral.length === 0) {
        meters.peripheral.idle(1)
        scheduleEvent()
        return
      }
      stats.events++
      // A drop can hit in the middle of the event: the packets before it made it, the rest did not.
      const cutAt = chance(resolved.disconnect) ? prng.uint32(random, 0, fromCentral.length + fromPeripheral.length) : -1
      const deliveredC = cutAt < 0 ? fromCentral : fromCentral.slice(0, Math.min(cutAt, fromCentral.length))
      const deliveredP = cutAt < 0 ? fromPeripheral : fromPeripheral.slice(0, Math.max(0, cutAt - fromCentral.length))
      meters.central.event(fromCentral.map((m) => m.length), deliveredP.map((m) => m.length))
      meters.peripheral.event(fromPeripheral.map((m) => m.length), deliveredC.map((m) => m.length))
      deliver(deliveredC, peripheralEnd)
      deliver(deliveredP, centralEnd)
      stats.lost += fromCentral.length - deliveredC.length + fromPeripheral.length - deliveredP.length
      for (const end of ends) end.maybeDrain(clock)
      if (cutAt >= 0) {
        // The hosts learn of it when the supervision timeout expires (at once without one).
        drop(resolved.supervisionTimeoutMs)
        return
      }
      scheduleEvent()
    }

    const deliver = (burst: Uint8Array[], to: SimEnd): void => {
      const order: Uint8Array[] = []
      for (const message of burst) {
        stats.sent++
        if (chance(resolved.drop)) {
          stats.dropped++
          continue
        }
        order.push(message)
        if (chance(resolved.duplicate)) {
          stats.duplicated++
          order.push(message)
        }
      }
      for (let i = 1; i < order.length; i++) {
        if (chance(resolved.reorder)) {
          stats.reordered++
          ;[order[i - 1], order[i]] = [order[i]!, order[i - 1]!]
        }
      }
      clock.setTimer(() => {
        for (const message of order) {
          if (!up) {
            stats.lost++
            continue
          }
          stats.delivered++
          to.receive(message)
        }
      }, resolved.latencyMs)
    }

    const drop = (notifyAfterMs = 0): void => {
      if (!up) return
      catchUpIdle(Math.ceil((clock.now() - phase) / interval - 1e-9))
      up = false
      radioWaiters.length = 0
      if (eventTimer !== undefined) clock.clearTimer(eventTimer)
      for (const end of ends) {
        stats.lost += end.queue.length
        end.queue.length = 0
      }
      // Both hosts learn of it asynchronously (after the supervision timeout for a lost connection).
      clock.setTimer(() => {
        for (const end of ends) end.closed()
        events.emit('disconnect', { link, at: clock.now() })
      }, notifyAfterMs)
    }

    const setPeripheralLatency = (value: number): void => {
      checkLatency(value)
      if (!up) return
      // The new parameters apply at an instant the central picks at least 6 events ahead
      // (Core v5.3 Vol 6 Part B §5.1.1); the events before it follow the old latency.
      clock.setTimer(() => {
        if (!up) return
        catchUpIdle(Math.ceil((clock.now() - phase) / interval - 1e-9))
        latency = value
        // A pending event may now be further than the peripheral's next forced one.
        if (eventTimer !== undefined) {
          clock.clearTimer(eventTimer)
          eventTimer = undefined
        }
        scheduleEvent()
      }, 6 * interval)
    }

    const outage = (ms: number): void => {
      if (!(ms >= 0)) throw new LinkError('invalid-argument', `outage must be >= 0 ms, got ${ms}`)
      if (!up) return
      outageUntil = Math.max(outageUntil, clock.now() + ms)
      const timeout = resolved.supervisionTimeoutMs
      if (timeout > 0 && ms >= timeout) {
        // Nothing heard for the supervision timeout: the link layer gives the connection up.
        clock.setTimer(() => drop(0), timeout)
      }
    }

    const channelOf = (end: SimEnd, peripheral: boolean): LinkChannel => ({
      mtu: resolved.mtu,
      send(bytes) {
        if (!up) return
        if (!(bytes instanceof Uint8Array) || bytes.length > resolved.mtu) {
          throw new LinkError('oversized', `message of ${bytes.length} bytes exceeds the simulated MTU ${resolved.mtu}`)
        }
        if (end.queue.length >= resolved.txBufferPackets) {
          stats.overflowed++
          end.wantsDrain = true
          return
        }
        end.queue.push(bytes.slice())
        scheduleEvent()
      },
      onMessage(listener) {
        end.messageListener = listener
      },
      onClose(listener) {
        end.closeListener = listener
      },
      canSend() {
        const ok = up && end.queue.length < resolved.txBufferPackets
        if (!ok) end.wantsDrain = true
        return ok
      },
      onDrain(listener) {
        end.drainListener = listener
      },
      close() {
        drop()
      },
      ...(peripheral
        ? {
            nextRadioEvent(listener: () => void) {
              if (!up) return
              radioWaiters.push(listener)
              scheduleEvent()
            },
            requestPeripheralLatency(latency: number) {
              setPeripheralLatency(latency)
            },
          }
        : {}),
    })

    const link: BleLink = {
      central: channelOf(ends[0], false),
      peripheral: channelOf(ends[1], true),
      get connected() {
        return up
      },
      get stats() {
        return { ...stats }
      },
      get radio() {
        // Forced events that passed with nothing to say, up to now (not the one due now: it may carry data).
        if (up) catchUpIdle(Math.ceil((clock.now() - phase) / interval - 1e-9))
        return { central: meters.central.snapshot, peripheral: meters.peripheral.snapshot }
      },
      disconnect: () => drop(),
      outage,
      setPeripheralLatency,
    }
    links.push(link)
    return link
  }

  return {
    seed: resolved.seed,
    clock,
    options: resolved,
    connect,
    get links() {
      return [...links]
    },
    advance: (ms) => clock.advance(ms),
    settle: (maxMs) => clock.settle(maxMs),
    on: (event, listener) => events.on(event, listener),
  }
}

/** One side of a simulated connection: its TX queue and the host's listeners. */
class SimEnd {
  readonly queue: Uint8Array[] = []
  messageListener: ((bytes: Uint8Array) => void) | undefined
  closeListener: (() => void) | undefined
  drainListener: (() => void) | undefined
  wantsDrain = false
  private isClosed = false

  constructor(
    readonly mtu: number,
    readonly capacity: number,
  ) {}

  receive(bytes: Uint8Array): void {
    if (this.isClosed) return
    this.messageListener?.(bytes)
  }

  maybeDrain(clock: VirtualClock): void {
    if (!this.wantsDrain || this.queue.length >= this.capacity) return
    this.wantsDrain = false
    clock.setTimer(() => this.drainListener?.(), 0)
  }

  closed(): void {
    if (this.isClosed) return
    this.isClosed = true
    this.closeListener?.()
  }
}
