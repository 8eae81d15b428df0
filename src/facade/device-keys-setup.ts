/**
 * This device's key records in its store: loading them, creating them on first open, and wiping
 * an account's store (README "Keys at rest").
 *
 * @module
 */
import { type StorageAdapter } from '../adapters/storage.js'
import {
  accountKeysFromPublicKey,
  createDeviceKeys,
  decodeAccountKeys,
  decodeDeviceKeys,
  encodeAccountKeys,
  encodeDeviceKeys,
  type AccountKeys,
  type DeviceKeys,
} from '../crypto/index.js'
import { ConfigError, ValidationError } from '../errors.js'
import { Account, accountKeys } from './account.js'
import { loadKeyRecord, saveKeyRecords } from './key-store.js'
import { requestedProfile, type DeviceProfile } from './builtin-scopes.js'
import { requireObject } from './check-args.js'
import type { OpenOptions } from './context-sync-options.js'
import { requireKeyProtector } from './context-sync-options.js'

/** Where the device's and the account's key records live in the store. */
export const KEY_DEVICE = ['keys', 'device']
export const KEY_ACCOUNT = ['keys', 'account']

type Profile = DeviceProfile


/**
 * Remove every key and every replica of the store's account: key records first (what is left
 * without them is ciphertext under keys derived from the device seed), then everything else, then
 * a scrub so no page of the files keeps an old record.
 */
export async function wipeAccount(storage: StorageAdapter): Promise<void> {
  await storage.removeRange(['keys'])
  await storage.removeRange([])
  await storage.scrub?.()
}


/** Load this device's keys (and profile) from the store, or create and save them on first open. */
export async function loadOrCreateIdentity(
  storage: StorageAdapter,
  options: OpenOptions,
): Promise<{ device: DeviceKeys; account: AccountKeys; profile?: Profile; requested?: Profile }> {
  const keys = requireKeyProtector(options.keys)
  const [deviceRecord, accountRecord] = await Promise.all([
    loadKeyRecord(storage, KEY_DEVICE, 'device', keys),
    loadKeyRecord(storage, KEY_ACCOUNT, 'account', keys),
  ])
  // After the load, so a store whose records are protected says by what (loadKeyRecord).
  if (!keys) requireKeysForDurable(storage)
  const deviceBytes = deviceRecord?.record
  const accountBytes = accountRecord?.record
  const requested = requestedProfile(options.device)
  if (deviceBytes && accountBytes) {
    const device = decodeDeviceKeys(deviceBytes)
    const account = decodeAccountKeys(accountBytes)
    if (!device.ok || !account.ok) throw new ConfigError('the key material in this store is corrupt; wipe the store and enrol the device again')
    // Plain records opened with a protector: rewrite both wrapped, now.
    if (deviceRecord.migrate || accountRecord.migrate) {
      await saveKeyRecords(
        storage,
        [
          { key: KEY_ACCOUNT, label: 'account', record: accountBytes },
          { key: KEY_DEVICE, label: 'device', record: deviceBytes },
        ],
        keys,
      )
      // The plain records' old bytes must not outlive them in the files (a WAL's page images).
      await storage.scrub?.()
    }
    if (options.account && accountKeys(options.account).accountId !== account.value.accountId) {
      throw new ConfigError(
        `this store belongs to account ${account.value.accountId}, not ${options.account.accountId}; use a fresh store to enrol in another account`,
      )
    }
    // Kind and name are not stored in the clear: they come back from the device's own
    // certificate in the (sealed) registry once it is loaded.
    return { device: device.value, account: account.value, ...(requested && { requested }) }
  }
  if (deviceBytes) throw new ConfigError('this store holds partial key material; wipe it and enrol the device again')
  // Only the account was stored (a crash during the first open): enrolling again replaces it.
  if (!options.account) {
    throw new ConfigError('this store holds no device yet: pass `account` (and `device`) to enrol an owner device, or use ContextSync.join with an invite')
  }
  if (!(options.account instanceof Account)) throw new ValidationError('account must come from createAccount()')
  const account = accountKeys(options.account)
  if (!account.rootSeed) throw new ConfigError('this Account holds no root key; add devices to it with an invite instead')
  const profile = requestedProfile(requireObject(options.device, 'device'))!
  if (accountBytes) {
    const stored = decodeAccountKeys(accountBytes)
    if (!stored.ok || stored.value.accountId !== account.accountId) {
      throw new ConfigError('this store holds partial key material of another account; wipe it and enrol the device again')
    }
  }
  const device = createDeviceKeys()
  // Both saves are issued in the same tick, so a batching adapter (SQLite) commits them together;
  // the device key is what marks a store as enrolled, and it is only read back with the account.
  await saveKeyRecords(
    storage,
    [
      { key: KEY_ACCOUNT, label: 'account', record: encodeAccountKeys(account.rootSeed ? account : accountKeysFromPublicKey(account.rootPublicKey)) },
      { key: KEY_DEVICE, label: 'device', record: encodeDeviceKeys(device) },
    ],
    keys,
  )
  return { device, account, profile }
}

/**
 * A durable store must be told how its key records are protected — plain records only when asked
 * for by name (`plainKeys()`) — because whoever copies its files would otherwise hold the
 * device's seeds (and on owners the account root). Only a store that keeps nothing beyond the
 * process (`durable: false`, `memoryStorage()`) may leave `keys` out.
 */
export function requireKeysForDurable(storage: StorageAdapter): void {
  if (storage.durable === false) return
  throw new ConfigError(
    'this store is durable, so say how its keys are protected: keys: passphraseKeys(passphrase), a platform keystore (README "Keys at rest"), or plainKeys() to store them unprotected',
  )
}
