/**
 * Data at rest (issue 4): two devices on real SQLite files, synced over the loopback network,
 * write memories, sessions and streamed turns full of unique markers. Every byte of every file in
 * their directory — the database, its `-wal` and `-shm` — is then searched for every marker and
 * for the device names: after a clean close, and while the devices are still open (WAL not
 * checkpointed). The search is shown to be able to fail: it finds the markers in a plaintext
 * control file, and decrypting the stored sealed logs with the key material stored next to them
 * finds them too.
 * Finally, wiping a store's key material leaves it unopenable, with its remaining bytes still
 * free of plaintext.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as Y from 'yjs'
import { afterEach, describe, expect, it } from 'vitest'
import { sqliteStorage, type SqliteStorage } from '../../src/adapters/sqlite-storage.js'
import { ConfigError, ContextSync, createAccount, loopbackNetwork, plainKeys, type Account, type LoopbackNetwork } from '../../src/index.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import {
  decodeAccountKeys,
  decodeDeviceKeys,
  decryptEnvelope,
  DeviceKeyring,
  EnvelopeType,
  parseEnvelope,
  REGISTRY_SCOPE,
} from '../../src/crypto/index.js'
import { decodeSnapshot } from '../../src/sync/snapshot.js'
import { converge } from '../helpers/devices.js'

interface World {
  dir: string
  account: Account
  net: LoopbackNetwork
  phone: ContextSync
  pc: ContextSync
  storages: { phone: SqliteStorage; pc: SqliteStorage }
  paths: { phone: string; pc: string }
  /** Every plaintext that must never reach the disk, by name. */
  markers: Record<string, string>
  /** Markers whose text is still current (so the decrypted sealed logs must contain them), by scope. */
  current: Array<{ scope: string; marker: string; device: 'phone' | 'pc' }>
  /** Marker of the item that was forgotten. */
  forgotten: string
}

const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

/** Two devices on SQLite in a fresh directory, with every kind of content written and synced. */
async function populate(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-at-rest-'))
  cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
  // Random per run, so a marker can only be found where this run wrote it.
  const tag = randomBytes(6).toString('hex')
  const m = (name: string) => `MARK-${name}-${tag}`
  const markers = {
    phoneName: `Phone of Ana ${tag}`,
    pcName: `Desk PC ${tag}`,
    memory: m('memory'),
    tag: m('tag'),
    updated: m('updated'),
    health: m('health'),
    local: m('local'),
    work: m('work'),
    long: m('long'),
    burst: m('burst'),
    forgotten: m('forgotten'),
    title: m('title'),
    turn: m('turn'),
    token1: m('token1'),
    token2: m('token2'),
    token3: m('token3'),
    // Metadata the store does not need in the clear either: rooms are keyed by opaque ids.
    scopePersonal: 'personal',
    scopeHealth: 'health',
    scopeLocation: 'location',
  }

  const account = await createAccount()
  const net = loopbackNetwork({ seed: 7 })
  const paths = { phone: join(dir, 'phone.db'), pc: join(dir, 'pc.db') }
  const storages = { phone: sqliteStorage({ path: paths.phone }), pc: sqliteStorage({ path: paths.pc }) }
  const phone = await ContextSync.open({
    account,
    device: { kind: 'phone', name: markers.phoneName },
    storage: storages.phone,
    keys: plainKeys(),
    transports: [net.transport({ name: 'phone' })],
  })
  const pc = await ContextSync.open({
    account,
    device: { kind: 'pc', name: markers.pcName },
    storage: storages.pc,
    keys: plainKeys(),
    transports: [net.transport({ name: 'pc' })],
  })
  cleanup.push(async () => {
    await phone.close()
    await pc.close()
    net.destroy()
    await storages.phone.close()
    await storages.pc.close()
  })

  const item = await phone.memory.remember({ text: `Prefers aisle seats ${markers.memory}`, tags: [markers.tag] })
  await phone.memory.remember({ text: `Blood pressure 120/80 ${markers.health}`, scope: 'health' })
  await phone.memory.remember({ text: `Spare key under the pot ${markers.local}`, scope: 'local' })
  await pc.memory.remember({ text: `Quarterly review on Friday ${markers.work}`, scope: 'work' })
  // Large enough for SQLite overflow pages and an envelope of its own.
  await phone.memory.remember({ text: `${'lorem ipsum '.repeat(2500)}${markers.long}${' dolor'.repeat(500)}` })
  await Promise.all(Array.from({ length: 200 }, (_, i) => phone.memory.remember({ text: `${markers.burst} number ${i}` })))
  const doomed = await pc.memory.remember({ text: `Surprise party plans ${markers.forgotten}` })
  await converge([phone, pc], net)

  await pc.memory.update(item.id, { text: `Prefers window seats ${markers.updated}` })
  await phone.memory.forget(doomed.id)
  const session = pc.sessions.start({ title: `Trip to Lisbon ${markers.title}` })
  await session.append({ role: 'user', text: `Find me a flight on Friday ${markers.turn}` })
  await converge([phone, pc], net)
  const answer = phone.sessions.open(session.id)
  const stream = answer.stream({ role: 'assistant' })
  for (const token of ['Looking at ', markers.token1, ' flights, ', markers.token2, ' and ', markers.token3]) stream.write(token)
  await stream.end()
  await converge([phone, pc], net)

  // The content did arrive everywhere, so the search below looks at the right bytes.
  expect(pc.sessions.get(session.id)?.turns.map((t) => t.text)).toEqual([
    `Find me a flight on Friday ${markers.turn}`,
    `Looking at ${markers.token1} flights, ${markers.token2} and ${markers.token3}`,
  ])
  expect(phone.memory.get(item.id)?.text).toBe(`Prefers window seats ${markers.updated}`)
  expect(pc.memory.list({ scope: 'personal' }).length).toBe(202)
  expect(phone.memory.get(doomed.id)).toBeUndefined()
  expect(pc.memory.get(doomed.id)).toBeUndefined()

  const current: World['current'] = []
  for (const device of ['phone', 'pc'] as const) {
    for (const marker of [markers.updated, markers.tag, markers.long, markers.burst, markers.title, markers.turn, markers.token2]) {
      current.push({ scope: 'personal', marker, device })
    }
    current.push({ scope: REGISTRY_SCOPE, marker: markers.phoneName, device }, { scope: REGISTRY_SCOPE, marker: markers.pcName, device })
  }
  current.push({ scope: 'health', marker: markers.health, device: 'phone' }, { scope: 'local', marker: markers.local, device: 'phone' })
  current.push({ scope: 'work', marker: markers.work, device: 'pc' }, { scope: 'work', marker: markers.work, device: 'phone' })
  return { dir, account, net, phone, pc, storages, paths, markers, current, forgotten: markers.forgotten }
}

/** The names of `markers` found in `bytes`, as UTF-8, UTF-16LE or UTF-16BE. */
function foundIn(bytes: Buffer, markers: Record<string, string>): string[] {
  const found: string[] = []
  for (const [name, marker] of Object.entries(markers)) {
    const le = Buffer.from(marker, 'utf16le')
    const be = Buffer.from(le).swap16()
    if (bytes.includes(marker) || bytes.includes(le) || bytes.includes(be)) found.push(name)
  }
  return found
}

/** Every file of the directory (database, -wal, -shm…) with its bytes, read as they are now. */
function filesOf(dir: string): Array<{ name: string; bytes: Buffer }> {
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isFile())
    .map((name) => ({ name, bytes: readFileSync(join(dir, name)) }))
}

function expectNoMarkers(dir: string, markers: Record<string, string>): string[] {
  const files = filesOf(dir)
  for (const { name, bytes } of files) {
    expect(foundIn(bytes, markers), `plaintext found in ${name}`).toEqual([])
  }
  return files.map((f) => f.name).sort()
}

/**
 * The markers the stored sealed logs of a device hold once decrypted with the key material stored
 * next to them — what anyone holding the files and the keys could read.
 */
async function decryptStored(world: World, device: 'phone' | 'pc', path: string): Promise<{ found: Set<string>; forgottenFound: boolean }> {
  // A second connection: it reads committed data whether it sits in the WAL or the database.
  const storage = sqliteStorage({ path })
  try {
    const accountKeys = decodeAccountKeys((await storage.load(['keys', 'account']))!)
    const deviceKeys = decodeDeviceKeys((await storage.load(['keys', 'device']))!)
    if (!accountKeys.ok || !deviceKeys.ok) throw new Error(`${device}: stored key material does not decode`)
    const keyring = new DeviceKeyring(accountKeys.value, deviceKeys.value.seeds.sign)
    const found = new Set<string>()
    let forgottenFound = false
    for (const scope of [REGISTRY_SCOPE, 'personal', 'health', 'work', 'local']) {
      const roomId = keyring.roomId(scope)
      const doc = new Y.Doc()
      for (const chunk of await storage.loadRange(['replica', roomId, 'log'])) Y.applyUpdate(doc, chunk.data)
      const plaintexts: Buffer[] = []
      for (const bytes of sealedLog(doc).toArray()) {
        const envelope = parseEnvelope(bytes)
        const key = envelope.ok ? keyring.epochKey(scope, envelope.value.epoch) : undefined
        const plaintext = envelope.ok && key ? decryptEnvelope(envelope.value, roomId, key) : undefined
        if (!envelope.ok || !plaintext) throw new Error(`${device}: a stored ${scope} envelope does not open`)
        const state = envelope.value.type === EnvelopeType.Snapshot ? decodeSnapshot(plaintext)?.state : plaintext
        plaintexts.push(Buffer.from(state!))
      }
      doc.destroy()
      const all = Buffer.concat(plaintexts)
      for (const { marker, scope: s, device: d } of world.current) {
        if (s === scope && d === device && all.includes(marker)) found.add(`${scope}:${marker}`)
      }
      if (all.includes(world.forgotten)) forgottenFound = true
    }
    return { found, forgottenFound }
  } finally {
    await storage.close()
  }
}

async function expectDecryptable(world: World): Promise<void> {
  for (const device of ['phone', 'pc'] as const) {
    const { found, forgottenFound } = await decryptStored(world, device, world.paths[device])
    const expected = world.current.filter((c) => c.device === device).map((c) => `${c.scope}:${c.marker}`)
    expect([...found].sort(), `${device}: markers recovered by decrypting its stored sealed logs`).toEqual([...new Set(expected)].sort())
    // Forgetting compacted the text out of every stored sealed log, not only out of the view.
    expect(forgottenFound, `${device}: the forgotten item survives in a stored sealed log`).toBe(false)
  }
}

describe('data at rest on sqliteStorage', () => {
  it('the byte search finds plaintext where there is some', () => {
    const dir = mkdtempSync(join(tmpdir(), 'contextsync-at-rest-control-'))
    cleanup.push(() => rmSync(dir, { recursive: true, force: true }))
    const markers = { a: 'MARK-control-a', b: 'MARK-control-b ünï', c: 'MARK-control-c' }
    writeFileSync(join(dir, 'utf8.txt'), `header ${markers.a} middle ${markers.b} end`)
    writeFileSync(join(dir, 'utf16.bin'), Buffer.concat([randomBytes(100), Buffer.from(markers.c, 'utf16le'), randomBytes(100)]))
    const [utf8, utf16] = filesOf(dir).sort((x, y) => (x.name < y.name ? 1 : -1))
    expect(foundIn(utf8!.bytes, markers)).toEqual(['a', 'b'])
    expect(foundIn(utf16!.bytes, markers)).toEqual(['c'])
    expect(() => expectNoMarkers(dir, markers)).toThrow(/plaintext found/)
  })

  it('no plaintext in any file after a clean close', async () => {
    const world = await populate()
    await world.phone.close()
    await world.pc.close()
    await world.storages.phone.close()
    await world.storages.pc.close()
    const names = expectNoMarkers(world.dir, world.markers)
    expect(names).toEqual(expect.arrayContaining(['pc.db', 'phone.db']))
    // The markers are in those bytes — encrypted: the stored keys recover them.
    await expectDecryptable(world)

    // And a reopened device reads everything back from the same files.
    const storage = sqliteStorage({ path: world.paths.pc })
    const pc = await ContextSync.open({ storage, keys: plainKeys() })
    try {
      expect(pc.name).toBe(world.markers.pcName)
      expect(pc.memory.list({ scope: 'personal' }).length).toBe(202)
    } finally {
      await pc.close()
      await storage.close()
    }
  })

  it('no plaintext in the database, its WAL or its shared memory while the devices are open', async () => {
    const world = await populate()
    // Still open: the latest commits live only in the WAL, not checkpointed into the database.
    const names = expectNoMarkers(world.dir, world.markers)
    expect(names).toEqual(['pc.db', 'pc.db-shm', 'pc.db-wal', 'phone.db', 'phone.db-shm', 'phone.db-wal'])
    for (const device of ['phone', 'pc']) {
      expect(statSync(join(world.dir, `${device}.db-wal`)).size, `${device}: WAL is empty`).toBeGreaterThan(0)
    }
    await expectDecryptable(world)
    // Writes made after that search land in the WAL too, and are still ciphertext.
    const late = `MARK-late-${randomBytes(6).toString('hex')}`
    await world.phone.memory.remember({ text: late })
    expectNoMarkers(world.dir, { ...world.markers, late })
  })

  it('wiping the key material makes a store unopenable and leaves only ciphertext', async () => {
    const world = await populate()
    await world.phone.close()
    await world.pc.close()
    await world.storages.phone.close()
    await world.storages.pc.close()

    const storage = sqliteStorage({ path: world.paths.phone })
    const keyChunks = await storage.loadRange(['keys'])
    expect(keyChunks.map((c) => c.key.join('/')).sort()).toEqual(['keys/account', 'keys/device'])
    await storage.removeRange(['keys'])
    expect(await storage.loadRange(['keys'])).toEqual([])
    expect((await storage.loadRange(['replica'])).length, 'the sealed logs stay').toBeGreaterThan(0)
    await storage.close()

    for (let attempt = 0; attempt < 2; attempt++) {
      const again = sqliteStorage({ path: world.paths.phone })
      try {
        const opening = ContextSync.open({ storage: again, keys: plainKeys() })
        await expect(opening).rejects.toBeInstanceOf(ConfigError)
        await expect(opening).rejects.toMatchObject({ code: 'config', message: expect.stringMatching(/no device/) })
      } finally {
        await again.close()
      }
    }
    expectNoMarkers(world.dir, world.markers)
    // The wiped key bytes are gone from the files too (secure_delete + WAL checkpoint), not
    // merely unlinked from the table.
    const files = Buffer.concat(readdirSync(world.dir).filter((f) => f.startsWith('phone')).map((f) => readFileSync(join(world.dir, f))))
    for (const chunk of keyChunks) {
      expect(files.includes(Buffer.from(chunk.data.subarray(1, 33))), `${chunk.key.join('/')} survives on disk`).toBe(false)
    }

    // The other device's store is untouched and still opens.
    const pcStorage = sqliteStorage({ path: world.paths.pc })
    const pc = await ContextSync.open({ storage: pcStorage, keys: plainKeys() })
    try {
      expect(pc.memory.list({ scope: 'personal' }).length).toBe(202)
    } finally {
      await pc.close()
      await pcStorage.close()
    }
  })
})
