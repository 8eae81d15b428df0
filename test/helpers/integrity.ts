/**
 * Fixtures for the integrity tests: devices over real sockets through a tampering relay
 * (`src/testing/tampering-relay.ts`), on SQLite files in a temp dir so they can be closed and
 * reopened, plus the attacker's tools — forging envelopes with a device's stolen keys, finding the
 * envelope that carries a marker, trying every key a device holds.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import WebSocket from 'ws'
import * as Y from 'yjs'
import {
  ContextSync,
  memoryStorage,
  plainKeys,
  type Account,
  type DeviceKind,
  type RejectedEvent,
  type StorageAdapter,
  type SyncLagEvent,
  type SyncOptions,
  type Transport,
} from '../../src/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { sqliteStorage } from '../../src/adapters/sqlite-storage.js'
import { accountKeys } from '../../src/facade/account.js'
import { ownerKeyring } from '../../src/crypto/index.js'
import { createTamperingRelay, type TamperingRelay } from '../../src/testing/tampering-relay.js'
import type { EnvelopeInfo } from '../../src/testing/sealed-log-tamper.js'
import { contentOf, keyringOf } from './forge.js'

export { contentOf, deviceKeysOf, forgeEnvelope, keyringOf, memoryUpdate, opensWithAny } from './forge.js'

/**
 * Sync options the integrity fix adds (`epochGraceMs`, `hold`), typed here until `SyncOptions`
 * has them: a value of this type passes where `SyncOptions` is expected.
 */
export type IntegritySyncOptions = SyncOptions & {
  /** How long envelopes under the previous key epoch are still accepted after a rotation. */
  epochGraceMs?: number
  /** Bounds on envelopes held for an unknown sender or key. */
  hold?: { timeoutMs?: number; maxEntries?: number; maxBytes?: number }
}

/** One device of a fixture, with everything it reported. */
export interface FixtureDevice {
  dev: ContextSync
  kind: DeviceKind
  storage: StorageAdapter
  /** SQLite file, when the device is on SQLite (it can then be reopened). */
  path: string | undefined
  sync: IntegritySyncOptions
  rejected: RejectedEvent[]
  held: RejectedEvent[]
  lags: SyncLagEvent[]
}

/** Resolve once `predicate` holds (polling every 20 ms); throw after `timeoutMs`. */
export async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}

/** Poll `predicate` for up to `timeoutMs`; resolve with whether it came to hold (never throws). */
export async function eventually(predicate: () => boolean, timeoutMs: number): Promise<boolean> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) return false
    await sleep(20)
  }
  return true
}

/** {@link until} for an async predicate. */
export async function untilAsync(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  if (!(await eventuallyAsync(predicate, timeoutMs))) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
}

/** {@link eventually} for an async predicate. */
export async function eventuallyAsync(predicate: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const start = Date.now()
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) return false
    await sleep(20)
  }
  return true
}

/**
 * True when `doc` has integrated every struct `source` has (its state vector dominates) — e.g. a
 * device's outer doc has received everything the relay's copy holds, deletions of it aside.
 */
export function caughtUp(doc: Y.Doc, source: Y.Doc): boolean {
  for (const [client, clock] of Y.decodeStateVector(Y.encodeStateVector(source))) {
    if (Y.getState(doc.store, client) < clock) return false
  }
  return true
}

/**
 * True when `doc` has applied every deletion `source` has: each deleted range of `source`'s
 * delete set is deleted in `doc` too — e.g. a relay's wipe has reached a device (deletions move
 * no state-vector clock, so {@link caughtUp} cannot tell).
 */
export function deletesArrived(doc: Y.Doc, source: Y.Doc): boolean {
  const theirs = Y.createDeleteSetFromStructStore(source.store)
  const ours = Y.createDeleteSetFromStructStore(doc.store)
  for (const [client, ranges] of theirs.clients) {
    for (const range of ranges) {
      for (let clock = range.clock; clock < range.clock + range.len; clock++) {
        if (!Y.isDeleted(ours, Y.createID(client, clock))) return false
      }
    }
  }
  return true
}

/** Sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/**
 * A tampering relay, devices connected to it over `websocketTransport`, and a temp dir for their
 * SQLite files; {@link close} tears everything down (call it in `afterEach`).
 */
export class IntegrityFixture {
  private readonly cleanups: Array<() => Promise<void> | void> = []
  private readonly devices = new Set<FixtureDevice>()
  private dir: string | undefined
  private counter = 0

  private constructor(readonly relay: TamperingRelay) {}

  /** Start a fixture with its own tampering relay on 127.0.0.1, port 0. */
  static async start(): Promise<IntegrityFixture> {
    return new IntegrityFixture(await createTamperingRelay({ host: '127.0.0.1', port: 0 }))
  }

  /** A websocket transport to the fixture's relay (closed with the fixture). */
  transport(): Transport {
    const transport = websocketTransport({
      url: this.relay.url,
      WebSocketPolyfill: WebSocket as never,
      maxBackoffTime: 200,
      refusedBackoffTime: 200,
    })
    this.cleanups.push(() => transport.close())
    return transport
  }

  /** A fresh SQLite path in the fixture's temp dir. */
  sqlitePath(name: string): string {
    this.dir ??= mkdtempSync(join(tmpdir(), 'contextsync-integrity-'))
    return join(this.dir, `${name}-${++this.counter}.db`)
  }

  /** Open an owner device of `account` (SQLite unless `store: 'memory'`). */
  async owner(
    account: Account,
    kind: DeviceKind,
    options: { store?: 'sqlite' | 'memory'; sync?: IntegritySyncOptions } = {},
  ): Promise<FixtureDevice> {
    const { storage, path } = this.storage(kind, options.store)
    const sync = options.sync ?? {}
    const dev = await ContextSync.open({ account, device: { kind, name: `Integrity ${kind}` }, storage, keys: plainKeys(), transports: [this.transport()], sync })
    return this.track({ dev, kind, storage, path, sync })
  }

  /** Pair a member device with `owner` (invite + join), SQLite unless `store: 'memory'`. */
  async member(
    owner: ContextSync,
    kind: DeviceKind,
    options: { scopes?: string[]; store?: 'sqlite' | 'memory'; sync?: IntegritySyncOptions } = {},
  ): Promise<FixtureDevice> {
    const { storage, path } = this.storage(kind, options.store)
    const sync = options.sync ?? {}
    const invite = await owner.devices.invite({ kind, name: `Integrity ${kind}`, ...(options.scopes && { scopes: options.scopes }) })
    const dev = await ContextSync.join({
      invite: invite.code,
      device: { kind, name: `Integrity ${kind}` },
      storage,
      keys: plainKeys(),
      transports: [this.transport()],
      sync,
      timeoutMs: 15_000,
    })
    return this.track({ dev, kind, storage, path, sync })
  }

  /**
   * Close a SQLite device and open it again from its file alone (no `device:` option, as an app
   * does after a restart). The returned device replaces the old one.
   */
  async reopen(device: FixtureDevice): Promise<FixtureDevice> {
    if (!device.path) throw new Error('only SQLite devices can be reopened')
    await this.shut(device)
    const storage = sqliteStorage({ path: device.path })
    this.cleanups.push(() => storage.close())
    const dev = await ContextSync.open({ storage, keys: plainKeys(), transports: [this.transport()], sync: device.sync })
    return this.track({ dev, kind: device.kind, storage, path: device.path, sync: device.sync })
  }

  /** Close a device and its storage (it stays closed). */
  async shut(device: FixtureDevice): Promise<void> {
    this.devices.delete(device)
    await device.dev.close()
    await (device.storage as { close?: () => Promise<void> }).close?.()
  }

  /** Close every device, transport and the relay, and delete the temp dir. */
  async close(): Promise<void> {
    for (const device of [...this.devices]) await this.shut(device).catch(() => undefined)
    for (const cleanup of this.cleanups.splice(0).reverse()) await cleanup()
    await this.relay.close()
    if (this.dir) rmSync(this.dir, { recursive: true, force: true })
  }

  private storage(kind: string, store: 'sqlite' | 'memory' = 'sqlite'): { storage: StorageAdapter; path: string | undefined } {
    if (store === 'memory') return { storage: memoryStorage(), path: undefined }
    const path = this.sqlitePath(kind)
    const storage = sqliteStorage({ path })
    this.cleanups.push(() => storage.close())
    return { storage, path }
  }

  private track(input: Omit<FixtureDevice, 'rejected' | 'held' | 'lags'>): FixtureDevice {
    const device: FixtureDevice = { ...input, rejected: [], held: [], lags: [] }
    device.dev.on('rejected', (e) => device.rejected.push(e))
    device.dev.on('held', (e) => device.held.push(e))
    device.dev.on('sync-lag', (e) => device.lags.push(e))
    this.devices.add(device)
    return device
  }
}

/** The scope key of one epoch, derived from the account root (tests only). */
export function scopeKey(account: Account, scope: string, epoch: number): Uint8Array {
  const key = ownerKeyring(accountKeys(account)).epochKey(scope, epoch)
  if (!key) throw new Error(`no key for ${scope} epoch ${epoch}`)
  return key
}

/** The first of `envelopes` whose content (decrypted with the account's keys) holds `marker`. */
export function envelopeWith(account: Account, scope: string, envelopes: EnvelopeInfo[], marker: string): EnvelopeInfo | undefined {
  const keyring = ownerKeyring(accountKeys(account))
  const roomId = keyring.roomId(scope)
  return envelopes.find((e) => {
    if (!e.header) return false
    const key = keyring.epochKey(scope, e.header.epoch)
    const content = key ? contentOf(e.bytes, roomId, [key]) : undefined
    return content !== undefined && Buffer.from(content).includes(marker)
  })
}

/**
 * Every key a device holds for one epoch of a scope (none when it cannot even name the scope's
 * room any more).
 */
export function heldKeys(dev: ContextSync, scope: string, epoch: number): Uint8Array[] {
  try {
    return keyringOf(dev).openingKeys(scope, epoch)
  } catch {
    return []
  }
}

/** The envelopes among `envelopes` whose content, opened with `dev`'s own keys, holds `marker`. */
export function envelopesOpenedBy(dev: ContextSync, scope: string, roomId: string, envelopes: EnvelopeInfo[], marker: string): EnvelopeInfo[] {
  return envelopes.filter((e) => {
    if (!e.header) return false
    const content = contentOf(e.bytes, roomId, heldKeys(dev, scope, e.header.epoch))
    return content !== undefined && Buffer.from(content).includes(marker)
  })
}

/** Total bytes of the chunks a store keeps under a key prefix. */
export async function storedBytes(storage: StorageAdapter, prefix: string[]): Promise<number> {
  let total = 0
  for (const chunk of await storage.loadRange(prefix)) total += chunk.data.length
  return total
}

/** Rejections of one code in what a device reported. */
export function rejectionsOf(device: FixtureDevice, code: number): RejectedEvent[] {
  return device.rejected.filter((e) => e.code === code)
}
