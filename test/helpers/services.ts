/**
 * PostgreSQL and Redis for the relay's multi-node tests: `.ci/run` starts private instances on
 * 127.0.0.1 and exports their URLs (`.ci/services`). Without them these tests skip, loudly.
 */
import { randomBytes } from 'node:crypto'
import pg from 'pg'

/** `postgres://…` of a PostgreSQL the tests may create schemas in, or undefined. */
export const POSTGRES_URL = process.env.CONTEXTSYNC_TEST_POSTGRES || undefined
/** `redis://…` of a Redis the tests may use, or undefined. */
export const REDIS_URL = process.env.CONTEXTSYNC_TEST_REDIS || undefined

function warn(what: string, variable: string, service: string): void {
  console.warn(
    `\n${'!'.repeat(100)}\n!!! SKIPPED: ${what}\n!!! ${variable} is not set: no ${service} to test against. ` +
      `.ci/run starts one (see .ci/services); locally: eval "$(.ci/services start)".\n${'!'.repeat(100)}\n`,
  )
}

/** Loud, because a skipped PostgreSQL proof must not pass unnoticed. */
export function warnIfNoPostgres(what: string): void {
  if (!POSTGRES_URL) warn(what, 'CONTEXTSYNC_TEST_POSTGRES', 'PostgreSQL')
}

/** Loud, because a skipped multi-node proof must not pass unnoticed. */
export function warnIfNoServices(what: string): void {
  if (!POSTGRES_URL) warn(what, 'CONTEXTSYNC_TEST_POSTGRES', 'PostgreSQL')
  if (!REDIS_URL) warn(what, 'CONTEXTSYNC_TEST_REDIS', 'Redis')
}

/** A schema name no other test uses. */
export function uniqueSchema(): string {
  return `cs_test_${randomBytes(6).toString('hex')}`
}

/** Drop a test schema and everything in it. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url })
  await client.connect()
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`)
  } finally {
    await client.end()
  }
}
