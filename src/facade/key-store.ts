/**
 * Reading and writing a device's key records (`keys/device`, `keys/account`) through the app's
 * {@link KeyProtector} (src/crypto/key-protector.ts). Without a protector records are read and
 * written plain, as stores made before protectors were; a store opened with a protector that holds
 * plain records is migrated at once (both records rewritten wrapped, in one batch).
 *
 * @module
 */
import type { StorageAdapter, StorageKey } from '../adapters/storage.js'
import { decodeStoredKeyRecord, encodeStoredKeyRecord, PLAIN_KIND, type KeyProtector } from '../crypto/key-protector.js'
import { ConfigError, ContextSyncError } from '../errors.js'

/** One record as loaded: its plain bytes, and whether it must be rewritten under the protector. */
export interface LoadedKeyRecord {
  record: Uint8Array
  migrate: boolean
}

/** Load and unwrap the record at `key`; `undefined` when the store has none. */
export async function loadKeyRecord(storage: StorageAdapter, key: StorageKey, label: string, protector: KeyProtector | undefined): Promise<LoadedKeyRecord | undefined> {
  const stored = await storage.load(key)
  if (!stored) return undefined
  const decoded = decodeStoredKeyRecord(stored)
  if (!decoded) throw new ConfigError(`the ${label} key record in this store is corrupt; wipe the store and enrol the device again`)
  if ('record' in decoded) return { record: decoded.record, migrate: protector !== undefined && protector.kind !== PLAIN_KIND }
  if (!protector) {
    throw new ConfigError(`this store's keys are protected (${decoded.kind}): open it with the same protector, e.g. keys: passphraseKeys(passphrase)`)
  }
  if (protector.kind !== decoded.kind) {
    throw new ConfigError(`this store's keys are protected by '${decoded.kind}', not '${protector.kind}'`)
  }
  try {
    return { record: await protector.unwrap(decoded.wrapped, label), migrate: false }
  } catch (error) {
    if (error instanceof ContextSyncError) throw error
    throw new ConfigError(`the key protector '${protector.kind}' could not unlock this device's ${label} keys: ${error instanceof Error ? error.message : String(error)}`)
  }
}

/**
 * Save several records in one tick (wrapping first), so a batching adapter commits them together:
 * the device record marks a store as enrolled and is only read back with the account record.
 */
export async function saveKeyRecords(storage: StorageAdapter, records: Array<{ key: StorageKey; label: string; record: Uint8Array }>, protector: KeyProtector | undefined): Promise<void> {
  const kind = protector?.kind ?? PLAIN_KIND
  const encoded = await Promise.all(
    records.map(async ({ record, label }) => encodeStoredKeyRecord(kind, protector && kind !== PLAIN_KIND ? await protector.wrap(record, label) : record)),
  )
  await Promise.all(records.map(({ key }, i) => storage.save(key, encoded[i]!)))
}
