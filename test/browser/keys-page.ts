/**
 * Page for test/browser/keys.test.ts (bundled for the browser): enrols an owner device on
 * IndexedDB with `webCryptoKeys`, then reports — without ever printing them — whether the seeds
 * appear in any IndexedDB record, whether the store reopens with the protector and not without
 * it, and what kind of key the browser kept. The result lands in `window.__keysResult`.
 */
import { ContextSync, createAccount } from '../../src/index.js'
import { indexedDbStorage, webCryptoKeys } from '../../src/entries/idb.js'
import { decodeAccountKeys, decodeDeviceKeys, decodeStoredKeyRecord } from '../../src/crypto/index.js'

interface KeysResult {
  recordKinds: string[]
  seedsInRecords: number
  reopenedAsSelf: boolean
  withoutProtector: string
  keyExtractable: boolean | string
  error?: string
}

const request = <T>(r: IDBRequest<T>): Promise<T> => new Promise((resolve, reject) => ((r.onsuccess = () => resolve(r.result)), (r.onerror = () => reject(r.error))))

/** Every byte of every record of every IndexedDB database of this origin. */
async function allRecordBytes(): Promise<Uint8Array[]> {
  const out: Uint8Array[] = []
  for (const { name } of await indexedDB.databases()) {
    const db = await request(indexedDB.open(name!))
    for (const store of Array.from(db.objectStoreNames)) {
      const values = await request(db.transaction(store, 'readonly').objectStore(store).getAll())
      for (const value of values) {
        if (value instanceof Uint8Array || value instanceof ArrayBuffer) out.push(new Uint8Array(value as ArrayBufferLike))
        else if (typeof value === 'object' && value !== null && !(value instanceof CryptoKey)) out.push(new TextEncoder().encode(JSON.stringify(value)))
      }
    }
    db.close()
  }
  return out
}

function contains(haystack: Uint8Array, needle: Uint8Array): boolean {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer
    return true
  }
  return false
}

async function run(): Promise<KeysResult> {
  const storage = indexedDbStorage({ name: 'keys-page-store' })
  const keys = webCryptoKeys({ name: 'keys-page-keys' })
  const dev = await ContextSync.open({ account: await createAccount(), device: { kind: 'glasses' }, storage, keys })
  const deviceId = dev.deviceId
  await dev.close()

  // What the protector unwraps: the seeds a dump must not contain.
  const probe = indexedDbStorage({ name: 'keys-page-store' })
  const seeds: Uint8Array[] = []
  const recordKinds: string[] = []
  for (const label of ['device', 'account'] as const) {
    const stored = decodeStoredKeyRecord((await probe.load(['keys', label]))!)!
    recordKinds.push(stored.kind)
    const record = 'record' in stored ? stored.record : await keys.unwrap(stored.wrapped, label)
    if (label === 'device') {
      const device = decodeDeviceKeys(record)
      if (device.ok) seeds.push(device.value.seeds.sign, device.value.seeds.box)
    } else {
      const account = decodeAccountKeys(record)
      if (account.ok && account.value.rootSeed) seeds.push(account.value.rootSeed)
    }
  }
  await probe.close?.()
  const records = await allRecordBytes()
  const seedsInRecords = seeds.filter((seed) => records.some((bytes) => contains(bytes, seed))).length + (seeds.length === 3 ? 0 : 100)

  let withoutProtector = 'opened'
  try {
    const plain = await ContextSync.open({ storage: indexedDbStorage({ name: 'keys-page-store' }) })
    await plain.close()
  } catch (error) {
    withoutProtector = `${(error as Error).name}: ${(error as Error).message}`
  }
  const again = await ContextSync.open({ storage: indexedDbStorage({ name: 'keys-page-store' }), keys: webCryptoKeys({ name: 'keys-page-keys' }) })
  const reopenedAsSelf = again.deviceId === deviceId
  await again.close()

  const db = await request(indexedDB.open('keys-page-keys'))
  const cryptoKey = (await request(db.transaction('keys', 'readonly').objectStore('keys').get('wrapping-key'))) as CryptoKey | undefined
  db.close()
  return { recordKinds, seedsInRecords, reopenedAsSelf, withoutProtector, keyExtractable: cryptoKey ? cryptoKey.extractable : 'missing' }
}

const target = window as unknown as { __keysResult?: KeysResult }
run().then(
  (result) => (target.__keysResult = result),
  (error: unknown) => (target.__keysResult = { recordKinds: [], seedsInRecords: -1, reopenedAsSelf: false, withoutProtector: '', keyExtractable: 'error', error: String(error) }),
)
