/**
 * `contextsync/glasses` — glasses in a browser or webview (IndexedDB): {@link openGlasses} joins
 * the account with the phone's invite, syncs over the Bluetooth link to the phone first and the
 * relay's WebSocket on Wi-Fi only while the link is down (never both for a room), switches a
 * power profile with `setPowerState` (long windows on battery, compaction and indexing on the
 * charger) and holds `personal` and `location` only unless the owner allows more
 * (ARCHITECTURE.md "adapters/glasses", README "Glasses").
 *
 * @example
 * ```ts
 * import { openGlasses } from 'contextsync/glasses'
 * const glasses = await openGlasses({ keys, relayUrl: 'wss://relay.example.com', invite: code })
 * ble.onConnected((channel) => glasses.connectLink(channel))
 * glasses.setPowerState({ charging: false, batteryLevel: 0.6, screenOn: false })
 * ```
 *
 * @module
 */
export { openGlasses, Glasses, type GlassesOptions, type GlassesEvents } from './open-glasses.js'
export { powerProfile, LOW_BATTERY_LEVEL, type PowerProfile, type PowerState } from './power.js'
export { GLASSES_DEFAULT_SCOPES, GLASSES_GUARDED_SCOPES } from './scopes.js'
export type { GlassesPath } from './route.js'
