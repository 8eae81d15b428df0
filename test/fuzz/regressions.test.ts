/**
 * Regressions the fuzz campaign (test/fuzz/) found, one focused test each, so they stay fixed
 * without the campaign's luck. Each names the input shape and what went wrong before the fix.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ContextSync, createAccount, memoryStorage, RejectCode, type StorageAdapter } from '../../src/index.js'
import * as Y from 'yjs'
import { accountKeysFromSeed, deviceKeysFromSeeds, EnvelopeType, ownerKeyring, parseEnvelope, ready, sealEnvelope } from '../../src/crypto/index.js'
import { insertMemory } from '../../src/crdt/memory.js'
import { Replica, type RejectedEvent } from '../../src/sync/replica.js'
import { encodeSnapshot } from '../../src/sync/snapshot.js'
import * as encoding from 'lib0/encoding'
import { getHeapStatistics } from 'node:v8'
import { createSealedLogDoc, sealedLog } from '../../src/crdt/sealed-log.js'
import { StorageError } from '../../src/adapters/storage.js'
import { fromHex } from '../../src/util/bytes.js'
import { LogStore } from '../../src/sync/log-store.js'

const open: ContextSync[] = []
beforeAll(() => ready())
afterEach(async () => {
  await Promise.all(open.splice(0).map((d) => d.close()))
})

/** JSON nested `depth` levels deep, as text (building it as an object would overflow JSON.stringify here). */
function nested(depth: number): string {
  return `${'['.repeat(depth)}0${']'.repeat(depth)}`
}

describe('memory import: hostile JSON (fuzz targets export, import)', () => {
  it('refuses a line whose JSON nests 100 000 levels deep with Malformed, instead of throwing RangeError', async () => {
    // Before: JSON.parse read the line (it is under the 1 MiB line limit), then canonicalJson
    // recursed once per level and overflowed the stack — verifyMemoryLine and verifyHeader threw
    // "RangeError: Maximum call stack size exceeded" and memory.import rejected with it.
    const account = await createAccount()
    const dev = await ContextSync.open({ account, device: { kind: 'phone', name: 'Phone' }, storage: memoryStorage(), transports: [] })
    open.push(dev)
    await dev.memory.remember({ text: 'Prefers aisle seats' })
    const [header, line] = (await dev.memory.export({ scope: 'personal' }).text()).split('\n')
    const deepLine = line!.replace('"tags":', `"extra":${nested(100_000)},"tags":`)
    const deepHeader = header!.replace('"scope":', `"extra":${nested(100_000)},"scope":`)

    const report = await dev.memory.import([header!, deepLine].join('\n'))
    expect(report.rejected[0]).toMatchObject({ line: 2, code: RejectCode.Malformed })
    expect(report.rejected[0]!.reason).toMatch(/nest/)

    const headerReport = await dev.memory.import([deepHeader, line!].join('\n'))
    expect(headerReport.rejected[0]).toMatchObject({ line: 1, code: RejectCode.Malformed })
    expect(headerReport.rejected[0]!.reason).toMatch(/nest/)
  })

  it('refuses a header whose version is an object that cannot be printed with UnsupportedVersion, instead of throwing TypeError', async () => {
    // Before: the refusal's reason was built with String(h.version), which throws "Cannot
    // convert object to primitive value" for {"toString":1} — memory.import rejected with it.
    const account = await createAccount()
    const dev = await ContextSync.open({ account, device: { kind: 'phone', name: 'Phone' }, storage: memoryStorage(), transports: [] })
    open.push(dev)
    await dev.memory.remember({ text: 'Prefers aisle seats' })
    const [header, line] = (await dev.memory.export({ scope: 'personal' }).text()).split('\n')
    const report = await dev.memory.import([header!.replace('"version":2', '"version":{"toString":1}'), line!].join('\n'))
    expect(report.rejected[0]).toMatchObject({ line: 1, code: RejectCode.UnsupportedVersion })
  })

  it('still reads JSON nested within the bound (64 levels) up to the signature check', async () => {
    const account = await createAccount()
    const dev = await ContextSync.open({ account, device: { kind: 'phone', name: 'Phone' }, storage: memoryStorage(), transports: [] })
    open.push(dev)
    await dev.memory.remember({ text: 'Lives in Lisbon' })
    const [header, line] = (await dev.memory.export({ scope: 'personal' }).text()).split('\n')
    // Nested 60 deep inside the memory (62 with the line and memory objects): parsed, and
    // refused only because the signature no longer matches.
    const report = await dev.memory.import([header!, line!.replace('"tags":', `"extra":${nested(60)},"tags":`)].join('\n'))
    expect(report.rejected[0]).toMatchObject({ line: 2, code: RejectCode.BadSignature })
  })
})

describe('replica meta: a damaged seq reservation (fuzz target storage)', () => {
  /** Overwrite every replica's `meta` record (WIRE.md "Device store layout") with `bytes`. */
  async function damageMeta(storage: StorageAdapter, bytes: Uint8Array): Promise<number> {
    const metas = (await storage.loadRange(['replica'])).filter((c) => c.key[c.key.length - 1] === 'meta')
    for (const meta of metas) await storage.save(meta.key, bytes)
    return metas.length
  }

  it.each([
    ['2^53 (ff ff ff ff ff ff ff 0f)', Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f)],
    ['2^53 - 1 (no room for another block)', Uint8Array.of(1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f - 1)],
    ['truncated', Uint8Array.of(1, 0x80)],
  ])('a meta record of %s is taken as damaged: the device keeps writing envelopes receivers accept', { timeout: 10_000 }, async (_name, bytes) => {
    // Before: the varuint was taken as the reservation, the next seq was 2^53 (not a safe
    // integer), and the first write threw SeqSetError out of an un-awaited flush — an unhandled
    // rejection that ends a Node process — and its envelope carried a seq every receiver refuses.
    const storage = memoryStorage()
    const account = await createAccount()
    const first = await ContextSync.open({ account, device: { kind: 'phone', name: 'Phone' }, storage, transports: [] })
    await first.memory.remember({ text: 'Before the damage' })
    const seqBefore = lastSeq(first)
    await first.close()
    expect(await damageMeta(storage, bytes)).toBeGreaterThan(0)

    const dev = await ContextSync.open({ storage, transports: [] })
    open.push(dev)
    await dev.memory.remember({ text: 'After the damage' })
    const seq = lastSeq(dev)
    // A block past the last seq stored: no seq the lost reservation may have handed out is reused.
    expect(seq).toBeGreaterThan(seqBefore + 1024)
    expect(Number.isSafeInteger(seq)).toBe(true)
  })
})

/** Seq of the newest envelope in the personal scope's sealed log (it must parse). */
function lastSeq(dev: ContextSync): number {
  const log = sealedLog(dev.replica('personal')!.outer).toArray()
  const parsed = parseEnvelope(log[log.length - 1])
  if (!parsed.ok) throw new Error(`the newest envelope does not parse: ${parsed.reason}`)
  return parsed.value.seq
}

describe('log store: a damaged sealed-log chunk (fuzz target storage)', () => {
  it('a chunk Yjs chokes on after reading it makes load() reject with StorageError corrupt, not TypeError', async () => {
    // A genuine outer-doc update (two envelopes pushed, the first deleted) with one byte changed:
    // Y.applyUpdate reads it, and Yjs throws afterwards, while cleaning up the transaction —
    // outside the per-chunk try, so load() (and with it Replica.load and ContextSync.open)
    // rejected with "TypeError: Cannot read properties of undefined (reading 'id')".
    const damaged = fromHex('010207000101036c6f6700830700030405060107010001')!
    const storage = memoryStorage()
    await storage.save(['replica', 'acct.room', 'log', '000000000000'], damaged)
    const store = new LogStore(storage, 'acct.room', createSealedLogDoc())
    const error = await store.load().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(error).toBeInstanceOf(StorageError)
    expect((error as StorageError).code).toBe('corrupt')
  })
})

describe('replica: a redundant snapshot with a state that does not decode (fuzz target storage)', () => {
  it('is not thrown on when checking it for deleted content', async () => {
    // A member device (certified, so its envelope verifies) seals a snapshot that lists no seqs —
    // redundant, so its state is never applied — with a state that is not a Yjs update. The
    // receiver then asked whether the state carries content it deleted: Y.decodeUpdate threw
    // "Unexpected end of array" out of the sealed log's observer, so a peer's push (or
    // Replica.load reading such a log) failed with it.
    const seed = (n: number) => new Uint8Array(32).fill(n)
    const account = accountKeysFromSeed(seed(1))
    const device = deviceKeysFromSeeds(seed(2), seed(3))
    const member = deviceKeysFromSeeds(seed(4), seed(5))
    const keyring = ownerKeyring(account)
    const roomId = keyring.roomId('personal')
    const replica = new Replica({
      scope: 'personal',
      roomId,
      keyring,
      directory: { resolve: (id) => ({ status: 'known', signPublicKey: id === member.deviceId ? member.signPublicKey : device.signPublicKey }) },
      storage: memoryStorage(),
      atRestKey: seed(6),
      signer: { sender: device.deviceIdBytes, senderId: device.deviceId, signSecretKey: device.signSecretKey },
    })
    await replica.load()
    replica.inner.transact(() =>
      insertMemory(replica.inner, { id: 'm1', text: 'Own write', scope: 'personal', kind: 'fact', tags: [], createdAt: 1, updatedAt: 1, source: { deviceId: device.deviceId } }),
    )
    await replica.whenFlushed()
    const rejected: RejectedEvent[] = []
    replica.events.on('rejected', (e) => rejected.push(e))
    const snapshot = sealEnvelope({
      roomId,
      type: EnvelopeType.Snapshot,
      epoch: 0,
      seq: 1,
      sender: member.deviceIdBytes,
      signSecretKey: member.signSecretKey,
      key: keyring.epochKey('personal', 0)!,
      plaintext: encodeSnapshot({ coverage: new Map(), state: Uint8Array.of(1, 2, 3) }),
    })
    expect(() => Y.transact(replica.outer, () => sealedLog(replica.outer).push([snapshot]), 'peer')).not.toThrow()
    // Still a working replica: the own write is readable, nothing was refused as ours.
    expect(replica.inner.getMap('memories').has('m1')).toBe(true)
    await replica.close()
  })
})

describe('replica: an update claiming 2^25 structs in 9 bytes (fuzz target replica)', () => {
  it('is refused (11) without Yjs preallocating an array for every claimed struct', async () => {
    // Before: Y.applyUpdate reads a client's struct count and allocates \`new Array(count)\` before
    // reading any struct; 2^25 − 1 is the largest count V8 backs with a real array — 128 MiB and
    // about 140 ms for one 9-byte update in a member's envelope. Now the update is walked with
    // Yjs's lazy reader first (no preallocation), which refuses it.
    const seed = (n: number) => new Uint8Array(32).fill(n)
    const account = accountKeysFromSeed(seed(11))
    const device = deviceKeysFromSeeds(seed(12), seed(13))
    const member = deviceKeysFromSeeds(seed(14), seed(15))
    const keyring = ownerKeyring(account)
    const roomId = keyring.roomId('personal')
    const replica = new Replica({
      scope: 'personal',
      roomId,
      keyring,
      directory: { resolve: (id) => ({ status: 'known', signPublicKey: id === member.deviceId ? member.signPublicKey : device.signPublicKey }) },
      storage: memoryStorage(),
      atRestKey: seed(16),
      signer: { sender: device.deviceIdBytes, senderId: device.deviceId, signSecretKey: device.signSecretKey },
    })
    await replica.load()
    const enc = encoding.createEncoder()
    encoding.writeVarUint(enc, 1) // one client
    encoding.writeVarUint(enc, 2 ** 25 - 1) // structs claimed
    encoding.writeVarUint(enc, 5) // client
    encoding.writeVarUint(enc, 0) // clock
    encoding.writeUint8(enc, 0) // one GC struct…
    encoding.writeVarUint(enc, 3) // …of length 3, then the input ends
    const update = sealEnvelope({
      roomId,
      type: EnvelopeType.Update,
      epoch: 0,
      seq: 1,
      sender: member.deviceIdBytes,
      signSecretKey: member.signSecretKey,
      key: keyring.epochKey('personal', 0)!,
      plaintext: encoding.toUint8Array(enc),
    })
    const rejected: RejectedEvent[] = []
    replica.events.on('rejected', (e) => rejected.push(e))
    const before = getHeapStatistics().used_heap_size
    Y.transact(replica.outer, () => sealedLog(replica.outer).push([update]), 'peer')
    const grown = getHeapStatistics().used_heap_size - before
    expect(rejected.map((e) => e.code)).toEqual([RejectCode.BadPayload])
    expect(grown).toBeLessThan(32 * 2 ** 20)
    await replica.close()
  })
})
