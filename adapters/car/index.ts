/**
 * `contextsync/car` — the head unit (Node): {@link openCar} runs driver profiles (one account's
 * member device each, on its own SQLite store with `synchronous=FULL` under `dataDir`, its own
 * keys and its own relay connection), restricted scopes (`personal` and `location` unless the
 * owner allows more), an intermittent-network link with jittered backoff and a visible outbox,
 * and the driving context: presence `driving`, handoffs accepted by policy, and a glanceable read
 * of the active session (ARCHITECTURE.md "adapters/car", README "Head unit").
 *
 * @example
 * ```ts
 * import { openCar } from 'contextsync/car'
 * const car = await openCar({ dataDir, relayUrl: 'wss://relay.example.com', keys: keystoreProtector })
 * await car.profiles.join({ id: 'alice', invite: code })
 * car.setDriving(true)
 * car.on('synced', () => ui.hideOutbox())
 * ```
 *
 * @module
 */
export { openCar, Car, type CarOptions, type CarEvents, type CarProfiles, type JoinProfileOptions } from './open-car.js'
export { type ProfileInfo } from './profiles.js'
export { type Pending, type PendingScope } from '../../src/facade/outbox.js'
export { DEFAULT_AUTO_ACCEPT_FROM, DEFAULT_GLANCE_CHARS, type DrivingPolicy, type Glance } from './driving.js'
export { CAR_DEFAULT_SCOPES, CAR_GUARDED_SCOPES } from './scopes.js'
export { CAR_MAX_BACKOFF_MS } from './network.js'
