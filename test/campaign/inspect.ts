/**
 * Reading what a store, a device or the relay holds, the way someone with keys would: every
 * envelope in a Yjs update or doc (deleted-but-still-stored ones included), every replica
 * checkpoint opened with the device's at-rest key, decrypted with whatever keys are given.
 *
 * Envelopes are taken from the *structs* of each stored chunk, not from a doc rebuilt from the
 * chunks: a chunk written before a deletion still holds the deleted envelope's bytes until the
 * store's next full rewrite (WIRE.md "Device store layout"), and those bytes are on the disk.
 *
 * @module
 */
import * as Y from 'yjs'
import type { StorageAdapter } from '../../src/index.js'
import {
  decodeAccountKeys,
  decodeDeviceKeys,
  decryptEnvelope,
  DeviceKeyring,
  EnvelopeType,
  parseEnvelope,
  type ParsedEnvelope,
} from '../../src/crypto/index.js'
import { openCheckpoint } from '../../src/sync/checkpoint.js'
import { decodeSnapshot } from '../../src/sync/snapshot.js'

/** Keys to try for one envelope: every key known for that room and epoch. */
export type KeySource = (roomId: string, epoch: number) => Uint8Array[]

/** One envelope found somewhere. */
export interface FoundEnvelope {
  roomId: string
  bytes: Uint8Array
  envelope: ParsedEnvelope
  /** Where it was found (for failure messages): `relay`, `phone log`, `phone store`… */
  where: string
}

/** What one device's store holds. */
export interface StoreContents {
  envelopes: FoundEnvelope[]
  /** Opened checkpoint states (inner-doc updates), by room. */
  checkpointStates: Array<{ roomId: string; state: Uint8Array }>
  /** Checkpoints that did not open with the device's at-rest key. */
  unopenedCheckpoints: string[]
  /** Sealed-log chunks that are not Yjs updates. */
  unparsedChunks: string[]
  /** Every stored byte, concatenated (to find plaintext at rest). */
  raw: Uint8Array
}

/** Every binary value (sealed-log entries, public statements) carried by a Yjs update. */
export function binariesInUpdate(update: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = []
  for (const struct of Y.decodeUpdate(update).structs) {
    if (struct instanceof Y.Item && struct.content instanceof Y.ContentBinary) out.push(struct.content.content)
  }
  return out
}

/** The envelopes among a room's binary values (public statements and junk do not parse). */
function envelopesOf(roomId: string, binaries: Uint8Array[], where: string): FoundEnvelope[] {
  const out: FoundEnvelope[] = []
  for (const bytes of binaries) {
    const parsed = parseEnvelope(bytes)
    if (parsed.ok) out.push({ roomId, bytes, envelope: parsed.value, where })
  }
  return out
}

/** Every envelope a live outer doc retains. */
export function envelopesInDoc(roomId: string, doc: Y.Doc, where: string): FoundEnvelope[] {
  return envelopesOf(roomId, binariesInUpdate(Y.encodeStateAsUpdate(doc)), where)
}

/**
 * Everything a device store holds: envelopes in its sealed-log chunks, and its checkpoints opened
 * with the at-rest key derived from the device keys in the same store (as
 * `DeviceKeyring.atRestKey` does).
 */
export async function readStore(storage: StorageAdapter, where: string): Promise<StoreContents> {
  const contents: StoreContents = { envelopes: [], checkpointStates: [], unopenedCheckpoints: [], unparsedChunks: [], raw: new Uint8Array(0) }
  const chunks = await storage.loadRange([])
  contents.raw = Buffer.concat(chunks.map((c) => c.data))
  const keyring = await keyringOfStore(storage)
  for (const chunk of chunks) {
    const [top, roomId, part] = chunk.key
    if (top !== 'replica' || roomId === undefined) continue
    if (part === 'log') {
      // A chunk that is no Yjs update (a corrupt store) still counts in the raw bytes above.
      let binaries: Uint8Array[] = []
      try {
        binaries = binariesInUpdate(chunk.data)
      } catch {
        contents.unparsedChunks.push(chunk.key.join('/'))
      }
      contents.envelopes.push(...envelopesOf(roomId, binaries, where))
    } else if (part === 'state') {
      const checkpoint = keyring ? openCheckpoint(keyring.atRestKey(roomId), roomId, chunk.data) : undefined
      if (checkpoint) contents.checkpointStates.push({ roomId, state: checkpoint.state })
      else contents.unopenedCheckpoints.push(chunk.key.join('/'))
    }
  }
  return contents
}

/** The device keyring a store's key material yields (for its at-rest keys), if it has any. */
async function keyringOfStore(storage: StorageAdapter): Promise<DeviceKeyring | undefined> {
  const [deviceBytes, accountBytes] = await Promise.all([storage.load(['keys', 'device']), storage.load(['keys', 'account'])])
  if (!deviceBytes || !accountBytes) return undefined
  const device = decodeDeviceKeys(deviceBytes)
  const account = decodeAccountKeys(accountBytes)
  if (!device.ok || !account.ok) return undefined
  return new DeviceKeyring(account.value, device.value.seeds.sign)
}

/**
 * The content of an envelope under the first of `keys` that opens it: an update's Yjs update, a
 * snapshot's inner state. `undefined` when none opens it.
 */
export function contentOf(found: FoundEnvelope, keys: Uint8Array[]): Uint8Array | undefined {
  for (const key of keys) {
    const plaintext = decryptEnvelope(found.envelope, found.roomId, key)
    if (!plaintext) continue
    return found.envelope.type === EnvelopeType.Snapshot ? (decodeSnapshot(plaintext)?.state ?? plaintext) : plaintext
  }
  return undefined
}

/** True when one of `keys` opens the envelope. */
export function opens(found: FoundEnvelope, keys: Uint8Array[]): boolean {
  return keys.some((key) => decryptEnvelope(found.envelope, found.roomId, key) !== undefined)
}

/** A short description of an envelope for failure messages. */
export function describe(found: FoundEnvelope, senderName: (deviceId: string) => string): string {
  const type = found.envelope.type === EnvelopeType.Snapshot ? 'snapshot' : found.envelope.type === EnvelopeType.Update ? 'update' : 'presence'
  return `${type} seq ${found.envelope.seq} epoch ${found.envelope.epoch} from ${senderName(found.envelope.senderId)} in ${found.where}`
}
