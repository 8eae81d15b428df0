/**
 * The simulated world of one seed: an account, the loopback network whose hub plays the relay,
 * two owner devices (phone, pc) and two members paired with invites (car, glasses), each on its
 * own `memoryStorage()` that survives restarts — plus the bookkeeping the checks need (writes
 * in flight, what each device knew of each removal, every key a removed device ever held).
 *
 * @module
 */
import * as prng from 'lib0/prng'
import {
  ContextSync,
  createAccount,
  loopbackNetwork,
  memoryStorage,
  type Account,
  type DeviceKind,
  type LoopbackNetwork,
  type StorageAdapter,
  type SyncOptions,
  type Transport,
} from '../../src/index.js'
import { accountKeys } from '../../src/facade/account.js'
import { ownerKeyring, REGISTRY_SCOPE, type DeviceKeyring } from '../../src/crypto/index.js'
import type { Replica } from '../../src/sync/replica.js'
import type { TurnStream } from '../../src/facade/sessions.js'
import { DEVICE_NAMES, Model, REGISTRY, type DeviceName, type Removal } from './model.js'

/** The scopes that sync (the campaign writes to these and to `local`). */
export const SYNCED_SCOPES = ['personal', 'health', 'payments', 'location', 'work'] as const

/** Highest key epoch looked up when listing the keys a keyring holds. */
const MAX_EPOCH = 64

/** One simulated device. */
export interface SimDevice {
  name: DeviceName
  kind: DeviceKind
  owner: boolean
  storage: StorageAdapter
  /** One transport for the device's whole life, so partitions and `disconnect` survive restarts. */
  transport: Transport
  /** The running instance; `undefined` while restarting, or for good after a failed reopen. */
  dev: ContextSync | undefined
  deviceId: string
  /** A stream this device is writing (closed by a restart). */
  stream: { handle: TurnStream; sessionId: string; scope: string; chunks: number[] } | undefined
  /** Every key its keyring held in earlier instances (before restarts), `room/epoch` → keys. */
  pastKeys: Map<string, Uint8Array[]>
  /** Unsubscribes the hooks on the running instance. */
  unhook: () => void
}

/** Tuning of one run. */
export interface WorldOptions {
  /** Sync options of every device (small compaction limits, fast repair). */
  sync: SyncOptions
}

/** The registry of a device (internal to `ContextSync`; the checks read its verified view). */
export type RegistryView = ContextSync['registry']

/** A device's keyring (private in `ContextSync`; check 4 tries every key a removed device holds). */
export function keyringOf(dev: ContextSync): DeviceKeyring {
  return (dev as unknown as { keyring: DeviceKeyring }).keyring
}

/** Everything one seed's run works on. */
export class World {
  readonly devices = new Map<DeviceName, SimDevice>()
  readonly trace: string[] = []
  /** Write and forget promises not settled yet, with the device that issued them. */
  readonly inFlight = new Map<Promise<unknown>, DeviceName>()
  /** Devices taken offline with `net.disconnect` (cleared by a heal). */
  readonly offline = new Set<DeviceName>()
  /** Step at which the relay first held each envelope, by signature (hex of its last 64 bytes). */
  readonly relaySeen = new Map<string, number>()
  /** Step at which the relay last re-inserted each envelope (replay, reorder, move), by signature. */
  readonly relayReinserted = new Map<string, number>()
  /** Things that went wrong during the run that no check looks at (a device that did not reopen). */
  readonly errors: string[] = []
  /** Room id → scope name (scope rooms and the registry). */
  readonly scopeOfRoom = new Map<string, string>()
  private readonly owner: DeviceKeyring

  private constructor(
    readonly seed: number,
    readonly account: Account,
    readonly net: LoopbackNetwork,
    readonly model: Model,
    readonly options: WorldOptions,
  ) {
    this.owner = ownerKeyring(accountKeys(account))
    for (const scope of [REGISTRY_SCOPE, ...SYNCED_SCOPES]) this.scopeOfRoom.set(this.owner.roomId(scope), scope)
  }

  /** Create the account, the network and the four devices (members paired by a random owner). */
  static async create(seed: number, gen: prng.PRNG, options: WorldOptions): Promise<World> {
    const account = await createAccount()
    const net = loopbackNetwork({ seed, layout: 'hub' })
    const world = new World(seed, account, net, new Model(seed), options)
    for (const name of ['phone', 'pc'] as const) {
      const storage = memoryStorage()
      const transport = net.transport({ name })
      const dev = await ContextSync.open({ account, device: { kind: name, name }, storage, transports: [transport], sync: options.sync })
      world.add({ name, kind: name, owner: true, storage, transport, dev, deviceId: dev.deviceId })
    }
    for (const name of ['car', 'glasses'] as const) {
      const hostName = prng.bool(gen) ? 'phone' : 'pc'
      const host = world.get(hostName).dev!
      const invite = await host.devices.invite({ kind: name, name })
      const storage = memoryStorage()
      const transport = net.transport({ name })
      const dev = await ContextSync.join({ invite: invite.code, device: { kind: name, name }, storage, transports: [transport], sync: options.sync, timeoutMs: 10_000 })
      world.add({ name, kind: name, owner: false, storage, transport, dev, deviceId: dev.deviceId })
      world.log(`setup: ${name} paired by ${hostName}`)
    }
    return world
  }

  /** The device of that name. */
  get(name: DeviceName): SimDevice {
    const device = this.devices.get(name)
    if (!device) throw new Error(`no device ${name}`)
    return device
  }

  /** Devices in name order. */
  all(): SimDevice[] {
    return DEVICE_NAMES.map((n) => this.get(n))
  }

  /** Running devices. */
  running(): Array<SimDevice & { dev: ContextSync }> {
    return this.all().filter((d): d is SimDevice & { dev: ContextSync } => d.dev !== undefined)
  }

  /** Devices the model never revoked. */
  honest(): SimDevice[] {
    return this.all().filter((d) => !this.model.revoked(d.name))
  }

  /** The name of the device with this id (`?<id>` for anyone else). */
  nameOf(deviceId: string): string {
    for (const d of this.devices.values()) if (d.deviceId === deviceId) return d.name
    return `?${deviceId.slice(0, 8)}`
  }

  /** The simulated device with this id, if it is one. */
  deviceNamed(deviceId: string): DeviceName | undefined {
    for (const d of this.devices.values()) if (d.deviceId === deviceId) return d.name
    return undefined
  }

  /** Room id of a scope (the registry as `@registry`). */
  roomId(scope: string): string {
    return this.owner.roomId(scope === REGISTRY ? REGISTRY_SCOPE : scope)
  }

  /** Append a line to the op trace. */
  log(line: string): void {
    this.trace.push(line)
  }

  /** Track a write or forget promise until it settles (never rejects into the run). */
  track(device: DeviceName, promise: Promise<unknown>, settled: (ok: boolean) => void): void {
    const tracked = promise.then(
      () => settled(true),
      () => settled(false),
    )
    this.inFlight.set(tracked, device)
    void tracked.finally(() => this.inFlight.delete(tracked))
  }

  /**
   * Close a device and open it again from its store alone (as an app does after a restart).
   * Resolves with the error when the reopen fails; the device then stays down.
   */
  async restart(device: SimDevice): Promise<Error | undefined> {
    const dev = device.dev
    if (!dev) return undefined
    this.captureKeys(device)
    device.unhook()
    // A stream cut by the restart was never acknowledged (its chunks may be stored, no promise said so).
    for (const n of device.stream?.chunks ?? []) this.model.writes[n - 1]!.settled = true
    device.stream = undefined
    device.dev = undefined
    await dev.close()
    try {
      const reopened = await ContextSync.open({ storage: device.storage, transports: [device.transport], sync: this.options.sync })
      device.dev = reopened
      this.hook(device)
      return undefined
    } catch (error) {
      return error instanceof Error ? error : new Error(String(error))
    }
  }

  /** Note, for every device, which recorded removals it knows of now (see `Removal.knownAt`). */
  noteKnowledge(): void {
    for (const device of this.running()) this.noteKnowledgeOf(device)
  }

  /** True when `registry` shows the removal (a revocation, or the target no longer holding the scope). */
  knows(registry: RegistryView, removal: Removal): boolean {
    if (registry.revocation(removal.targetId)) return true
    return removal.kind === 'narrow' && !registry.holds(removal.targetId, removal.scopes[0]!)
  }

  /** Removals (ids) a device knows of now that cover `scope`. */
  knownRemovals(device: SimDevice & { dev: ContextSync }, scope: string): Set<number> {
    const out = new Set<number>()
    for (const removal of this.model.removals) {
      if (removal.scopes.includes(scope) && removal.target !== device.name && this.knows(device.dev.registry, removal)) out.add(removal.id)
    }
    return out
  }

  /** Every key a device holds or held, `room/epoch` → keys (its running keyring and earlier instances). */
  keysOf(device: SimDevice): Map<string, Uint8Array[]> {
    this.captureKeys(device)
    return device.pastKeys
  }

  /** The replica of a scope on a running device (the registry as `@registry`). */
  replica(device: SimDevice, scope: string): Replica | undefined {
    return device.dev?.replica(scope === REGISTRY ? REGISTRY_SCOPE : scope)
  }

  /** Close every device and the network. */
  async close(): Promise<void> {
    for (const device of this.all()) {
      device.unhook()
      const dev = device.dev
      device.dev = undefined
      await dev?.close().catch(() => undefined)
    }
    this.net.destroy()
  }

  private add(input: Omit<SimDevice, 'stream' | 'pastKeys' | 'unhook'>): void {
    const device: SimDevice = { ...input, stream: undefined, pastKeys: new Map(), unhook: () => undefined }
    this.devices.set(device.name, device)
    this.hook(device)
  }

  /** Follow the registry of a running instance: knowledge of removals is noted as it changes. */
  private hook(device: SimDevice): void {
    const dev = device.dev
    if (!dev) return
    device.unhook = dev.registry.events.on('change', () => this.noteKnowledgeOf(device))
    this.noteKnowledgeOf(device)
  }

  private noteKnowledgeOf(device: SimDevice): void {
    const dev = device.dev
    if (!dev) return
    for (const removal of this.model.removals) {
      if (removal.knownAt.has(device.name) || !this.knows(dev.registry, removal)) continue
      const seqs = new Map<string, number>()
      // A device without the room's replica (dropped from the scope itself) seals nothing there.
      for (const scope of removal.scopes) {
        const replica = this.replica(device, scope)
        if (replica) seqs.set(this.roomId(scope), replica.latestOwnSeq())
      }
      removal.knownAt.set(device.name, seqs)
    }
  }

  /** Add every key the running keyring of a device holds to its past keys. */
  private captureKeys(device: SimDevice): void {
    const dev = device.dev
    if (!dev) return
    const keyring = keyringOf(dev)
    for (const scope of [REGISTRY_SCOPE, ...SYNCED_SCOPES]) {
      if (!keyring.knowsRoom(scope)) continue
      const roomId = keyring.roomId(scope)
      for (let epoch = 0; epoch <= MAX_EPOCH; epoch++) {
        for (const key of keyring.openingKeys(scope, epoch)) {
          const id = `${roomId}/${epoch}`
          const known = device.pastKeys.get(id) ?? []
          if (!known.some((k) => Buffer.compare(k, key) === 0)) device.pastKeys.set(id, [...known, key])
        }
      }
    }
  }
}
