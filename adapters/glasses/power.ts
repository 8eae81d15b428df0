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
}

/** Battery level under which the low-battery profile applies. */
export const LOW_BATTERY_LEVEL = 0.2

/** The profile of a power state. */
export function powerProfile(state: PowerState): PowerProfile {
  if (state.charging) return { name: 'charging', flushDelayMs: 0, streamFlushDelayMs: 20, radioWindowMs: 0, presenceHeartbeatMs: 14_000, deferUpkeep: false }
  const low = state.batteryLevel < LOW_BATTERY_LEVEL
  const radioWindowMs = state.screenOn ? (low ? 1_000 : 500) : low ? 8_000 : 4_000
  return {
    name: low ? 'low-battery' : 'battery',
    flushDelayMs: low ? 4_000 : 2_000,
    streamFlushDelayMs: state.screenOn ? 100 : 250,
    radioWindowMs,
    presenceHeartbeatMs: 24_000,
    deferUpkeep: true,
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
