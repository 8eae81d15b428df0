/**
 * `contextsync/testing` — the shared conformance suites every storage adapter and transport runs
 * (they import vitest), a storage wrapper that fails on demand, and the tools an integrity test
 * attacks a deployment with: a tampering y-websocket relay and the raw sealed-log operations a
 * relay or member device can perform (THREAT_MODEL.md). A new adapter is one file plus a
 * three-line test:
 *
 * ```ts
 * import { runStorageAdapterTests } from 'contextsync/testing'
 * runStorageAdapterTests(async () => ({ adapter: myStorage() }))
 * ```
 *
 * The tampering relay is Node-only (`ws`, `node:http`).
 *
 * @module
 */
export { runStorageAdapterTests, type StorageAdapterTestContext } from '../adapters/storage-conformance.js'
export { runTransportTests, type TransportTestContext } from '../adapters/transport-conformance.js'
export { runRelayStoreTests, type RelayStoreTestContext } from '../relay/store-conformance.js'
export { faultyStorage, type FaultyStorage, type FailNextOptions } from '../adapters/faulty-storage.js'
export {
  TamperOrigin,
  TamperError,
  describeEnvelope,
  listEntries,
  deleteEntries,
  deleteRange,
  truncate,
  wipe,
  injectEntries,
  replayEntries,
  reorderEntries,
  moveEntries,
  listPublicStatements,
  deletePublicStatements,
  setPublicStatement,
  type EnvelopeInfo,
  type SealedLogEntry,
  type PublicStatement,
  type WipeResult,
} from '../testing/sealed-log-tamper.js'
export {
  createTamperingRelay,
  deviceIdOfToken,
  envelopesInUpdate,
  RELEASE_ORIGIN,
  type TamperingRelay,
  type TamperingRelayOptions,
  type TamperRoom,
  type CapturedEnvelope,
  type RelayConnectionInfo,
  type WithholdRule,
  type Withholding,
} from '../testing/tampering-relay.js'
