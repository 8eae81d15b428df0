import { afterAll, describe } from 'vitest'
import { postgresStore } from '../../src/relay/postgres-store.js'
import { runRelayStoreTests } from '../../src/relay/store-conformance.js'
import { dropSchema, POSTGRES_URL, uniqueSchema, warnIfNoPostgres } from '../helpers/services.js'

warnIfNoPostgres('the PostgreSQL relay store conformance suite')

describe.runIf(POSTGRES_URL !== undefined)('PostgreSQL relay store', () => {
  const url = POSTGRES_URL!
  const schemas: string[] = []
  runRelayStoreTests(async () => {
    const schema = uniqueSchema()
    schemas.push(schema)
    return { store: await postgresStore(url, { schema, maxConnections: 4 }), reopen: () => postgresStore(url, { schema, maxConnections: 4 }) }
  }, 'postgresStore')
  afterAll(async () => {
    for (const schema of schemas) await dropSchema(url, schema)
  })
})
