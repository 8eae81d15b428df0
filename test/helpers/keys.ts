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
import {
  decryptEnvelope,
  EnvelopeType,
  parseEnvelope,
  REGISTRY_SCOPE,
  type DeviceKeyring,
} from '../../src/crypto/index.js'
import { decodeSnapshot } from '../../src/sync/snapshot.js'
import { keyringOf } from './forge.js'

export { keyringOf } from './forge.js'

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
