/**
 * The first step of opening a device: its registry replica, loaded and verified, and the device's
 * profile — from the store, its own certificate, or what the app asks for (README "How it works").
 * A device whose timed access ended is wiped here, before anything else opens. Also the wait
 * before a fresh owner's scope rooms go online ({@link whenRegistryArrived}).
 *
 * @module
 */
import { type StorageAdapter } from '../adapters/storage.js'
import type { TransportAttachment } from '../adapters/transport.js'
import { DeviceKeyring, REGISTRY_SCOPE, type AccountKeys, type DeviceKeys } from '../crypto/index.js'
import { AccessEndedError, ConfigError } from '../errors.js'
import { Replica } from '../sync/replica.js'
import { passKey } from '../crdt/registry.js'
import { Registry } from './registry.js'
import { defaultName, DEVICE_KINDS, type DeviceKind, type DeviceProfile } from './builtin-scopes.js'
import { replicaOptions, type SyncOptions } from './context-sync-options.js'
import { wipeAccount } from './device-keys-setup.js'

type Profile = DeviceProfile

/** What {@link openRegistry} opened. */
export interface OpenedRegistry {
  keyring: DeviceKeyring
  registryReplica: Replica
  registry: Registry
  profile: Profile
}

/** Open the registry of `identity`'s account on this store, and settle the device's profile. */
export async function openRegistry(
  identity: { device: DeviceKeys; account: AccountKeys; profile?: Profile; requested?: Profile; relayPass?: Uint8Array },
  storage: StorageAdapter,
  sync: SyncOptions,
): Promise<OpenedRegistry> {
  const { device, account } = identity
  const keyring = new DeviceKeyring(account, device.seeds.sign)
  // Registry envelopes are signed with the account root: only owners state things there.
  const registryReplica = new Replica({
    ...replicaOptions(REGISTRY_SCOPE, keyring, storage, sync),
    directory: { resolve: () => ({ status: 'known', signPublicKey: account.rootPublicKey }) },
    ...(account.rootSecretKey && {
      signer: { sender: device.deviceIdBytes, senderId: device.deviceId, signSecretKey: account.rootSecretKey },
    }),
  })
  await registryReplica.load({ compact: false })
  const registry = new Registry(registryReplica, account, device, keyring, {
    ...(sync.epochGraceMs !== undefined && { epochGraceMs: sync.epochGraceMs }),
    ...(sync.repairDelayMs !== undefined && { repairDelayMs: sync.repairDelayMs }),
  })
  if (identity.relayPass) registry.addPublicStatement(passKey(device.deviceId), identity.relayPass)
  const term = registry.term(device.deviceId)
  if (term && registry.termEnded(device.deviceId)) {
    // Switched off before its access ended, started after: nothing of the account may stay.
    registry.close()
    await registryReplica.close()
    await wipeAccount(storage)
    throw new AccessEndedError(`this device's access to account ${account.accountId} ended at ${new Date(term.until).toISOString()}; its keys and data were removed`, term.until)
  }
  const own = registry.certificate(device.deviceId)
  let profile: Profile
  if (identity.profile) profile = identity.profile
  else if (own) {
    const kind = (DEVICE_KINDS as readonly string[]).includes(own.kind) ? (own.kind as DeviceKind) : 'other'
    profile = { kind, name: own.name }
  } else if (identity.requested) {
    // The first open was interrupted after the keys were stored but before the certificate
    // was: finish enrolling with what the app asks for now.
    profile = identity.requested
  } else if (account.rootSecretKey) {
    await registryReplica.close()
    throw new ConfigError('this device was not fully enrolled (interrupted first open): open it again with `device: { kind, name }`')
  } else {
    profile = { kind: 'other', name: defaultName('other') }
  }
  if (account.rootSecretKey) await registry.enrolOwner(profile)
  // Now that the registry told the keyring the current epochs, the registry may compact.
  await registryReplica.compactIfDue()
  return { keyring, registryReplica, registry, profile }
}

/**
 * A device that knows no other device of its account yet (a fresh owner) waits for the
 * registry room to sync — or 2 s — before its scope rooms go online: until the certificates
 * arrive, every envelope there is from an unknown sender, and a large log would overflow the
 * bounded hold of unverified envelopes. `attachments` are the registry room's transports.
 */
export function whenRegistryArrived(registry: Registry, deviceId: string, attachments: readonly TransportAttachment[]): Promise<void> {
  const others = registry.list().some((c) => c.deviceId !== deviceId)
  if (others || attachments.length === 0) return Promise.resolve()
  return new Promise((resolve) => {
    const offs: Array<() => void> = []
    const done = () => {
      clearTimeout(timer)
      for (const off of offs) off()
      resolve()
    }
    const timer = setTimeout(done, 2_000)
    ;(timer as { unref?: () => void }).unref?.()
    for (const attachment of attachments) {
      offs.push(attachment.on('status', ({ status }) => (status === 'synced' ? done() : undefined)))
    }
  })
}
