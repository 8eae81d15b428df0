/**
 * Replicas on their own, without a device around them: one account (an owner keyring that holds
 * the personal room's key), two certified devices that can seal, a directory that knows them, and
 * a way to carry one replica's sealed log to another. Every replica it opens is closed after the
 * test that opened it (`onTestFinished`), so a failing test leaves no timer behind.
 */
import { onTestFinished } from 'vitest'
import * as Y from 'yjs'
import { memoryStorage } from '../../src/adapters/memory-storage.js'
import type { StorageAdapter } from '../../src/adapters/storage.js'
import { createAccountKeys, createDeviceKeys, ownerKeyring, randomBytes, type DeviceKeys } from '../../src/crypto/index.js'
import { Replica, type RejectedEvent, type ReplicaOptions, type SenderDirectory, type SenderStatus } from '../../src/sync/replica.js'

/** One account's keys and the devices of a replica test. */
export interface ReplicaWorld {
  roomId: string
  phone: DeviceKeys
  pc: DeviceKeys
  /** Who the directory knows, by device id; change it to un-know or revoke someone. */
  senders: Map<string, SenderStatus>
  directory: SenderDirectory
  /** Open (and load) a replica of the personal scope sealing as `device`; closed after the test. */
  open(device: DeviceKeys | undefined, options?: Partial<ReplicaOptions> & { storage?: StorageAdapter }): Promise<OpenReplica>
}

/** A loaded replica with what it reported. */
export interface OpenReplica {
  replica: Replica
  storage: StorageAdapter
  rejected: RejectedEvent[]
  held: RejectedEvent[]
}

/** A fresh account with two known devices (call after `ready()`). */
export function replicaWorld(): ReplicaWorld {
  const account = createAccountKeys()
  const keyring = ownerKeyring(account)
  const phone = createDeviceKeys()
  const pc = createDeviceKeys()
  const senders = new Map<string, SenderStatus>([
    [phone.deviceId, { status: 'known', signPublicKey: phone.signPublicKey }],
    [pc.deviceId, { status: 'known', signPublicKey: pc.signPublicKey }],
  ])
  const directory: SenderDirectory = {
    resolve: (senderId) => senders.get(senderId) ?? { status: 'unknown' },
    revoked: (senderId) => senders.get(senderId)?.status === 'revoked',
  }
  const atRestKeys = new Map<string, Uint8Array>()
  return {
    roomId: keyring.roomId('personal'),
    phone,
    pc,
    senders,
    directory,
    async open(device, options = {}) {
      const storage = options.storage ?? memoryStorage()
      const who = device?.deviceId ?? 'read-only'
      if (!atRestKeys.has(who)) atRestKeys.set(who, randomBytes(32))
      const replica = new Replica({
        scope: 'personal',
        roomId: keyring.roomId('personal'),
        keyring,
        directory,
        storage,
        atRestKey: atRestKeys.get(who)!,
        ...(device && { signer: { sender: device.deviceIdBytes, senderId: device.deviceId, signSecretKey: device.signSecretKey } }),
        ...options,
      })
      const opened: OpenReplica = { replica, storage, rejected: [], held: [] }
      replica.events.on('rejected', (event) => opened.rejected.push(event))
      replica.events.on('held', (event) => opened.held.push(event))
      await replica.load()
      onTestFinished(() => replica.close())
      return opened
    },
  }
}

/** Carry everything `from`'s sealed log holds that `to`'s lacks, as a transport would. */
export function carry(from: Replica, to: Replica): void {
  Y.applyUpdate(to.outer, Y.encodeStateAsUpdate(from.outer, Y.encodeStateVector(to.outer)), 'test transport')
}

/** The text stored under `key` in a replica's inner doc (the tests write a plain Y.Map). */
export function note(replica: Replica, key: string): unknown {
  return replica.inner.getMap('notes').get(key)
}

/** Write `value` under `key` as a local change. */
export function write(replica: Replica, key: string, value: string): void {
  replica.inner.transact(() => replica.inner.getMap('notes').set(key, value))
}
