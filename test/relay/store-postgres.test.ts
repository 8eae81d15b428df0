import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { POSTGRES_SCHEMA_VERSION, postgresStore } from '../../src/relay/postgres-store.js'
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

  it('migrates a version 1 database (no kept passes) to the current version on start, keeping its rows', async () => {
    const schema = uniqueSchema()
    schemas.push(schema)
    const first = await postgresStore(url, { schema, maxConnections: 2 })
    await first.append('acct.old', new Uint8Array([1, 2, 3]))
    await first.saveRevocation({ accountId: 'acct', deviceId: 'dev', rootPublicKey: new Uint8Array([1]), statement: new Uint8Array([2]) })
    await first.close()
    // Take the schema back to what a version 1 relay left behind.
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query(
        `DROP FUNCTION ${schema}.append_batch; DROP TABLE ${schema}.batches, ${schema}.totals; DROP INDEX ${schema}.rooms_account;
         DROP FUNCTION ${schema}.save_pass; DROP TABLE ${schema}.passes; UPDATE ${schema}.schema_version SET version = 1`,
      )
    } finally {
      await client.end()
    }
    const migrated = await postgresStore(url, { schema, maxConnections: 2 })
    try {
      expect((await migrated.load('acct.old')).map((r) => [...r.data])).toEqual([[1, 2, 3]])
      expect(await migrated.revocations()).toHaveLength(1)
      // Version 3 counts the rooms a version 1 relay stored.
      expect(await migrated.usage()).toMatchObject({ rooms: 1 })
      expect(await migrated.append('acct.old', new Uint8Array([4]))).toEqual({ ok: true, seq: 2 })
      const pass = { accountId: 'acct', deviceId: 'car', issuedAt: 5, rootPublicKey: new Uint8Array([1]), statement: new Uint8Array([7]) }
      expect(await migrated.savePass(pass)).toMatchObject({ kept: true })
      expect((await migrated.passes('acct')).map((p) => p.issuedAt)).toEqual([5])
    } finally {
      await migrated.close()
    }
    const check = new pg.Client({ connectionString: url })
    await check.connect()
    try {
      expect((await check.query<{ version: number }>(`SELECT version FROM ${schema}.schema_version`)).rows).toEqual([{ version: POSTGRES_SCHEMA_VERSION }])
    } finally {
      await check.end()
    }
    expect(POSTGRES_SCHEMA_VERSION).toBe(3)
  })

  afterAll(async () => {
    for (const schema of schemas) await dropSchema(url, schema)
  })
})
