/**
 * Glasses (ARCHITECTURE.md "adapters/glasses"): a member device in a browser or webview, on
 * IndexedDB, that reaches the account through the phone's Bluetooth link first and the relay's
 * WebSocket on Wi-Fi only while the link is down (never both for a room at once), runs on a
 * power profile the host switches with `setPowerState`, and holds only the scopes glasses may
 * (`personal` and `location` unless the owner allows more).
 *
 * @module
 */
import { ConfigError, ContextSync, ValidationError, type KeyProtector, type StorageAdapter, type SyncOptions } from '../../src/index.js'
import { indexedDbStorage } from '../../src/adapters/idb-storage.js'
import { websocketTransport, type WebSocketConstructor } from '../../src/adapters/websocket.js'
import { linkTransport, type LinkTransport } from '../../src/adapters/link.js'
import type { LinkChannel, LinkClock } from '../../src/adapters/link-channel.js'
import type { LinkConnection } from '../../src/adapters/link-node.js'
import { Emitter } from '../../src/util/emitter.js'
import { powerProfile, requirePowerState, type PowerProfile, type PowerState } from './power.js'
import { glassesRoute, type GlassesPath, type GlassesRoute } from './route.js'
import { glassesRefusalReason, glassesScopes } from './scopes.js'

/** Options of {@link openGlasses}. */
export interface GlassesOptions {
  /** Where sealed logs and keys live; default IndexedDB database `dbName`. */
  storage?: StorageAdapter
  /** IndexedDB database name (default `contextsync-glasses`). */
  dbName?: string
  /** Wraps the key records (in a browser: `webCryptoKeys()` from `contextsync/idb`; tests: `plainKeys()`). */
  keys?: KeyProtector
  /** First open: the invite code (or a QR payload's code) from the phone. */
  invite?: string
  /** First open: show the six digits; resolve whether the user says they match the phone's. */
  confirmSas?: (sas: string) => boolean | Promise<boolean>
  /** The glasses' name in the account's device list (first open). */
  name?: string
  /** The relay, for the Wi-Fi fallback and pairing. Omitted: the link only. */
  relayUrl?: string
  /** WebSocket constructor; default the platform's. */
  WebSocket?: WebSocketConstructor
  /** Longest reconnect delay to the relay (ms). */
  maxBackoffTime?: number
  /** Whether Wi-Fi is up at start (default true). */
  wifi?: boolean
  /** Scopes beyond `personal` and `location` the owner explicitly allows on these glasses. */
  allowScopes?: readonly string[]
  /** The power state at start (default on battery, full, screen off). */
  power?: PowerState
  /** Link timers and keepalive (a simulator's virtual clock). */
  link?: { clock?: LinkClock; keepaliveMs?: number; retryMs?: number }
  sync?: SyncOptions
  /** Pairing timeout (ms). */
  timeoutMs?: number
}

/** Events of {@link Glasses}. */
export interface GlassesEvents {
  /** The account grants these glasses a scope they do not hold: left unopened, and why. */
  'scope-refused': (event: { scope: string; reason: string }) => void
  /** The power profile changed. */
  power: (event: { profile: PowerProfile }) => void
}

/** The glasses: their device, link, fallback and power profile. */
export class Glasses {
  private readonly emitter = new Emitter<GlassesEvents>()
  private profile: PowerProfile
  private closed = false
  private readonly offs: Array<() => void> = []
  /** Live link channels, to ask each for the profile's peripheral latency. */
  private readonly channels = new Map<LinkChannel, LinkConnection>()

  /** @internal use {@link openGlasses}. */
  constructor(
    /** The glasses' device (memory, sessions, presence…). */
    readonly device: ContextSync,
    private readonly route: GlassesRoute,
    private readonly link: LinkTransport,
    private readonly holdOnly: readonly string[],
    power: PowerState,
  ) {
    this.profile = powerProfile(power)
    this.apply()
    this.offs.push(device.on('scope-refused', ({ scope }) => this.emitter.emit('scope-refused', { scope, reason: glassesRefusalReason(scope) })))
  }

  /** A Bluetooth channel to the phone came up: sync over it (the relay socket steps aside). */
  connectLink(channel: LinkChannel): LinkConnection {
    if (this.closed) throw new ConfigError('these glasses are closed')
    const connection = this.route.connect(channel)
    if (channel.requestPeripheralLatency) {
      this.channels.set(channel, connection)
      channel.requestPeripheralLatency(this.profile.peripheralLatency)
    }
    return connection
  }

  /** The host's view of Wi-Fi: the direct relay socket is used only while the link is down and Wi-Fi is up. */
  setNetwork(state: { wifi: boolean }): void {
    if (typeof state !== 'object' || state === null || typeof state.wifi !== 'boolean') throw new ValidationError('setNetwork takes { wifi: boolean }')
    this.route.setWifi(state.wifi)
  }

  /** The live link connections (their `stats` count bursts, bytes and packets). */
  get links(): readonly LinkConnection[] {
    return this.link.connections
  }

  /** Where rooms go now: `'link'` (to the phone) or `'direct'` (to the relay over Wi-Fi). */
  get path(): GlassesPath {
    return this.route.path
  }

  /** Where one room is carried now. */
  pathOf(roomId: string): GlassesPath | undefined {
    return this.route.pathOf(roomId)
  }

  /**
   * The host's power state: picks the profile (see `powerProfile`) — long windows on battery,
   * short on the charger, where the deferred compaction and recall indexing run.
   */
  setPowerState(state: PowerState): PowerProfile {
    this.profile = powerProfile(requirePowerState(state))
    this.apply()
    this.emitter.emit('power', { profile: this.profile })
    return this.profile
  }

  /** The profile in force. */
  get powerProfile(): PowerProfile {
    return this.profile
  }

  /** Scopes the account grants these glasses that they refuse, and why. */
  refusedScopes(): Array<{ scope: string; reason: string }> {
    const dev = this.device
    const granted = dev.devices.list().find((d) => d.deviceId === dev.deviceId)?.scopes ?? []
    return granted.filter((s) => s !== 'local' && !this.holdOnly.includes(s)).map((scope) => ({ scope, reason: glassesRefusalReason(scope) }))
  }

  /** Subscribe; returns an unsubscribe function. */
  on<E extends keyof GlassesEvents>(event: E, listener: GlassesEvents[E]): () => void {
    return this.emitter.on(event, listener)
  }

  /** Close the device, the link and the relay socket. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const off of this.offs.splice(0)) off()
    await this.device.close()
    await this.route.close()
    this.emitter.clear()
  }

  private apply(): void {
    const p = this.profile
    this.link.setRadioWindow(p.radioWindowMs)
    this.link.setRideRadioEvents(p.rideRadioEvents)
    for (const [channel, connection] of this.channels) {
      if (connection.closed) this.channels.delete(channel)
      else channel.requestPeripheralLatency!(p.peripheralLatency)
    }
    this.device.tune({
      flushDelayMs: p.flushDelayMs,
      streamFlushDelayMs: p.streamFlushDelayMs,
      presenceHeartbeatMs: p.presenceHeartbeatMs,
      deferCompaction: p.deferUpkeep,
      deferIndexing: p.deferUpkeep,
    })
  }
}

/**
 * Open the glasses: join the account with the phone's invite on first open (over the relay, on
 * Wi-Fi), reopen from IndexedDB after.
 *
 * @example
 * ```ts
 * import { openGlasses } from 'contextsync/glasses'
 * const glasses = await openGlasses({ keys, relayUrl, invite: codeFromPhone })
 * ble.onConnected((channel) => glasses.connectLink(channel))
 * battery.onChange((s) => glasses.setPowerState(s))
 * ```
 */
export async function openGlasses(options: GlassesOptions = {}): Promise<Glasses> {
  if (typeof options !== 'object' || options === null) throw new ValidationError('openGlasses takes { keys, relayUrl?, invite?, … }')
  if (options.relayUrl !== undefined && !/^wss?:\/\/[^\s/]+/.test(options.relayUrl)) throw new ValidationError(`openGlasses: relayUrl must be a ws:// or wss:// URL, got '${options.relayUrl}'`)
  const holdOnly = glassesScopes(options.allowScopes)
  const power = requirePowerState(options.power ?? { charging: false, batteryLevel: 1, screenOn: false })
  const storage = options.storage ?? indexedDbStorage({ name: options.dbName ?? 'contextsync-glasses' })
  const link = linkTransport({
    radioWindowMs: powerProfile(power).radioWindowMs,
    rideRadioEvents: powerProfile(power).rideRadioEvents,
    ...(options.link?.clock && { clock: options.link.clock }),
    ...(options.link?.keepaliveMs !== undefined && { keepaliveMs: options.link.keepaliveMs }),
    ...(options.link?.retryMs !== undefined && { retryMs: options.link.retryMs }),
  })
  const direct =
    options.relayUrl === undefined
      ? undefined
      : websocketTransport({
          url: options.relayUrl,
          ...(options.WebSocket && { WebSocketPolyfill: options.WebSocket }),
          ...(options.maxBackoffTime !== undefined && { maxBackoffTime: options.maxBackoffTime }),
        })
  const route = glassesRoute(link, direct, options.wifi ?? true)
  const profile = powerProfile(power)
  const sync: SyncOptions = { ...options.sync, flushDelayMs: profile.flushDelayMs, streamFlushDelayMs: profile.streamFlushDelayMs }
  let device: ContextSync
  try {
    const enrolled = (await storage.load(['keys', 'device'])) !== undefined
    if (enrolled) {
      device = await ContextSync.open({ storage, transports: [route], holdOnly, sync, ...(options.keys && { keys: options.keys }) })
    } else {
      if (typeof options.invite !== 'string') throw new ValidationError('openGlasses: these glasses are not paired yet; pass the invite code from the phone')
      device = await ContextSync.join({
        invite: options.invite,
        device: { kind: 'glasses', ...(options.name !== undefined && { name: options.name }) },
        storage,
        transports: [route],
        holdOnly,
        sync,
        ...(options.keys && { keys: options.keys }),
        ...(options.confirmSas && { confirmSas: options.confirmSas }),
        ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
      })
    }
  } catch (error) {
    await route.close()
    if (!options.storage) await storage.close?.()
    throw error
  }
  return new Glasses(device, route, link, holdOnly, power)
}
