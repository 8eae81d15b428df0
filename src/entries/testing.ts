/**
 * `contextsync/testing` — the shared conformance suites every storage adapter and transport runs
 * (they import vitest), a storage wrapper that fails on demand, and the tools an integrity test
 * attacks a deployment with: a tampering y-websocket relay and the raw sealed-log operations a
 * relay or member device can perform (THREAT_MODEL.md); and a seeded Bluetooth LE link simulator
 * in virtual time, with a radio power model, for the link transport (`contextsync/link`); and the
 * in-process loopback network with fault injection (also exported from the root entry). A new
 * adapter is one file plus a
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
export {
  bleLinkSimulator,
  type BleLink,
  type BleLinkOptions,
  type BleLinkSimulator,
  type BleLinkSimulatorEvents,
  type BleLinkStats,
} from '../testing/ble-link.js'
export { NRF52832_LE_1M, RadioMeter, type RadioPowerModel, type RadioStats } from '../testing/radio-power.js'
export { VirtualClock } from '../testing/virtual-clock.js'
export {
  loopbackNetwork,
  LoopbackError,
  type LoopbackNetwork,
  type LoopbackOptions,
  type LoopbackFaults,
  type LoopbackLayout,
  type LoopbackMessage,
  type LoopbackMessageType,
  type LoopbackNetworkEvents,
  type LoopbackStats,
  type LoopbackTransport,
} from '../testing/loopback/index.js'
