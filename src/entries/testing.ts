/**
 * `contextsync/testing` — the shared conformance suites every storage adapter and transport runs
 * (they import vitest). A new adapter is one file plus a three-line test:
 *
 * ```ts
 * import { runStorageAdapterTests } from 'contextsync/testing'
 * runStorageAdapterTests(async () => ({ adapter: myStorage() }))
 * ```
 *
 * @module
 */
export { runStorageAdapterTests, type StorageAdapterTestContext } from '../adapters/storage-conformance.js'
export { runTransportTests, type TransportTestContext } from '../adapters/transport-conformance.js'
export { faultyStorage, type FaultyStorage, type FailNextOptions } from '../adapters/faulty-storage.js'
