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
export { runStorageAdapterTests } from '../adapters/storage-conformance.js'
export { runTransportTests } from '../adapters/transport-conformance.js'
export { faultyStorage } from '../adapters/faulty-storage.js'
