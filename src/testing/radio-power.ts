/**
 * A radio power model for the BLE link simulator: counts radio wake-ups and radio-on time per
 * device, and turns them into energy with a cost per wake-up and per byte on air.
 *
 * Two counts of wake-ups. `wakeUps`: connection events in which the device sent or received link
 * data — what the sync protocol puts on the radio. `radioWakeUps`: every connection event the
 * device's radio attends, the empty ones too — the way the radio actually wakes. With peripheral
 * latency (Core v5.3 Vol 6 Part B §4.5.1) a peripheral with nothing to send sleeps through up to
 * N events but must attend the next one (`idleWakeUps` counts those it attends with no data); the
 * central's data waits for an event the peripheral attends, so data that arrives at one rides a
 * wake-up the radio makes anyway. The simulator reports the empty events of the peripheral only:
 * a phone (the central) attends every event and serves other links, so per-link idle counts for
 * it would mean nothing.
 *
 * Radio-on time of an event: a ramp-up, then for each packet exchange the central's packet, the
 * inter-frame space, the peripheral's packet (an empty PDU when it has nothing to say) and another
 * inter-frame space — the device listens for what it does not send.
 *
 * Parameters and their sources (defaults; every one can be overridden):
 * - `txMilliAmps` 5.3, `rxMilliAmps` 5.4: nRF52832 Product Specification v1.4, radio current
 *   consumption with the DC/DC regulator at 3 V — TX at 0 dBm, RX at 1 Mbit/s BLE.
 * - `supplyVolts` 3.0: the supply those figures are given at.
 * - `microsPerByte` 8: LE 1M PHY, 1 Mbit/s (Bluetooth Core Specification v5.3, Vol 6, Part A §3).
 * - `airOverheadBytes` 21: per data packet on air, preamble 1 + access address 4 + LL header 2 +
 *   MIC 4 (encrypted link) + CRC 3 (Core v5.3 Vol 6 Part B §2.1) plus L2CAP header 4 and ATT
 *   opcode + handle 3 (Vol 3 Parts A and F) around the channel payload.
 * - `emptyPduBytes` 10: an empty LL PDU — preamble, access address, header, CRC (no MIC).
 * - `ifsMicros` 150: T_IFS, the inter-frame space (Core v5.3 Vol 6 Part B §4.1.1).
 * - `rampMicros` 140: radio TX/RX enable time in the nRF52832's default ramp-up mode (Product
 *   Specification v1.4, radio timing tTXEN/tRXEN).
 * - `wakeUpMicroJoules` 15: the fixed cost of waking for an event — crystal start-up (0.36 ms
 *   typical for the nRF52832's HFXO), ramp-up and the stack's processing. An estimate of the
 *   order Nordic's Online Power Profiler shows for an empty nRF52 connection event (a few µC at
 *   3 V), not a measurement; the bench reports wake-ups and radio-on time beside it so the
 *   comparison does not hinge on this one number.
 *
 * @module
 */

/** Parameters of the power model (see the module docs for their sources). */
export interface RadioPowerModel {
  supplyVolts: number
  txMilliAmps: number
  rxMilliAmps: number
  microsPerByte: number
  airOverheadBytes: number
  emptyPduBytes: number
  ifsMicros: number
  rampMicros: number
  wakeUpMicroJoules: number
}

/** The defaults: an nRF52832 on LE 1M with an encrypted link. */
export const NRF52832_LE_1M: Readonly<RadioPowerModel> = Object.freeze({
  supplyVolts: 3.0,
  txMilliAmps: 5.3,
  rxMilliAmps: 5.4,
  microsPerByte: 8,
  airOverheadBytes: 21,
  emptyPduBytes: 10,
  ifsMicros: 150,
  rampMicros: 140,
  wakeUpMicroJoules: 15,
})

/** What one device's radio did; a snapshot. */
export interface RadioStats {
  /** Connection events this device woke for because link data moved. */
  wakeUps: number
  /**
   * Every connection event the radio attended, with data or without (peripheral only; for the
   * central it equals `wakeUps`). Always `wakeUps + idleWakeUps`.
   */
  radioWakeUps: number
  /** Connection events attended with no link data (peripheral latency's forced listens). */
  idleWakeUps: number
  /** Of those, events in which this device only received (the peer had something to send). */
  receiveOnlyWakeUps: number
  /** Microseconds the radio was on (ramp-up, packets, inter-frame spaces). */
  radioOnMicros: number
  /** Link payload bytes sent and received (channel messages, before on-air overhead). */
  bytesSent: number
  bytesReceived: number
  /** Data packets sent and received. */
  packetsSent: number
  packetsReceived: number
  /** Energy by the model, in microjoules. */
  energyMicroJoules: number
}

/** Accumulates {@link RadioStats} for one device. */
export class RadioMeter {
  private readonly stats: RadioStats = {
    wakeUps: 0,
    radioWakeUps: 0,
    idleWakeUps: 0,
    receiveOnlyWakeUps: 0,
    radioOnMicros: 0,
    bytesSent: 0,
    bytesReceived: 0,
    packetsSent: 0,
    packetsReceived: 0,
    energyMicroJoules: 0,
  }

  constructor(private readonly model: RadioPowerModel) {}

  /** A snapshot. */
  get snapshot(): RadioStats {
    return { ...this.stats }
  }

  /**
   * One connection event: the payload sizes this device sent and the ones it received. Does
   * nothing for an event without data (see the module docs).
   */
  event(sent: readonly number[], received: readonly number[]): void {
    if (sent.length === 0 && received.length === 0) return
    const m = this.model
    const exchanges = Math.max(sent.length, received.length)
    const air = (payload: number | undefined): number =>
      (payload === undefined ? m.emptyPduBytes : payload + m.airOverheadBytes) * m.microsPerByte
    let txMicros = 0
    let rxMicros = m.ifsMicros * 2 * exchanges
    for (let i = 0; i < exchanges; i++) {
      txMicros += air(sent[i])
      rxMicros += air(received[i])
    }
    const onMicros = m.rampMicros + txMicros + rxMicros
    const s = this.stats
    s.wakeUps++
    s.radioWakeUps++
    if (sent.length === 0) s.receiveOnlyWakeUps++
    s.radioOnMicros += onMicros
    s.packetsSent += sent.length
    s.packetsReceived += received.length
    for (const size of sent) s.bytesSent += size
    for (const size of received) s.bytesReceived += size
    // mA × V × µs = nJ; ÷ 1000 → µJ.
    s.energyMicroJoules +=
      m.wakeUpMicroJoules + (m.txMilliAmps * m.supplyVolts * txMicros + m.rxMilliAmps * m.supplyVolts * (rxMicros + m.rampMicros)) / 1000
  }

  /**
   * `count` connection events attended with nothing to say either way: the radio ramps up, hears
   * the central's empty PDU and answers with its own.
   */
  idle(count: number): void {
    if (count <= 0) return
    const m = this.model
    const txMicros = m.emptyPduBytes * m.microsPerByte
    const rxMicros = m.emptyPduBytes * m.microsPerByte + m.ifsMicros * 2
    const s = this.stats
    s.idleWakeUps += count
    s.radioWakeUps += count
    s.radioOnMicros += count * (m.rampMicros + txMicros + rxMicros)
    s.energyMicroJoules +=
      count * (m.wakeUpMicroJoules + (m.txMilliAmps * m.supplyVolts * txMicros + m.rxMilliAmps * m.supplyVolts * (rxMicros + m.rampMicros)) / 1000)
  }
}
