/**
 * A damaged SQLite store file read by `sqliteStorage` (src/adapters/sqlite-storage.ts): opening
 * never throws; `ready()`, `loadRange`, `load`, `save` and `close` each resolve or reject with a
 * `StorageError` of a named code (`not-a-store`, `corrupt`, `io`, `quota-exceeded`, …) — never
 * another exception, never a hang. The genuine file holds the records a device stores (keys,
 * sealed-log chunks, a checkpoint, meta); inputs are that file with bytes flipped, pages zeroed
 * or duplicated, the 100-byte header damaged, or cut short.
 *
 * Input layout: `u8 flags · file bytes` (bit 0: open with `integrityCheck`).
 *
 * @module
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { threadId } from 'node:worker_threads'
import { sqliteStorage } from '../../../src/adapters/sqlite-storage.js'
import { StorageError } from '../../../src/adapters/storage.js'
import { mutate } from '../mutators.js'
import { bytes, chance, int, weighted, type Rng } from '../rng.js'
import { PropertyViolation, type Target } from '../target.js'

const CODES = new Set(['closed', 'quota-exceeded', 'corrupt', 'not-a-store', 'io', 'invalid-key'])

/** Page-aware damage of a SQLite file (pages of `pageSize` bytes; the header is page 1's first 100). */
function damage(gen: Rng, file: Uint8Array, pageSize: number): Uint8Array {
  const pages = Math.max(1, Math.floor(file.length / pageSize))
  const out = file.slice()
  return weighted<() => Uint8Array>(gen, [
    [4, () => mutate(gen, file)],
    [
      3,
      () => {
        // Bytes of one page's b-tree header or cell pointers (its first 12 bytes and what follows).
        const page = int(gen, 0, pages - 1)
        const at = page * pageSize + (page === 0 ? 100 : 0) + int(gen, 0, 24)
        for (let i = 0; i < int(gen, 1, 4); i++) out[Math.min(out.length - 1, at + i)] = int(gen, 0, 255)
        return out
      },
    ],
    [
      2,
      () => {
        const page = int(gen, 0, pages - 1)
        return out.fill(0, page * pageSize, (page + 1) * pageSize)
      },
    ],
    [
      2,
      () => {
        const page = int(gen, 0, pages - 1)
        out.set(bytes(gen, pageSize).subarray(0, Math.min(pageSize, out.length - page * pageSize)), page * pageSize)
        return out
      },
    ],
    [2, () => file.slice(0, int(gen, 0, pages) * pageSize + (chance(gen, 0.5) ? 0 : int(gen, 1, 99)))],
    [
      2,
      () => {
        // The database header: page size, file format, page count, freelist, schema cookie, text encoding.
        const at = int(gen, 16, 99)
        out[at] = chance(gen, 0.5) ? 0xff : int(gen, 0, 255)
        return out
      },
    ],
    [1, () => {
      const page = int(gen, 1, pages - 1)
      out.copyWithin(page * pageSize, int(gen, 0, pages - 1) * pageSize, (int(gen, 0, pages - 1) + 1) * pageSize)
      return out
    }],
  ])()
}

async function settle(what: string, promise: Promise<unknown>): Promise<string> {
  try {
    await promise
    return 'ok'
  } catch (error) {
    if (error instanceof StorageError && CODES.has(error.code)) return error.code
    throw new PropertyViolation(`${what} rejected with ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}, not a StorageError`)
  }
}

export const sqliteTarget: Target = {
  name: 'sqlite',
  description: 'sqliteStorage opening and reading a damaged store file',
  weight: 1,
  budgetMs: 1000,
  async setup() {
    const dir = mkdtempSync(join(tmpdir(), `contextsync-fuzz-sqlite-${threadId}-`))
    const genuinePath = join(dir, 'genuine.db')
    const store = sqliteStorage({ path: genuinePath })
    await store.save(['keys', 'device'], new Uint8Array(65).fill(7))
    for (let i = 0; i < 24; i++) await store.save(['replica', 'acct.room', 'log', String(i).padStart(12, '0')], new Uint8Array(300 + i * 97).fill(i))
    await store.save(['replica', 'acct.room', 'state', '000000000000'], new Uint8Array(5000).fill(0xcc))
    await store.save(['replica', 'acct.room', 'meta'], Uint8Array.of(1, 0x80, 0x08))
    await store.remove(['replica', 'acct.room', 'log', '000000000003'])
    await store.close()
    const genuine = new Uint8Array(readFileSync(genuinePath))
    const pageSize = ((genuine[16]! << 8) | genuine[17]!) || 65536
    const path = join(dir, 'fuzzed.db')
    return {
      generate(gen) {
        const file = damage(gen, genuine, pageSize)
        const out = new Uint8Array(file.length + 1)
        out[0] = chance(gen, 0.3) ? 1 : 0
        out.set(file, 1)
        return out
      },
      async run(input) {
        for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true })
        writeFileSync(path, input.subarray(1))
        const storage = sqliteStorage({ path, integrityCheck: (input[0]! & 1) === 1 })
        const outcomes = [
          await settle('ready()', storage.ready()),
          await settle('loadRange', storage.loadRange(['replica'])),
          await settle('load', storage.load(['keys', 'device'])),
          await settle('save', storage.save(['replica', 'acct.room', 'meta'], Uint8Array.of(1, 5))),
          await settle('close', storage.close()),
        ]
        return `ready ${outcomes[0]}, reads ${outcomes[1]}/${outcomes[2]}, save ${outcomes[3]}`
      },
      async close() {
        rmSync(dir, { recursive: true, force: true })
      },
    }
  },
}
