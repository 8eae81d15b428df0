import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { memoryStore, sqliteStore } from '../../src/relay/persistence.js'
import { runRelayStoreTests } from '../../src/relay/store-conformance.js'

runRelayStoreTests(async () => ({ store: memoryStore() }), 'memoryStore')

runRelayStoreTests(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-relay-store-'))
  return { store: sqliteStore(dir), reopen: async () => sqliteStore(dir), teardown: async () => rmSync(dir, { recursive: true, force: true }) }
}, 'sqliteStore')
