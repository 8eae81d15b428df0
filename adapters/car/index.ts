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
 * import { plainKeys } from 'contextsync'
 * import { openCar } from 'contextsync/car'
 * // keys: the host's Android Keystore KeyProtector per profile; plainKeys() only in tests.
 * const car = await openCar({ dataDir: './car-data', relayUrl: 'wss://relay.example.com', keys: () => plainKeys() })
 * await car.profiles.join({ id: 'alice', name: 'Alice', invite: process.env.CONTEXTSYNC_INVITE ?? '' })
 * car.setDriving(true)
 * car.on('synced', ({ scopes }) => console.log('outbox empty', scopes))
 * await car.device.memory.remember({ text: 'Parked on level 3', scope: 'location' })
 * console.log(car.pending().count, car.glance()?.text)
 * await car.close()
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
