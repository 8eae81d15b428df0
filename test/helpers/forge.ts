/**
 * What an attacker holding a device (or its disk) can do with raw bytes, for the attack tests:
 * read its keys, see what its keyring opens, and seal envelopes and inner-doc updates as it would.
 */
import * as Y from 'yjs'
import type { ContextSync, StorageAdapter } from '../../src/index.js'
import { insertMemory } from '../../src/crdt/memory.js'
import {
  decodeDeviceKeys,
  decryptEnvelope,
  EnvelopeType,
  parseEnvelope,
  sealEnvelope,
  type DeviceKeyring,
  type DeviceKeys,
} from '../../src/crypto/index.js'
import { decodeSnapshot } from '../../src/sync/snapshot.js'

/** The device keys in a device's store (what an attacker holding its disk, or the device, has). */
export async function deviceKeysOf(storage: StorageAdapter): Promise<DeviceKeys> {
  const bytes = await storage.load(['keys', 'device'])
  if (!bytes) throw new Error('no device keys in this store')
  const keys = decodeDeviceKeys(bytes)
  if (!keys.ok) throw new Error(`device keys do not decode: ${keys.reason}`)
  return keys.value
}

/** A running device's keyring (private in `ContextSync`; tests ask what it could decrypt). */
export function keyringOf(dev: ContextSync): DeviceKeyring {
  return (dev as unknown as { keyring: DeviceKeyring }).keyring
}

/** A Yjs update that inserts one memory into a scope's inner doc (the plaintext of a forged update). */
export function memoryUpdate(item: { id: string; text: string; scope: string; sourceDeviceId: string; kind?: 'fact' | 'instruction' }): Uint8Array {
  const doc = new Y.Doc()
  const now = Date.now()
  doc.transact(() =>
    insertMemory(doc, {
      id: item.id,
      text: item.text,
      scope: item.scope,
      kind: item.kind ?? 'fact',
      tags: [],
      createdAt: now,
      updatedAt: now,
      source: { deviceId: item.sourceDeviceId },
    }),
  )
  const update = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return update
}

/** Seal an envelope as `keys` (a device's stolen keys) would. */
export function forgeEnvelope(input: {
  keys: DeviceKeys
  roomId: string
  type?: EnvelopeType
  epoch: number
  seq: number
  key: Uint8Array
  plaintext: Uint8Array
}): Uint8Array {
  return sealEnvelope({
    roomId: input.roomId,
    type: input.type ?? EnvelopeType.Update,
    epoch: input.epoch,
    seq: input.seq,
    sender: input.keys.deviceIdBytes,
    signSecretKey: input.keys.signSecretKey,
    key: input.key,
    plaintext: input.plaintext,
  })
}

/** The plaintext of an envelope under any of `keys` (a snapshot's inner state for snapshots). */
export function contentOf(bytes: Uint8Array, roomId: string, keys: Uint8Array[]): Uint8Array | undefined {
  const parsed = parseEnvelope(bytes)
  if (!parsed.ok) return undefined
  for (const key of keys) {
    const plaintext = decryptEnvelope(parsed.value, roomId, key)
    if (!plaintext) continue
    return parsed.value.type === EnvelopeType.Snapshot ? (decodeSnapshot(plaintext)?.state ?? plaintext) : plaintext
  }
  return undefined
}

/** True when one of `keys` opens the envelope (bound to `roomId`). */
export function opensWithAny(bytes: Uint8Array, roomId: string, keys: Uint8Array[]): boolean {
  return contentOf(bytes, roomId, keys) !== undefined
}
