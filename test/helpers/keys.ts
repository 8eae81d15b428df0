/**
 * Helpers for the key-management tests (revocation cutoffs, narrowing, rotation races, epoch
 * freshness): pair members, act as a relay or a revoked device with raw bytes, and ask what a
 * device's keyring can open.
 */
import * as Y from 'yjs'
import {
  ContextSync,
  memoryStorage,
  type LoopbackNetwork,
  type StorageAdapter,
  type SyncOptions,
  type Transport,
} from '../../src/index.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import { insertMemory } from '../../src/crdt/memory.js'
import {
  decodeDeviceKeys,
  decryptEnvelope,
  EnvelopeType,
  parseEnvelope,
  REGISTRY_SCOPE,
  sealEnvelope,
  type DeviceKeyring,
  type DeviceKeys,
} from '../../src/crypto/index.js'
import { decodeSnapshot } from '../../src/sync/snapshot.js'

/** A member device paired through the network, with what a test needs to restart or attack it. */
export interface Member {
  dev: ContextSync
  storage: StorageAdapter
  transport: Transport
}

/** Pair a member with `owner` (invite + join over `net`). */
export async function pairMember(
  owner: ContextSync,
  net: LoopbackNetwork,
  kind: 'car' | 'glasses' | 'pc' | 'other' | 'phone',
  options: { scopes?: string[]; name?: string; sync?: SyncOptions; transport?: Transport } = {},
): Promise<Member> {
  const name = options.name ?? `Member ${kind}`
  const transport = options.transport ?? net.transport({ name })
  const invite = await owner.devices.invite({ kind, name, ...(options.scopes && { scopes: options.scopes }) })
  const storage = memoryStorage()
  const dev = await ContextSync.join({
    invite: invite.code,
    device: { kind, name },
    storage,
    transports: [transport],
    timeoutMs: 20_000,
    ...(options.sync && { sync: options.sync }),
  })
  return { dev, storage, transport }
}

/** The device keys kept in a device's store (what a thief of the revoked device holds). */
export async function storedDeviceKeys(storage: StorageAdapter): Promise<DeviceKeys> {
  const decoded = decodeDeviceKeys((await storage.load(['keys', 'device']))!)
  if (!decoded.ok) throw new Error('fixture: no device keys in store')
  return decoded.value
}

/** The keyring of a running device (internal; the tests inspect what it could decrypt). */
export function keyringOf(dev: ContextSync): DeviceKeyring {
  return (dev as unknown as { keyring: DeviceKeyring }).keyring
}

/**
 * Every key a device's keyring holds for a scope's room, over every epoch up to the current one
 * — what an attacker holding the device could try, whatever the device itself would use.
 */
export function everyKeyHeld(dev: ContextSync, scope: string): Uint8Array[] {
  const keyring = keyringOf(dev) as DeviceKeyring & { heldKeys?: (scope: string) => Uint8Array[] }
  if (typeof keyring.heldKeys === 'function') return keyring.heldKeys(scope)
  // Builds without heldKeys held one key per epoch.
  const out: Uint8Array[] = []
  for (let epoch = 0; epoch <= keyring.currentEpoch(scope); epoch++) {
    const key = keyring.epochKey(scope, epoch)
    if (key) out.push(key)
  }
  return out
}

/** An inner-doc update adding one readable memory (what a forger would seal). */
export function memoryUpdate(id: string, text: string, scope: string, deviceId: string): Uint8Array {
  const doc = new Y.Doc()
  const now = Date.now()
  insertMemory(doc, { id, text, scope, kind: 'fact', tags: [], createdAt: now, updatedAt: now, source: { deviceId } })
  return Y.encodeStateAsUpdate(doc)
}

/** Seal an update envelope with a device's own keys (a revoked device forging). */
export function forgeUpdate(keys: DeviceKeys, roomId: string, epoch: number, seq: number, key: Uint8Array, plaintext: Uint8Array): Uint8Array {
  return sealEnvelope({
    roomId,
    type: EnvelopeType.Update,
    epoch,
    seq,
    sender: keys.deviceIdBytes,
    signSecretKey: keys.signSecretKey,
    key,
    plaintext,
  })
}

/** Append bytes to a device's sealed log as the relay would deliver them. */
export function inject(dev: ContextSync, scope: string, bytes: Uint8Array): void {
  const outer = dev.replica(scope)!.outer
  Y.transact(outer, () => sealedLog(outer).push([bytes]), 'relay')
}

/** True when any of `keys` opens an envelope of `doc`'s sealed log whose plaintext contains `marker`. */
export function anyKeyReads(doc: Y.Doc, roomId: string, keys: Uint8Array[], marker: string): boolean {
  for (const bytes of sealedLog(doc).toArray()) {
    const parsed = parseEnvelope(bytes)
    if (!parsed.ok) continue
    for (const key of keys) {
      const plaintext = decryptEnvelope(parsed.value, roomId, key)
      if (!plaintext) continue
      const state = parsed.value.type === EnvelopeType.Snapshot ? (decodeSnapshot(plaintext)?.state ?? plaintext) : plaintext
      if (Buffer.from(state).includes(marker)) return true
    }
  }
  return false
}

/** True when some key in `keys` equals `key`. */
export function holdsKey(keys: Uint8Array[], key: Uint8Array | undefined): boolean {
  return key !== undefined && keys.some((k) => Buffer.from(k).equals(Buffer.from(key)))
}

/** The registry scope name, re-exported for readability in tests. */
export const REGISTRY = REGISTRY_SCOPE

/** Flush every device and settle the network, `rounds` times, letting timers run in between. */
export async function settleAll(devices: ContextSync[], net: LoopbackNetwork, rounds = 8): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await Promise.all(devices.map((d) => d.flush().catch(() => undefined)))
    await net.settle()
    await new Promise((r) => setTimeout(r, 5))
  }
}

/**
 * Re-seal every scope a device holds under its current epoch (a compaction): what writers do
 * when their sealing epoch moves, so envelopes a peer could not open (sealed under another
 * owner's concurrent start before it knew of it) reach it again inside the snapshot.
 */
export async function resealAll(devices: ContextSync[]): Promise<void> {
  for (const dev of devices) {
    for (const scope of dev.scopes.available()) await dev.replica(scope)?.compactNow()
  }
}
