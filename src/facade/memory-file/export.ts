/**
 * `memory.export`: a scope's memories as a signed JSONL file (format in `format.ts`), signed by
 * this device with the certificate the registry holds for it, so the file verifies on its own.
 *
 * @module
 */
import { memoriesMap, readMemory, type MemoryItem } from '../../crdt/memory.js'
import { ConfigError } from '../../errors.js'
import type { Replica } from '../../sync/replica.js'
import type { DeviceIdentity } from '../device-context.js'
import { ownCertificateBytes } from '../identity.js'
import { randomId } from '../ids.js'
import { isExpired } from '../memory-input.js'
import type { MemoryExport } from '../memory-types.js'
import { headerLine, memoryLine, type ExportSigner } from './format.js'

/** This device as the signer of an export; throws `ConfigError` before its certificate is in the registry. */
export function exportSigner(identity: DeviceIdentity): ExportSigner {
  const certificate = ownCertificateBytes(identity)
  if (!certificate) throw new ConfigError("this device's certificate has not reached its registry yet; try again once it has synced")
  return {
    accountId: identity.account.accountId,
    rootPublicKey: identity.account.rootPublicKey,
    deviceId: identity.device.deviceId,
    signPublicKey: identity.device.signPublicKey,
    signSecretKey: identity.device.signSecretKey,
    certificate,
  }
}

/**
 * The export of `replica`'s memories as they are now, oldest first; without `includeHistory`,
 * superseded versions are left out. Expired items never are exported.
 */
export function exportScope(replica: Replica, signer: ExportSigner, includeHistory: boolean): MemoryExport {
  const now = Date.now()
  const items: MemoryItem[] = []
  memoriesMap(replica.inner).forEach((map, id) => {
    const item = readMemory(id, map, replica.scope)
    if (item && !isExpired(item, now) && (includeHistory || item.supersededBy === undefined)) items.push(item)
  })
  items.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1))
  async function* lines(): AsyncGenerator<string> {
    const exportId = randomId()
    yield headerLine(signer, replica.scope, items.length, now, exportId)
    let index = 0
    for (const item of items) yield memoryLine(signer, item, { exportId, index: ++index })
  }
  return {
    [Symbol.asyncIterator]: lines,
    text: async () => {
      let out = ''
      for await (const line of lines()) out += line
      return out
    },
  }
}
