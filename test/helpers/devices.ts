/**
 * Test helpers: open devices on a loopback network, wait for convergence, and read or decrypt
 * everything a device holds.
 */
import * as Y from 'yjs'
import {
  ContextSync,
  memoryStorage,
  type Account,
  type LoopbackNetwork,
  type StorageAdapter,
  type DeviceKind,
  type Transport,
} from '../../src/index.js'
import { accountKeys } from '../../src/facade/account.js'
import { ownerKeyring, parseEnvelope, EnvelopeType, REGISTRY_SCOPE } from '../../src/crypto/index.js'
import { aeadDecrypt } from '../../src/crypto/primitives.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import { decodeSnapshot } from '../../src/sync/snapshot.js'
import * as encoding from 'lib0/encoding'

/** Scopes that sync (all but `local`) plus the registry. */
export const SYNCED_SCOPES = ['personal', 'health', 'payments', 'location', 'work']

export interface TestDevice {
  dev: ContextSync
  storage: StorageAdapter
  kind: DeviceKind
  transport: Transport
}

let deviceCounter = 0

export async function openDevice(
  account: Account,
  net: LoopbackNetwork,
  kind: DeviceKind,
  storage: StorageAdapter = memoryStorage(),
  options: Partial<Parameters<typeof ContextSync.open>[0]> = {},
): Promise<TestDevice> {
  const transport = net.transport({ name: `${kind}-${++deviceCounter}` })
  const dev = await ContextSync.open({
    account,
    device: { kind, name: `Test ${kind}` },
    storage,
    transports: [transport],
    ...options,
  })
  return { dev, storage, kind, transport }
}

/** Flush every device and settle the network until nothing changes any more. */
export async function converge(devices: ContextSync[], net: LoopbackNetwork, rounds = 5): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await Promise.all(devices.map((d) => d.flush()))
    await net.settle()
    await new Promise((r) => setTimeout(r, 0))
  }
}

/**
 * The full inner state of every scope (or of `scopes`), as JSON (memories and sessions, every
 * field). Devices of different kinds hold different scopes; compare the ones they share.
 */
export function innerState(dev: ContextSync, scopes: string[] = dev.scopes.available()): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const scope of scopes) {
    const replica = dev.replica(scope)
    if (!replica) throw new Error(`${dev.kind} does not hold scope ${scope}`)
    const inner = replica.inner
    out[scope] = { memories: inner.getMap('memories').toJSON(), sessions: inner.getMap('sessions').toJSON() }
  }
  return out
}

/** Every envelope in a device's sealed log for `scope`, decrypted with the account's keys. */
export function decryptLog(doc: Y.Doc, account: Account, scope: string): Array<{ type: number; plaintext: Uint8Array }> {
  const keyring = ownerKeyring(accountKeys(account))
  const roomId = keyring.roomId(scope)
  const out: Array<{ type: number; plaintext: Uint8Array }> = []
  for (const bytes of sealedLog(doc).toArray()) {
    const parsed = parseEnvelope(bytes)
    if (!parsed.ok) continue
    const key = keyring.epochKey(scope, parsed.value.epoch)
    if (!key) continue
    const enc = encoding.createEncoder()
    encoding.writeVarString(enc, 'contextsync/v1/envelope')
    encoding.writeVarString(enc, roomId)
    encoding.writeUint8Array(enc, bytes.subarray(0, parsed.value.headerEnd))
    const plaintext = aeadDecrypt(parsed.value.ciphertext, encoding.toUint8Array(enc), parsed.value.nonce, key)
    if (plaintext) out.push({ type: parsed.value.type, plaintext })
  }
  return out
}

/** True when any decrypted envelope of the log (update bytes or snapshot state) contains `marker`. */
export function logContains(doc: Y.Doc, account: Account, scope: string, marker: string): boolean {
  for (const { type, plaintext } of decryptLog(doc, account, scope)) {
    const bytes = type === EnvelopeType.Snapshot ? (decodeSnapshot(plaintext)?.state ?? plaintext) : plaintext
    if (Buffer.from(bytes).includes(marker)) return true
  }
  return false
}

/** Room id of a scope (the registry with `@registry`). */
export function roomOf(account: Account, scope: string): string {
  return ownerKeyring(accountKeys(account)).roomId(scope === 'registry' ? REGISTRY_SCOPE : scope)
}

/** Every chunk a storage adapter holds, concatenated (for byte searches). */
export async function storageBytes(storage: StorageAdapter): Promise<Buffer> {
  const parts: Buffer[] = []
  for (const prefix of [['keys'], ['replica']]) {
    for (const chunk of await storage.loadRange(prefix)) parts.push(Buffer.from(chunk.data))
  }
  return Buffer.concat(parts)
}
