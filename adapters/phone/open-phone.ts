/**
 * The phone (ARCHITECTURE.md "adapters/phone"): the account's hub and owner. One owner device on
 * the host's storage (passed in — a React Native app passes its own adapter — or SQLite on Node,
 * loaded only then), synced with the relay over WebSocket, and a link hub on the same outer docs:
 * glasses served over a Bluetooth channel sync through the phone while it is online, and with
 * the phone alone while it is not; the phone's next relay sync carries what they wrote.
 *
 * No Node built-in is imported on this path: storage and the WebSocket constructor come from the
 * host (or the platform's global `WebSocket`), and the SQLite adapter is imported on demand.
 *
 * @module
 */
import {
  ConfigError,
  ContextSync,
  createAccount,
  ValidationError,
  type Account,
  type KeyProtector,
  type StorageAdapter,
  type SyncOptions,
  type Transport,
} from '../../src/index.js'
import { websocketTransport, type WebSocketConstructor, type WebsocketTransport } from '../../src/adapters/websocket.js'
import type { LinkChannel, LinkClock } from '../../src/adapters/link-channel.js'
import type { LinkConnection } from '../../src/adapters/link-node.js'
import type { InviteOptions, PairingRequest } from '../../src/facade/pairing.js'
import { phoneHub, type PhoneHub } from './hub.js'
import { formatSas, pairingQr } from './pairing.js'

/** Options of {@link openPhone}. */
export interface PhoneOptions {
  /** Where sealed logs and keys live (React Native: the app's adapter). Or pass `sqlitePath`. */
  storage?: StorageAdapter
  /** Node: a SQLite store at this path instead of `storage`. */
  sqlitePath?: string
  /** Wraps the key records (the platform keystore through the host app; tests: `plainKeys()`). */
  keys?: KeyProtector
  /** First open: the account this phone owns (default: a new one). Later opens read it from the store. */
  account?: Account
  /** The phone's name in the account's device list (first open). */
  name?: string
  /** The relay, `ws://` or `wss://`. */
  relayUrl?: string
  /** The WebSocket constructor (Node < 22: `ws`); default the platform's global `WebSocket`. */
  WebSocket?: WebSocketConstructor
  /** Longest reconnect delay to the relay (ms). */
  maxBackoffTime?: number
  /** A transport instead of the WebSocket one (tests, a custom relay link). */
  transport?: Transport
  sync?: SyncOptions
  /** The link hub: radio window, keepalive, token audiences, clocks. */
  link?: {
    radioWindowMs?: number
    keepaliveMs?: number
    /** Audiences link tokens must name; default `['link']` (what `linkTransport` names). */
    audiences?: readonly string[]
    /** Timers of the link sessions (a simulator's virtual clock). */
    clock?: LinkClock
    /** Clock of the token check (ms). */
    now?: () => number
  }
}

/** An invite as a phone's pairing screen shows it. */
export interface PhoneInvite {
  /** The code to type on the new device. */
  code: string
  /** The same invite as a QR payload (format: `contextsync/phone`'s `pairingQr`). */
  qr: string
  expiresAt: number
  /** Settles with the new device's id, or a `PairingError`. */
  result(): Promise<{ deviceId: string }>
  cancel(): void
}

/** Options of {@link Phone.invite}. */
export interface PhoneInviteOptions extends Omit<InviteOptions, 'confirm'> {
  /**
   * Show the SAS (formatted `123 456`) and resolve whether the user says it matches the new
   * device's screen. Default: admitted without the comparison (only for tests and demos).
   */
  confirmSas?: (sas: string, request: PairingRequest) => boolean | Promise<boolean>
}

/** The phone: its device, its relay link, its link hub. */
export class Phone {
  private closed = false

  /** @internal use {@link openPhone}. */
  constructor(
    /** The phone's owner device (memory, sessions, devices, scopes…). */
    readonly device: ContextSync,
    private readonly relay: Transport & { setOnline?: (online: boolean) => void },
    private readonly hub: PhoneHub,
    private readonly storage: StorageAdapter,
    private readonly ownsStorage: boolean,
    private readonly relayUrl: string | undefined,
  ) {}

  /**
   * Serve a link peer (the glasses) on a channel that just came up — a BLE characteristic pair,
   * an L2CAP channel. Rooms it opens are admitted only within its relay pass (4403 otherwise).
   */
  serveLink(channel: LinkChannel): LinkConnection {
    if (this.closed) throw new ConfigError('this phone is closed')
    return this.hub.serve(channel)
  }

  /** The live link connections. */
  get links(): readonly LinkConnection[] {
    return this.hub.server.connections
  }

  /**
   * The host's view of the phone's network. Offline: the relay sockets close and reconnecting
   * stops — the link keeps serving the glasses from the phone's own logs; online: reconnect now.
   */
  setNetwork(state: { online: boolean }): void {
    if (typeof state !== 'object' || state === null || typeof state.online !== 'boolean') throw new ValidationError('setNetwork takes { online: boolean }')
    this.relay.setOnline?.(state.online)
  }

  /**
   * Invite a device (glasses, car, PC): the code, the same as a QR payload, and the SAS
   * comparison through `confirmSas`.
   *
   * @example
   * ```ts
   * const invite = await phone.invite({ kind: 'glasses', confirmSas: (sas) => ui.confirm(`Do the glasses show ${sas}?`) })
   * ui.showQr(invite.qr)
   * ```
   */
  async invite(options: PhoneInviteOptions): Promise<PhoneInvite> {
    const { confirmSas, ...rest } = options
    const invite = await this.device.devices.invite({
      ...rest,
      ...(confirmSas && { confirm: (request: PairingRequest) => confirmSas(formatSas(request.sas), request) }),
    })
    return {
      code: invite.code,
      qr: pairingQr({ code: invite.code, kind: options.kind, expiresAt: invite.expiresAt, ...(this.relayUrl !== undefined && { relayUrl: this.relayUrl }) }),
      expiresAt: invite.expiresAt,
      result: () => invite.result(),
      cancel: () => invite.cancel(),
    }
  }

  /** Close the link hub, the device, the relay link and (if it opened it) the store. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.hub.close()
    await this.device.close()
    await this.relay.close()
    await this.hub.transport.close()
    if (this.ownsStorage) await this.storage.close?.()
  }
}

/**
 * Open the phone: enrol it as the owner of a new (or the given) account on first open, reopen it
 * after; connect it to the relay and start the link hub.
 *
 * @example
 * ```ts
 * import { openPhone } from 'contextsync/phone'
 * const phone = await openPhone({ storage, keys, relayUrl: 'wss://relay.example.com' })
 * ble.onCentralConnected((characteristics) => phone.serveLink(channelOf(characteristics)))
 * ```
 */
export async function openPhone(options: PhoneOptions): Promise<Phone> {
  if (typeof options !== 'object' || options === null) throw new ValidationError('openPhone takes { storage | sqlitePath, keys, relayUrl, … }')
  if (options.relayUrl !== undefined && !/^wss?:\/\/[^\s/]+/.test(options.relayUrl)) throw new ValidationError(`openPhone: relayUrl must be a ws:// or wss:// URL, got '${options.relayUrl}'`)
  if (options.relayUrl === undefined && options.transport === undefined) throw new ValidationError('openPhone: pass relayUrl (or a transport)')
  if ((options.storage === undefined) === (options.sqlitePath === undefined)) throw new ValidationError('openPhone: pass exactly one of storage and sqlitePath')
  let storage: StorageAdapter
  if (options.storage) storage = options.storage
  else {
    // Imported on demand: the adapter needs Node (better-sqlite3); React Native passes `storage`.
    const { sqliteStorage } = await import('../../src/entries/sqlite.js')
    storage = sqliteStorage({ path: options.sqlitePath! })
  }
  const relay: WebsocketTransport | Transport =
    options.transport ??
    websocketTransport({
      url: options.relayUrl!,
      ...(options.WebSocket && { WebSocketPolyfill: options.WebSocket }),
      ...(options.maxBackoffTime !== undefined && { maxBackoffTime: options.maxBackoffTime }),
    })
  let device: ContextSync | undefined
  const hub = phoneHub({
    accountId: () => device?.accountId ?? '',
    revoked: (deviceId) => device?.devices.list().find((d) => d.deviceId === deviceId)?.revoked === true,
    ...(options.link?.radioWindowMs !== undefined && { radioWindowMs: options.link.radioWindowMs }),
    ...(options.link?.keepaliveMs !== undefined && { keepaliveMs: options.link.keepaliveMs }),
    ...(options.link?.audiences && { audiences: options.link.audiences }),
    ...(options.link?.clock && { clock: options.link.clock }),
    ...(options.link?.now && { now: options.link.now }),
  })
  try {
    const enrolled = (await storage.load(['keys', 'device'])) !== undefined
    device = await ContextSync.open({
      storage,
      transports: [relay, hub.transport],
      ...(options.keys && { keys: options.keys }),
      ...(options.sync && { sync: options.sync }),
      ...(!enrolled && { account: options.account ?? (await createAccount()), device: { kind: 'phone' as const, ...(options.name !== undefined && { name: options.name }) } }),
    })
  } catch (error) {
    hub.close()
    await relay.close()
    if (options.sqlitePath !== undefined) await storage.close?.()
    throw error
  }
  return new Phone(device, relay, hub, storage, options.sqlitePath !== undefined, options.relayUrl)
}
