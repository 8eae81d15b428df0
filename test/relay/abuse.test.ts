/**
 * Relay abuse (issue 12, findings 1–5), each as the attack over real sockets on 127.0.0.1:
 * pairing-room squatting, connection floods, slowloris upgrades, self-minted accounts filling the
 * relay, operator allow-lists, replay-cache lock-out, quadratic quota checks, awareness overwrite
 * and flood. Different source addresses are simulated with `clientAddressHeader`.
 */
import { randomBytes } from 'node:crypto'
import { writeFileSync, mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import * as awarenessProtocol from 'y-protocols/awareness'
import { createAccessToken, createDeviceKeys, issueRelayPass, ready } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import type { Transport } from '../../src/adapters/transport.js'
import { ContextSync, createAccount, memoryStorage } from '../../src/index.js'
import { main } from '../../src/cli.js'
import { CloseCode, NonceCache, tokenAuth } from '../../src/relay/index.js'
import { Room } from '../../src/relay/room.js'
import {
  awarenessFrame,
  closeRelays,
  fakeEnvelope,
  makeAccount,
  NodeWebSocket,
  rawClient,
  roomUrl,
  sealedLog,
  sleep,
  startRelay,
  updateFrame,
  waitFor,
  type RawClient,
  type TestAccount,
} from './helpers.js'

beforeAll(async () => {
  await ready()
})

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  vi.restoreAllMocks()
  for (const fn of cleanups.splice(0).reverse()) await fn()
  await closeRelays()
})

/** A pairing rendezvous room id, like `pairingRoomId` makes. */
function pairingRoom(): string {
  return `pair.${randomBytes(16).toString('base64url')}`
}

/** Connect from `address` (through the relay's `clientAddressHeader`). */
function from(address: string, url: string): RawClient {
  const client = rawClient(url, { headers: { 'x-forwarded-for': address } })
  cleanups.push(() => client.ws.terminate())
  return client
}

/** Resolves `'admitted'` once the relay sent its first frame, or the close code. */
async function outcome(client: RawClient): Promise<'admitted' | number> {
  return Promise.race([
    waitFor(() => client.messages.length > 0, 10_000, 'first frame').then(() => 'admitted' as const),
    client.closed.then(({ code }) => code),
  ])
}

/** A second device of `who`'s account, with its own token factory. */
function otherDevice(who: TestAccount) {
  const device = createDeviceKeys()
  const relayPass = issueRelayPass(who.account, device)
  return {
    device,
    token: (roomId: string) => createAccessToken({ rootPublicKey: who.account.rootPublicKey, relayPass, device, roomId }),
  }
}

describe('finding 1: pairing rooms have their own per-address quota and a short lifetime', () => {
  it('one address holding 260 pairing rooms does not block anyone else’s pairing', async () => {
    const relay = await startRelay({ clientAddressHeader: 'x-forwarded-for', limits: { maxConnectionsPerAddress: 1000 } })
    const squatter: RawClient[] = []
    for (let i = 0; i < 260; i++) squatter.push(from('203.0.113.7', roomUrl(relay, pairingRoom())))
    const results = await Promise.all(squatter.map(outcome))
    const admitted = results.filter((r) => r === 'admitted').length
    expect(admitted).toBe(8)
    expect(results.filter((r) => r === CloseCode.TooManyRooms)).toHaveLength(252)
    expect(relay.metrics().limitHits.pairingRoomsPerAddress).toBe(252)

    // Someone else pairs: a raw rendezvous from another address, then a real invite and join.
    expect(await outcome(from('198.51.100.2', roomUrl(relay, pairingRoom())))).toBe('admitted')
    const account = await createAccount()
    const transports: Transport[] = []
    const ws = () => {
      const t = websocketTransport({ url: relay.url, WebSocketPolyfill: NodeWebSocket, maxBackoffTime: 200 })
      transports.push(t)
      return t
    }
    cleanups.push(() => Promise.all(transports.map((t) => t.close())))
    const phone = await ContextSync.open({ account, device: { kind: 'phone' }, storage: memoryStorage(), transports: [ws()] })
    cleanups.push(() => phone.close())
    const invite = await phone.devices.invite({ kind: 'car' })
    const car = await ContextSync.join({ invite: invite.code, device: { kind: 'car' }, storage: memoryStorage(), transports: [ws()], timeoutMs: 15_000 })
    cleanups.push(() => car.close())
    expect(car.deviceId).not.toBe(phone.deviceId)
  })

  it('a pairing room is closed with 4410 and deleted once it outlives its lifetime', async () => {
    const relay = await startRelay({ limits: { pairingRoomLifetimeMs: 400 } })
    const roomId = pairingRoom()
    const holder = rawClient(roomUrl(relay, roomId))
    await holder.opened
    const doc = new Y.Doc()
    doc.getArray<Uint8Array>('log').push([fakeEnvelope('pairing-request', 200)])
    holder.send(updateFrame(Y.encodeStateAsUpdate(doc)))
    await waitFor(() => relay.metrics().storedBytes > 0, 5000, 'stored')
    const { code } = await Promise.race([holder.closed, sleep(5000).then(() => ({ code: -1 }))])
    expect(code).toBe(CloseCode.RoomExpired)
    expect(relay.metrics().limitHits.pairingRoomLifetime).toBe(1)
    await waitFor(() => relay.metrics().rooms === 0, 5000, 'room unloaded')
    expect(relay.metrics().storedBytes).toBe(0)
  })
})

describe('finding 2: limits at every level', () => {
  it('caps connections per source address with 4429, before any auth work or room state', async () => {
    const relay = await startRelay({ clientAddressHeader: 'x-forwarded-for', limits: { maxConnectionsPerAddress: 5 } })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const mine = Array.from({ length: 5 }, () => from('203.0.113.9', roomUrl(relay, roomId, alice.token(roomId))))
    expect(await Promise.all(mine.map(outcome))).toEqual(Array(5).fill('admitted'))
    const sixth = from('203.0.113.9', roomUrl(relay, roomId, alice.token(roomId)))
    expect(await outcome(sixth)).toBe(CloseCode.RateLimited)
    expect(sixth.messages).toHaveLength(0)
    // Another address is not affected; a closed connection frees its slot.
    expect(await outcome(from('198.51.100.3', roomUrl(relay, roomId, alice.token(roomId))))).toBe('admitted')
    mine[0]!.ws.close()
    await mine[0]!.closed
    await waitFor(() => relay.metrics().connections === 5, 5000, 'slot freed')
    expect(await outcome(from('203.0.113.9', roomUrl(relay, roomId, alice.token(roomId))))).toBe('admitted')
    expect(relay.metrics().limitHits.connectionsPerAddress).toBe(1)
    const text = await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text()
    expect(text).toContain('contextsync_relay_limit_hits_total{limit="connectionsPerAddress"} 1')
  })

  it('caps connections per peer address without a proxy header, and in total with 1013', async () => {
    const relay = await startRelay({ limits: { maxConnectionsPerAddress: 4 } })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const clients = Array.from({ length: 5 }, () => rawClient(roomUrl(relay, roomId, alice.token(roomId))))
    cleanups.push(() => clients.forEach((c) => c.ws.terminate()))
    const results = await Promise.all(clients.map(outcome))
    expect(results.filter((r) => r === 'admitted')).toHaveLength(4)
    expect(results).toContain(CloseCode.RateLimited)

    const busy = await startRelay({ clientAddressHeader: 'x-forwarded-for', limits: { maxConnections: 3 } })
    const three = ['192.0.2.1', '192.0.2.2', '192.0.2.3'].map((a) => from(a, roomUrl(busy, roomId, alice.token(roomId))))
    expect(await Promise.all(three.map(outcome))).toEqual(['admitted', 'admitted', 'admitted'])
    expect(await outcome(from('192.0.2.4', roomUrl(busy, roomId, alice.token(roomId))))).toBe(CloseCode.TryAgainLater)
    expect(busy.metrics().limitHits.connections).toBe(1)
  })

  it('drops sockets that do not complete their upgrade in time (slowloris), and serves others meanwhile', async () => {
    const relay = await startRelay({ limits: { upgradeTimeoutMs: 300, maxConnectionsPerAddress: 20 } })
    const slow = Array.from({ length: 10 }, (_, i) => {
      const socket = connect(relay.port, '127.0.0.1')
      socket.on('error', () => {})
      // Half send an incomplete upgrade request, half nothing at all.
      if (i % 2 === 0) socket.write(`GET /${'a'.repeat(32)}.personal HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n`)
      cleanups.push(() => socket.destroy())
      return new Promise<number>((resolve) => {
        const start = Date.now()
        socket.once('close', () => resolve(Date.now() - start))
      })
    })
    const alice = makeAccount()
    const roomId = alice.roomId()
    expect(await outcome(rawClient(roomUrl(relay, roomId, alice.token(roomId))))).toBe('admitted')
    const lifetimes = await Promise.race([Promise.all(slow), sleep(5000).then(() => [])])
    expect(lifetimes).toHaveLength(10)
    for (const ms of lifetimes) expect(ms).toBeLessThan(3000)
    expect(relay.metrics().limitHits.upgradeTimeout).toBe(10)
    // Sockets beyond twice the per-address limit are dropped at once.
    const flood = Array.from({ length: 50 }, () => connect(relay.port, '127.0.0.1').on('error', () => {}))
    cleanups.push(() => flood.forEach((s) => s.destroy()))
    await waitFor(() => relay.metrics().limitHits.connectionsPerAddress >= 10, 5000, 'flood dropped')
    expect(relay.metrics().sockets).toBeLessThanOrEqual(41)
  })

  it('bounds rooms and stored bytes over all accounts (self-minted accounts cannot fill the relay)', async () => {
    const relay = await startRelay({ limits: { maxRooms: 3, maxStoredBytes: 5000 } })
    const minted = Array.from({ length: 4 }, () => makeAccount())
    const results: Array<'admitted' | number> = []
    for (const who of minted) {
      const client = rawClient(roomUrl(relay, who.roomId(), who.token(who.roomId())))
      cleanups.push(() => client.ws.terminate())
      results.push(await outcome(client))
    }
    expect(results).toEqual(['admitted', 'admitted', 'admitted', CloseCode.TooManyRooms])
    expect(relay.metrics().limitHits.rooms).toBe(1)

    const writers = minted.slice(0, 2).map((who) => rawClient(roomUrl(relay, who.roomId(), who.token(who.roomId()))))
    cleanups.push(() => writers.forEach((w) => w.ws.terminate()))
    await Promise.all(writers.map((w) => w.opened))
    const write = (w: RawClient, marker: string) => {
      const doc = new Y.Doc()
      doc.getArray<Uint8Array>('log').push([fakeEnvelope(marker, 3000)])
      w.send(updateFrame(Y.encodeStateAsUpdate(doc)))
    }
    write(writers[0]!, 'first-account')
    await waitFor(() => relay.metrics().storedBytes > 3000, 5000, 'first write stored')
    write(writers[1]!, 'second-account')
    expect((await writers[1]!.closed).code).toBe(CloseCode.QuotaExceeded)
    expect(relay.metrics().limitHits.storedBytes).toBe(1)
    expect(relay.metrics().storedBytes).toBeLessThanOrEqual(5000)
  })

  it('lets the operator decide which accounts may use the relay (authorizeAccount, --accounts FILE)', async () => {
    const alice = makeAccount()
    const bob = makeAccount()
    const relay = await startRelay({
      authorizeAccount: async (accountId) => {
        await sleep(5)
        return accountId === alice.account.accountId
      },
    })
    expect(await outcome(rawClient(roomUrl(relay, alice.roomId(), alice.token(alice.roomId()))))).toBe('admitted')
    const refused = rawClient(roomUrl(relay, bob.roomId(), bob.token(bob.roomId())))
    expect(await outcome(refused)).toBe(CloseCode.Forbidden)
    expect(refused.messages).toHaveLength(0)
    expect(relay.metrics().limitHits.account).toBe(1)
    // Pairing rooms stay open to devices that have no account yet.
    expect(await outcome(rawClient(roomUrl(relay, pairingRoom())))).toBe('admitted')

    // The CLI, in process: --accounts FILE with one id per line.
    const dir = mkdtempSync(join(tmpdir(), 'contextsync-accounts-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const file = join(dir, 'accounts.txt')
    writeFileSync(file, `# who may sync here\n${alice.account.accountId}\n\n`)
    let stdout = ''
    let stop: ((signal: string) => void) | undefined
    const exited = main(['relay', '--port', '0', '--data', ':memory:', '--log-level', 'silent', '--accounts', file], {
      stdout: (text) => (stdout += text),
      stderr: () => {},
      env: {},
      onShutdownSignal: (handler) => {
        stop = handler
        return () => {}
      },
    })
    await waitFor(() => stdout.includes('listening on'), 10_000, 'CLI relay listening')
    const url = /listening on (\S+)/.exec(stdout)![1]!
    cleanups.push(async () => {
      stop?.('SIGTERM')
      await exited
    })
    expect(await outcome(rawClient(roomUrl(url, alice.roomId(), alice.token(alice.roomId()))))).toBe('admitted')
    expect(await outcome(rawClient(roomUrl(url, bob.roomId(), bob.token(bob.roomId()))))).toBe(CloseCode.Forbidden)
  })
})

describe('finding 3: the replay cache never locks everyone out', () => {
  it('admits a valid token while the cache holds a million nonces, and still refuses its replay', async () => {
    const nonces = new NonceCache()
    const keep = Date.now() + 600_000
    for (let i = 0; i < 1_000_000; i++) nonces.claim(`filler-${i}`, keep)
    const relay = await startRelay({ auth: tokenAuth({ nonces }) })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const token = alice.token(roomId)
    expect(await outcome(rawClient(roomUrl(relay, roomId, token)))).toBe('admitted')
    expect(await outcome(rawClient(roomUrl(relay, roomId, token)))).toBe(CloseCode.TokenReplayed)
    expect(relay.metrics().rejections[CloseCode.RateLimited]).toBeUndefined()
  })

  it('forgets nonces once their token could no longer verify, and refuses lifetimes past 10 minutes', async () => {
    let now = 1_000_000_000
    const nonces = new NonceCache({ now: () => now })
    for (let i = 0; i < 10_000; i++) expect(nonces.claim(`n-${i}`, now + 1000 + (i % 100) * 100)).toBe(true)
    expect(nonces.claim('n-5', now + 5000)).toBe(false)
    expect(nonces.size).toBe(10_000)
    now += 20_000
    expect(nonces.claim('fresh', now + 1000)).toBe(true)
    expect(nonces.size).toBe(1)
    expect(nonces.claim('n-5', now + 1000)).toBe(true)

    const relay = await startRelay()
    const alice = makeAccount()
    const roomId = alice.roomId()
    expect(await outcome(rawClient(roomUrl(relay, roomId, alice.token(roomId, { lifetimeSeconds: 600 }))))).toBe('admitted')
    expect(await outcome(rawClient(roomUrl(relay, roomId, alice.token(roomId, { lifetimeSeconds: 3600 }))))).toBe(CloseCode.TokenExpired)
  })
})

describe('finding 4: quota accounting is incremental', () => {
  it('near the quota, a device rewriting its log is not charged a full merge of the room per update', async () => {
    const relay = await startRelay({ limits: { maxStoredBytesPerAccount: 64_000 } })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const transport = websocketTransport({ url: relay.url, token: alice.token, WebSocketPolyfill: NodeWebSocket, refusedBackoffTime: 60_000 })
    cleanups.push(() => transport.close())
    const writer = sealedLog(roomId)
    const attachment = transport.attach(writer)
    const errors: string[] = []
    attachment.on('error', ({ code }) => errors.push(code))
    await waitFor(() => attachment.status === 'synced', 5000, 'writer synced')
    writer.log.push([fakeEnvelope('bulk', 60_000), fakeEnvelope('churn-0', 1000)])
    await waitFor(() => relay.metrics().storedBytes > 60_000, 5000, 'bulk stored')
    const merges = vi.spyOn(Room.prototype, 'mergedState')
    const UPDATES = 100
    for (let i = 1; i <= UPDATES; i++) {
      writer.doc.transact(() => {
        writer.log.delete(1, 1)
        writer.log.push([fakeEnvelope(`churn-${i}`, 1000)])
      })
    }
    const checker = sealedLog(roomId)
    const other = websocketTransport({ url: relay.url, token: alice.token, WebSocketPolyfill: NodeWebSocket })
    cleanups.push(() => other.close())
    other.attach(checker)
    const last = fakeEnvelope(`churn-${UPDATES}`, 1000)
    await waitFor(() => checker.log.length === 2 && Buffer.from(checker.log.get(1)).equals(Buffer.from(last)), 10_000, 'last rewrite')
    expect(errors).toEqual([])
    console.log(`quota: ${merges.mock.calls.length} full encodings of the room for ${UPDATES} updates near the quota`)
    expect(merges.mock.calls.length).toBeLessThanOrEqual(UPDATES / 5)
    expect(relay.metrics().storedSize).toBeLessThanOrEqual(64_000)
  })

  it('a room whose merged size fits a few dozen bytes under the quota keeps taking rewrites (the estimate overcounts; no false 4413)', async () => {
    // What the room merges to, computed the way the relay's room doc will hold it.
    const writer = sealedLog('sizing')
    writer.doc.clientID = 4242
    writer.log.push([fakeEnvelope('bulk', 60_000), fakeEnvelope('churn-0', 1000)])
    const merged = Y.encodeStateAsUpdate(writer.doc).length
    // The exact figure stays within ~10 bytes of it; the estimate grows ~17 bytes per rewrite until
    // the next exact figure (an eighth of the room appended: ~8 rewrites), so it crosses this quota
    // while the room still fits under it.
    const QUOTA = merged + 90

    const relay = await startRelay({ limits: { maxStoredBytesPerAccount: QUOTA } })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const transport = websocketTransport({ url: relay.url, token: alice.token, WebSocketPolyfill: NodeWebSocket, refusedBackoffTime: 60_000 })
    cleanups.push(() => transport.close())
    // sealedLog's shape with a fixed client id (set before the awareness reads it).
    const doc = new Y.Doc()
    doc.clientID = 4242
    const room = { roomId, doc, awareness: new awarenessProtocol.Awareness(doc), log: doc.getArray<Uint8Array>('log') }
    cleanups.push(() => room.awareness.destroy())
    const attachment = transport.attach(room)
    const errors: string[] = []
    attachment.on('error', ({ code }) => errors.push(code))
    await waitFor(() => attachment.status === 'synced', 5000, 'writer synced')
    // The same client id and the same operations: the same structs as the sizing doc.
    room.log.push([fakeEnvelope('bulk', 60_000), fakeEnvelope('churn-0', 1000)])
    expect(Y.encodeStateAsUpdate(room.doc).length).toBe(merged)
    await waitFor(() => relay.metrics().storedBytes >= merged, 5000, 'bulk stored')
    // Each rewrite replaces the 1000-byte entry by another: the merged size stays where it was,
    // while the estimate grows by the deletion's own bytes until the next exact figure.
    const UPDATES = 40
    for (let i = 1; i <= UPDATES; i++) {
      room.doc.transact(() => {
        room.log.delete(1, 1)
        room.log.push([fakeEnvelope(`churn-${i}`, 1000)])
      })
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
    const checker = sealedLog(roomId)
    const other = websocketTransport({ url: relay.url, token: alice.token, WebSocketPolyfill: NodeWebSocket })
    cleanups.push(() => other.close())
    other.attach(checker)
    const last = fakeEnvelope(`churn-${UPDATES}`, 1000)
    await waitFor(() => checker.log.length === 2 && Buffer.from(checker.log.get(1)).equals(Buffer.from(last)), 10_000, 'last rewrite')
    expect(errors, 'a rewrite that fits was refused').toEqual([])
    expect(relay.metrics().storedSize).toBeLessThanOrEqual(QUOTA)
  })
})

/** The awareness states a raw client has been told about. */
function awarenessSeenBy(client: RawClient): () => Map<number, unknown> {
  const awareness = new awarenessProtocol.Awareness(new Y.Doc())
  awareness.setLocalState(null)
  cleanups.push(() => awareness.destroy())
  let read = 0
  return () => {
    for (; read < client.messages.length; read++) {
      const decoder = decoding.createDecoder(client.messages[read]!)
      if (decoding.readVarUint(decoder) !== 1) continue
      awarenessProtocol.applyAwarenessUpdate(awareness, decoding.readVarUint8Array(decoder), 'relay')
    }
    return awareness.getStates() as Map<number, unknown>
  }
}

describe('finding 5: awareness states belong to the connection that introduced them', () => {
  it('another device cannot overwrite or remove a state, nor flood the room with states or bytes', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const car = otherDevice(alice)
    const roomId = alice.roomId()
    const watcher = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    const seen = awarenessSeenBy(watcher)
    const phone = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    const intruder = rawClient(roomUrl(relay, roomId, car.token(roomId)))
    cleanups.push(() => [watcher, phone, intruder].forEach((c) => c.ws.terminate()))
    await Promise.all([watcher.opened, phone.opened, intruder.opened])
    phone.send(awarenessFrame([{ clientId: 1111, clock: 1, state: { who: 'phone' } }]))
    await waitFor(() => (seen().get(1111) as { who?: string } | undefined)?.who === 'phone', 5000, 'phone state')

    intruder.send(awarenessFrame([{ clientId: 1111, clock: 5, state: { who: 'impostor' } }]))
    intruder.send(awarenessFrame([{ clientId: 1111, clock: 6, state: null }]))
    intruder.send(awarenessFrame(Array.from({ length: 50 }, (_, i) => ({ clientId: 5000 + i, clock: 1, state: { i } }))))
    intruder.send(awarenessFrame([{ clientId: 6000, clock: 1, state: { pad: 'x'.repeat(100_000) } }]))
    intruder.send(awarenessFrame([{ clientId: 7000, clock: 1, state: { who: 'car' } }]))
    await waitFor(() => (seen().get(7000) as { who?: string } | undefined)?.who === 'car', 5000, 'car own state')
    const states = seen()
    expect(states.get(1111)).toEqual({ who: 'phone' })
    expect([...states.keys()].filter((id) => id >= 5000 && id < 6001)).toEqual([])
    expect(relay.metrics().limitHits).toMatchObject({ awarenessForeign: 2, awarenessStates: 1, awarenessBytes: 1 })

    // The owner still updates its state; the same device reconnecting takes it over.
    phone.send(awarenessFrame([{ clientId: 1111, clock: 2, state: { who: 'phone', v: 2 } }]))
    await waitFor(() => (seen().get(1111) as { v?: number } | undefined)?.v === 2, 5000, 'owner update')
    const phoneAgain = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    cleanups.push(() => phoneAgain.ws.terminate())
    await phoneAgain.opened
    phoneAgain.send(awarenessFrame([{ clientId: 1111, clock: 3, state: { who: 'phone', v: 3 } }]))
    await waitFor(() => (seen().get(1111) as { v?: number } | undefined)?.v === 3, 5000, 'same-device take-over')
    // The intruder leaving removes only its own state.
    intruder.ws.close()
    await waitFor(() => !seen().has(7000), 5000, 'intruder state removed')
    expect(seen().get(1111)).toEqual({ who: 'phone', v: 3 })
  })
})
