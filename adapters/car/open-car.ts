/**
 * A head unit (ARCHITECTURE.md "adapters/car"): several driver profiles, each one account's member
 * device on its own SQLite store under `dataDir` with its own keys and its own relay connection;
 * one profile open at a time. Ignition off is a power cut, so every acknowledged write is on disk
 * first: the SQLite adapter runs with `synchronous=FULL` in WAL mode (a write's promise resolves
 * once its transaction is fsynced). Tunnels and garages take the network away: the relay link
 * backs off with jitter, reconnects at once when the host reports connectivity, and the outbox
 * says what waits. A car holds `personal` and `location` only unless the owner explicitly allows
 * more. Temporary access (a rental) ends by itself: the profile is removed when it does.
 *
 * @module
 */
import { existsSync, mkdirSync } from 'node:fs'
import { resolve } from 'node:path'
import {
  AccessEndedError,
  ConfigError,
  ContextSync,
  ValidationError,
  type ContextSync as Device,
  type KeyProtector,
  type SyncOptions,
  type Transport,
} from '../../src/index.js'
import { isKeyProtector } from '../../src/crypto/key-protector.js'
import { sqliteStorage, type SqliteStorage } from '../../src/entries/sqlite.js'
import { Emitter } from '../../src/util/emitter.js'
import { Driving, type DrivingPolicy, type Glance } from './driving.js'
import { carLink, type CarLink } from './network.js'
import { Outbox, type Pending } from '../../src/facade/outbox.js'
import { ProfileIndex, requireProfileId, type ProfileInfo } from './profiles.js'
import { carScopes, refusalReason } from './scopes.js'

/**
 * Options of {@link openCar}.
 *
 * @example
 * ```ts
 * import { plainKeys, type KeyProtector } from 'contextsync'
 * import { openCar, type CarOptions } from 'contextsync/car'
 * // The host's Android Keystore key per profile; plainKeys() stands in for it here.
 * const keystoreKeys = (profileId: string): KeyProtector => plainKeys()
 * const options: CarOptions = {
 *   dataDir: '/data/user/0/com.example.car/files/contextsync',
 *   relayUrl: 'wss://relay.example.com',
 *   keys: keystoreKeys,
 *   allowScopes: ['work'], // the owner allowed it; health and payments stay refused
 *   driving: { autoAcceptFrom: ['phone'], glanceChars: 80 },
 *   maxBackoffTime: 60_000,
 * }
 * const car = await openCar(options)
 * ```
 */
export interface CarOptions {
  /** Folder holding every profile (created owner-only). */
  dataDir: string
  /** The relay, `ws://` or `wss://`. */
  relayUrl?: string
  /**
   * Wraps each profile's key records (required). On a head unit pass a protector backed by the
   * platform keystore — on Android Automotive, a non-extractable AES key in the Android Keystore
   * (ideally StrongBox, bound to the user profile) that the host app exposes through the
   * `KeyProtector` interface (`wrap`/`unwrap` of a record and its label) — one per profile when
   * the host can (a function of the profile id). Tests pass `plainKeys()`.
   */
  keys: KeyProtector | ((profileId: string) => KeyProtector)
  /**
   * Scopes beyond `personal` and `location` the owner explicitly allows on this head unit (e.g.
   * `['work']`, or `['health']` — the car refuses `health` and `payments` otherwise, and says why).
   */
  allowScopes?: readonly string[]
  /** Handoff and glance settings while driving. */
  driving?: DrivingPolicy
  /** Open this profile at once. */
  profile?: string
  sync?: SyncOptions
  /** Longest reconnect delay (ms); default 30 000, jittered. */
  maxBackoffTime?: number
  /** A transport per profile instead of the WebSocket one (a custom link; tests). */
  transport?: (profileId: string) => Transport
}

/**
 * Events of a {@link Car}.
 *
 * @example
 * ```ts
 * car.on('synced', ({ profile, scopes }) => console.log(`${profile}: ${scopes.join(', ')} reached the relay`))
 * car.on('access-ended', ({ profile, until }) => console.log(`${profile}: access ended ${new Date(until).toISOString()}`))
 * car.on('scope-refused', ({ scope, reason }) => console.warn(scope, reason))
 * car.on('profile', ({ profile }) => console.log('open profile:', profile ?? 'none'))
 * ```
 */
export interface CarEvents {
  /** Everything written while out of sync reached the relay. */
  synced: (event: { profile: string; scopes: string[] }) => void
  /** A profile's temporary access ended: its keys and data were wiped and the profile removed. */
  'access-ended': (event: { profile: string; until: number }) => void
  /** The account granted the open profile a scope the car does not hold: left unopened. */
  'scope-refused': (event: { profile: string; scope: string; reason: string }) => void
  /** The open profile changed (`undefined`: none open). */
  profile: (event: { profile: string | undefined }) => void
}

/**
 * Pairing a new profile.
 *
 * @example
 * ```ts
 * const guest = await car.profiles.join({
 *   id: 'guest',
 *   name: 'Guest',
 *   guest: true, // wiped by car.endDrive()
 *   invite: process.env.CONTEXTSYNC_INVITE ?? '', // the code of the phone's devices.invite({ kind: 'car' })
 *   // Show the six digits; resolve to whether the driver says the phone shows the same.
 *   confirmSas: (sas) => {
 *     console.log(`Does the phone show ${sas}?`)
 *     return true
 *   },
 *   timeoutMs: 60_000,
 * })
 * console.log(guest.deviceId)
 * ```
 */
export interface JoinProfileOptions {
  /** Folder-safe id (`alice`, `guest`). */
  id: string
  /** The driver's name, for the head unit's profile list (default the id). */
  name?: string
  /** The invite code from the driver's phone. */
  invite: string
  /** A guest: removed, with everything it held, when the drive ends. */
  guest?: boolean
  /** Show the six digits and return whether the driver says they match the phone's. */
  confirmSas?: (sas: string) => boolean | Promise<boolean>
  timeoutMs?: number
}

/**
 * The profiles of one head unit.
 *
 * @example
 * ```ts
 * for (const p of car.profiles.list()) console.log(p.id, p.name, p.guest ? 'guest' : 'driver', p.active ? '(open)' : '')
 * const bob = await car.profiles.switch('bob')
 * await bob.memory.remember({ text: 'Seat position 4', scope: 'personal' })
 * await car.profiles.remove('alice') // its store, WAL and keys are deleted
 * ```
 */
export interface CarProfiles {
  list(): ProfileInfo[]
  /** Pair a new profile with an invite and open it (the open one, if any, is closed first). */
  join(options: JoinProfileOptions): Promise<Device>
  /** Close the open profile and open `id` (a guest left open is removed). */
  switch(id: string): Promise<Device>
  /** Close (if open) and delete a profile: its store, WAL and keys, and its line in the list. */
  remove(id: string): Promise<void>
}

interface OpenProfile {
  id: string
  guest: boolean
  dev: Device
  storage: SqliteStorage
  link: CarLink
  outbox: Outbox
  driving: Driving
  offs: Array<() => void>
}

/**
 * One head unit: profiles, network state, outbox, driving context.
 *
 * @example
 * ```ts
 * import { plainKeys } from 'contextsync'
 * import { openCar } from 'contextsync/car'
 * const car = await openCar({ dataDir: './car-data', relayUrl: 'wss://relay.example.com', keys: () => plainKeys(), profile: 'alice' })
 * car.setDriving(true)
 * console.log(car.activeProfile, car.pending().count)
 * await car.close()
 * ```
 */
export class Car {
  /** The head unit's profiles. */
  readonly profiles: CarProfiles
  private readonly emitter = new Emitter<CarEvents>()
  private current: OpenProfile | undefined
  private online = true
  private drivingNow = false
  private busy: Promise<unknown> = Promise.resolve()
  private closed = false

  /** @internal use {@link openCar}. */
  constructor(
    readonly dataDir: string,
    private readonly index: ProfileIndex,
    private readonly options: CarOptions,
    private readonly holdOnly: readonly string[],
  ) {
    this.profiles = {
      list: () => this.index.all().map((p) => ({ ...p, active: p.id === this.current?.id })),
      join: (o) => this.serial(() => this.join(o)),
      switch: (id) => this.serial(() => this.switchTo(requireProfileId(id))),
      remove: (id) => this.serial(() => this.remove(requireProfileId(id))),
    }
  }

  /**
   * The open profile's device (memory, sessions, presence…). Throws when none is open.
   *
   * @example
   * ```ts
   * const note = await car.device.memory.remember({ text: 'Parked on level 3', scope: 'location' })
   * console.log(car.device.memory.get(note.id)?.text)
   * ```
   */
  get device(): Device {
    if (!this.current) throw new ConfigError('no profile is open: car.profiles.switch(id) or car.profiles.join({ … })')
    return this.current.dev
  }

  /**
   * Id of the open profile, if any.
   *
   * @example
   * ```ts
   * console.log(car.activeProfile ?? 'no profile open')
   * ```
   */
  get activeProfile(): string | undefined {
    return this.current?.id
  }

  /**
   * The host's view of connectivity. Offline: sockets close and reconnecting stops (writes keep
   * landing on disk); online: every room reconnects now, backoff reset.
   *
   * @example
   * ```ts
   * car.setNetwork({ online: false }) // the host lost connectivity (tunnel, garage): stop retrying
   * car.setNetwork({ online: true }) // it is back: reconnect every room now, not at the next backoff
   * ```
   */
  setNetwork(state: { online: boolean }): void {
    if (typeof state !== 'object' || state === null || typeof state.online !== 'boolean') throw new ValidationError('setNetwork takes { online: boolean }')
    this.online = state.online
    this.current?.link.setOnline(state.online)
  }

  /**
   * What waits to reach the relay, per scope and in all (count and bytes).
   *
   * @example
   * ```ts
   * const { count, bytes, scopes } = car.pending()
   * if (count > 0) console.log(`${count} waiting (${bytes} bytes), ${scopes.location?.count ?? 0} of them location`)
   * ```
   */
  pending(): Pending {
    return this.current?.outbox.snapshot() ?? { count: 0, bytes: 0, scopes: {} }
  }

  /**
   * The host says the car is driving (or parked): presence and the handoff policy follow.
   *
   * @example
   * ```ts
   * car.setDriving(true) // in gear: presence 'driving'; handoffs from the phone and glasses taken without a tap
   * car.setDriving(false) // parked
   * ```
   */
  setDriving(driving: boolean): void {
    if (typeof driving !== 'boolean') throw new ValidationError('setDriving takes a boolean')
    this.drivingNow = driving
    this.current?.driving.set(driving)
  }

  /**
   * The latest turn of the active session, truncated (see `DrivingPolicy.glanceChars`).
   *
   * @example
   * ```ts
   * const glance = car.glance(80)
   * if (glance) console.log(`${glance.title}, ${glance.role}: ${glance.text}${glance.done ? '' : ' (streaming)'}`)
   * ```
   */
  glance(maxChars?: number): Glance | undefined {
    return this.current?.driving.glance(maxChars)
  }

  /**
   * Scopes the open profile's account grants this car that it refuses, and why.
   *
   * @example
   * ```ts
   * for (const { scope, reason } of car.refusedScopes()) console.warn(`${scope}: ${reason}`)
   * ```
   */
  refusedScopes(): Array<{ scope: string; reason: string }> {
    const dev = this.current?.dev
    if (!dev) return []
    const granted = dev.devices.list().find((d) => d.deviceId === dev.deviceId)?.scopes ?? []
    return granted.filter((s) => s !== 'local' && !this.holdOnly.includes(s)).map((scope) => ({ scope, reason: refusalReason(scope) }))
  }

  /**
   * The drive ended: a guest profile open now is removed with everything it held.
   *
   * @example
   * ```ts
   * car.setDriving(false)
   * await car.endDrive() // ignition off: a guest profile leaves nothing behind
   * ```
   */
  async endDrive(): Promise<void> {
    await this.serial(async () => {
      if (this.current?.guest) await this.remove(this.current.id)
    })
  }

  /**
   * Subscribe; returns an unsubscribe function.
   *
   * @example
   * ```ts
   * const off = car.on('synced', () => console.log('outbox empty'))
   * off()
   * ```
   */
  on<E extends keyof CarEvents>(event: E, listener: CarEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /**
   * Close the open profile (a guest is removed), its link and store. Idempotent.
   *
   * @example
   * ```ts
   * await car.close()
   * ```
   */
  async close(): Promise<void> {
    if (this.closed) return
    await this.serial(async () => {
      if (this.current?.guest) await this.remove(this.current.id)
      else await this.closeCurrent()
    })
    this.closed = true
    this.emitter.clear()
  }

  /** Run profile changes one at a time. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ConfigError('this car is closed'))
    const next = this.busy.then(fn, fn)
    this.busy = next.catch(() => undefined)
    return next
  }

  private async join(options: JoinProfileOptions): Promise<Device> {
    if (typeof options !== 'object' || options === null) throw new ValidationError('profiles.join takes { id, invite, name?, guest? }')
    const id = requireProfileId(options.id)
    const name = options.name === undefined ? id : String(options.name).slice(0, 100)
    const guest = options.guest === true
    if (typeof options.invite !== 'string') throw new ValidationError('profiles.join needs the invite code from the driver\'s phone')
    if (this.index.get(id)) throw new ValidationError(`profile '${id}' exists already; remove it first or pick another id`)
    if (this.current?.guest) await this.remove(this.current.id)
    else await this.closeCurrent()
    this.index.prepare(id)
    const parts = this.parts(id)
    let dev: Device
    try {
      dev = await ContextSync.join({
        invite: options.invite,
        device: { kind: 'car', name },
        storage: parts.storage,
        transports: [parts.link],
        keys: this.keysFor(id),
        holdOnly: this.holdOnly,
        ...(options.confirmSas && { confirmSas: options.confirmSas }),
        ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
        ...(this.options.sync && { sync: this.options.sync }),
      })
    } catch (error) {
      await parts.link.close()
      await parts.storage.close()
      this.index.remove(id)
      throw error
    }
    this.index.add({ id, name, guest })
    return this.adopt(id, guest, dev, parts)
  }

  private async switchTo(id: string): Promise<Device> {
    if (this.current?.id === id) return this.current.dev
    const saved = this.index.get(id)
    if (!saved) throw new ValidationError(`no profile '${id}' on this head unit; known: ${this.index.all().map((p) => p.id).join(', ') || 'none'}`)
    if (this.current?.guest) await this.remove(this.current.id)
    else await this.closeCurrent()
    const parts = this.parts(id)
    let dev: Device
    try {
      dev = await ContextSync.open({ storage: parts.storage, transports: [parts.link], keys: this.keysFor(id), holdOnly: this.holdOnly, ...(this.options.sync && { sync: this.options.sync }) })
    } catch (error) {
      await parts.link.close()
      await parts.storage.close()
      if (error instanceof AccessEndedError) {
        // The device wiped the account's data itself; the profile's folder and line go too.
        this.index.remove(id)
        this.emitter.emit('access-ended', { profile: id, until: error.until })
      }
      throw error
    }
    return this.adopt(id, saved.guest, dev, parts)
  }

  private async remove(id: string): Promise<void> {
    if (!this.index.get(id) && !existsSync(this.index.folder(id))) throw new ValidationError(`no profile '${id}' on this head unit`)
    if (this.current?.id === id) await this.closeCurrent()
    this.index.remove(id)
  }

  private parts(id: string): { storage: SqliteStorage; link: CarLink } {
    const storage = sqliteStorage({ path: this.index.storePath(id), synchronous: 'full' })
    const link = carLink({
      ...(this.options.relayUrl !== undefined && { relayUrl: this.options.relayUrl }),
      ...(this.options.transport && { transport: this.options.transport(id) }),
      ...(this.options.maxBackoffTime !== undefined && { maxBackoffTime: this.options.maxBackoffTime }),
      online: this.online,
    })
    return { storage, link }
  }

  private adopt(id: string, guest: boolean, dev: Device, parts: { storage: SqliteStorage; link: CarLink }): Device {
    const outbox = new Outbox(dev, (roomId) => parts.link.statusOf(roomId))
    const driving = new Driving(dev, this.options.driving)
    const open: OpenProfile = { id, guest, dev, storage: parts.storage, link: parts.link, outbox, driving, offs: [] }
    open.offs.push(
      outbox.events.on('synced', ({ scopes }) => this.emitter.emit('synced', { profile: id, scopes })),
      dev.on('scope-refused', ({ scope }) => this.emitter.emit('scope-refused', { profile: id, scope, reason: refusalReason(scope) })),
      dev.on('access-ended', ({ until }) => void this.serial(() => this.ended(id, until))),
    )
    this.current = open
    if (this.drivingNow) driving.set(true)
    this.emitter.emit('profile', { profile: id })
    // Scopes refused before anyone could listen (granted earlier): reported now.
    for (const { scope, reason } of this.refusedScopes()) this.emitter.emit('scope-refused', { profile: id, scope, reason })
    return dev
  }

  private async ended(id: string, until: number): Promise<void> {
    if (this.current?.id === id) await this.closeCurrent()
    this.index.remove(id)
    this.emitter.emit('access-ended', { profile: id, until })
  }

  private async closeCurrent(): Promise<void> {
    const open = this.current
    if (!open) return
    this.current = undefined
    for (const off of open.offs) off()
    open.driving.close()
    open.outbox.close()
    await open.dev.close()
    await open.link.close()
    await open.storage.close()
    this.emitter.emit('profile', { profile: undefined })
  }

  private keysFor(id: string): KeyProtector {
    const keys = typeof this.options.keys === 'function' ? this.options.keys(id) : this.options.keys
    if (!isKeyProtector(keys)) throw new ConfigError('keys must be a KeyProtector (or a function of the profile id returning one), e.g. the host app\'s Android Keystore protector; tests pass plainKeys()')
    return keys
  }
}

/**
 * Open a head unit's profiles in `dataDir`. Guest profiles left by a power cut mid-drive and
 * folders of pairings or removals cut short are deleted first.
 *
 * @example
 * ```ts
 * import { plainKeys } from 'contextsync'
 * import { openCar } from 'contextsync/car'
 * // keys: the host's Android Keystore KeyProtector per profile; plainKeys() only in tests.
 * const car = await openCar({ dataDir: '/data/user/0/com.example.car/files/contextsync', relayUrl: 'wss://relay.example.com', keys: () => plainKeys() })
 * await car.profiles.join({ id: 'alice', name: 'Alice', invite: process.env.CONTEXTSYNC_INVITE ?? '' })
 * car.setDriving(true)
 * ```
 */
export async function openCar(options: CarOptions): Promise<Car> {
  if (typeof options !== 'object' || options === null) throw new ValidationError('openCar takes { dataDir, relayUrl, keys, … }')
  if (typeof options.dataDir !== 'string' || options.dataDir.length === 0) throw new ValidationError('openCar: dataDir must be a folder path')
  if (options.relayUrl !== undefined && !/^wss?:\/\/[^\s/]+/.test(options.relayUrl)) throw new ValidationError(`openCar: relayUrl must be a ws:// or wss:// URL, got '${options.relayUrl}'`)
  if (options.relayUrl === undefined && options.transport === undefined) throw new ValidationError('openCar: pass relayUrl (or a transport)')
  if (options.keys === undefined || (typeof options.keys !== 'function' && !isKeyProtector(options.keys))) {
    throw new ConfigError('openCar: keys is required — a KeyProtector backed by the platform keystore (Android Keystore through the host app), or plainKeys() in tests')
  }
  const holdOnly = carScopes(options.allowScopes)
  const dataDir = resolve(options.dataDir)
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  const index = new ProfileIndex(dataDir)
  index.sweep()
  for (const guest of index.all().filter((p) => p.guest)) index.remove(guest.id)
  const car = new Car(dataDir, index, options, holdOnly)
  if (options.profile !== undefined) await car.profiles.switch(options.profile)
  return car
}
