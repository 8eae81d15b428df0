/**
 * The glasses' power profile (ARCHITECTURE.md "adapters/glasses"). Battery is the binding
 * constraint: on battery the sealing window and the radio window are long (a write costs one
 * radio wake-up per window, not one per update), presence is re-sealed slowly, and compaction
 * and recall indexing wait for the charger; on the charger everything is prompt and the deferred
 * work runs. With the screen on (someone is reading an answer) the radio window is shortened.
 *
 * @module
 */
import { ValidationError } from '../../src/index.js'

/** What the host reports about power. */
export interface PowerState {
  /** On the charger. */
  charging: boolean
  /** 0–1. */
  batteryLevel: number
  /** The display is on (someone is looking). */
  screenOn: boolean
}

/** The timings a power state selects. */
export interface PowerProfile {
  /** `'battery'`, `'low-battery'` or `'charging'`. */
  name: 'battery' | 'low-battery' | 'charging'
  /** Sealing window of ordinary writes (ms). */
  flushDelayMs: number
  /** Sealing window of streamed turns (ms). */
  streamFlushDelayMs: number
  /** Radio window of the link (ms). */
  radioWindowMs: number
  /** Presence heartbeat (ms); stays under the 30 s presence timeout of the other devices. */
  presenceHeartbeatMs: number
  /** Compaction and background recall indexing wait for the charger. */
  deferUpkeep: boolean
  /** Send held bursts on connection events the radio attends anyway (`rideRadioEvents`). */
  rideRadioEvents: boolean
  /**
   * BLE peripheral latency the glasses ask the phone for (`LinkChannel.requestPeripheralLatency`):
   * with the screen off the radio attends one event in (latency + 1); with it on, every event,
   * so a streamed answer is not held back. 30 is the most Apple's accessory guidelines allow.
   */
  peripheralLatency: number
}

/** Peripheral latency on battery with the screen off (30 ms × 31 = 930 ms, Apple's limit of 2 s fits). */
export const BATTERY_PERIPHERAL_LATENCY = 30

/** Battery level under which the low-battery profile applies. */
export const LOW_BATTERY_LEVEL = 0.2

/** The profile of a power state. */
export function powerProfile(state: PowerState): PowerProfile {
  if (state.charging) {
    return { name: 'charging', flushDelayMs: 0, streamFlushDelayMs: 20, radioWindowMs: 0, presenceHeartbeatMs: 14_000, deferUpkeep: false, rideRadioEvents: false, peripheralLatency: 0 }
  }
  const low = state.batteryLevel < LOW_BATTERY_LEVEL
  const radioWindowMs = state.screenOn ? (low ? 1_000 : 500) : low ? 8_000 : 4_000
  return {
    name: low ? 'low-battery' : 'battery',
    flushDelayMs: low ? 4_000 : 2_000,
    streamFlushDelayMs: state.screenOn ? 100 : 250,
    radioWindowMs,
    presenceHeartbeatMs: 24_000,
    deferUpkeep: true,
    rideRadioEvents: true,
    peripheralLatency: state.screenOn ? 0 : BATTERY_PERIPHERAL_LATENCY,
  }
}

/** Check what the host passed to `setPowerState`. */
export function requirePowerState(state: unknown): PowerState {
  const s = state as Partial<PowerState> | null
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.charging !== 'boolean' ||
    typeof s.screenOn !== 'boolean' ||
    typeof s.batteryLevel !== 'number' ||
    !(s.batteryLevel >= 0 && s.batteryLevel <= 1)
  ) {
    throw new ValidationError('setPowerState takes { charging: boolean, batteryLevel: 0–1, screenOn: boolean }')
  }
  return { charging: s.charging, batteryLevel: s.batteryLevel, screenOn: s.screenOn }
}
