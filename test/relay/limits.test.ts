import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { ready } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import type { Transport } from '../../src/adapters/transport.js'
import { CloseCode, type Relay } from '../../src/relay/index.js'
import {
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
  type TestAccount,
} from './helpers.js'

beforeAll(async () => {
  await ready()
})

const transports: Transport[] = []
afterEach(async () => {
  for (const t of transports.splice(0)) await t.close()
  await closeRelays()
})

/** A synced observer of a room through the websocket transport. */
async function observer(relay: Relay, who: TestAccount, roomId: string) {
  const transport = websocketTransport({
    url: relay.url,
    token: who.token,
    WebSocketPolyfill: NodeWebSocket,
    refusedBackoffTime: 60_000,
  })
  transports.push(transport)
  const room = sealedLog(roomId)
  const attachment = transport.attach(room)
  const errors: string[] = []
  attachment.on('error', ({ code }) => errors.push(code))
  await waitFor(() => attachment.status === 'synced', 5000, 'observer synced')
  return { ...room, attachment, errors }
}

/** An update that appends `entries` to a fresh doc's log (independent of the room's state). */
function appendUpdate(entries: Uint8Array[]): Uint8Array {
  const doc = new Y.Doc()
  doc.getArray<Uint8Array>('log').push(entries)
  return Y.encodeStateAsUpdate(doc)
}

describe('relay limits', () => {
  it('closes an oversized message with 1009, stores nothing from it, keeps serving others', async () => {
    const relay = await startRelay({ limits: { maxMessageBytes: 4096 } })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const watcher = await observer(relay, alice, roomId)
    const big = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    await big.opened
    big.send(updateFrame(appendUpdate([fakeEnvelope('too-big', 8000)])))
    expect((await big.closed).code).toBe(CloseCode.MessageTooBig)
    expect(relay.metrics().rejections[CloseCode.MessageTooBig]).toBe(1)

    const writer = await observer(relay, alice, roomId)
    writer.log.push([fakeEnvelope('small', 100)])
    await waitFor(() => watcher.log.length === 1, 5000, 'small entry delivered')
    await sleep(100)
    expect(watcher.log.toArray().map((e) => e.length)).toEqual([100])
    expect(relay.metrics().storedBytes).toBeLessThan(1000)
  })

  it('closes a flood with 4429; what came after the limit is not stored', async () => {
    const relay = await startRelay({ limits: { messagesPerSecond: 5, burst: 20 } })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const watcher = await observer(relay, alice, roomId)
    const flood = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    await flood.opened
    // Each frame is a distinct independent update: entry i carries marker `flood-i`.
    for (let i = 0; i < 200; i++) flood.send(updateFrame(appendUpdate([fakeEnvelope(`flood-${i}`, 32)])))
    expect((await flood.closed).code).toBe(CloseCode.RateLimited)
    expect(relay.metrics().rejections[CloseCode.RateLimited]).toBe(1)
    await sleep(200)
    // The burst (plus at most a refill or two) got through; nothing after the refusal did.
    const stored = watcher.log.length
    expect(stored).toBeGreaterThanOrEqual(20)
    expect(stored).toBeLessThanOrEqual(22)
    expect(relay.metrics().messagesIn).toBeLessThan(200 + 10)

    // Other connections keep working.
    const writer = await observer(relay, alice, roomId)
    writer.log.push([fakeEnvelope('after-flood')])
    await waitFor(() => watcher.log.length === stored + 1, 5000, 'entry after flood')
  })

  it('refuses a room past the account room quota with 4414 before sending state', async () => {
    const relay = await startRelay({ limits: { maxRoomsPerAccount: 2 } })
    const alice = makeAccount()
    const bob = makeAccount()
    const personal = await observer(relay, alice, alice.roomId('personal'))
    personal.log.push([fakeEnvelope('p')])
    const health = await observer(relay, alice, alice.roomId('health'))
    health.log.push([fakeEnvelope('h')])
    await waitFor(() => relay.metrics().storedBytes > 0)

    const third = rawClient(roomUrl(relay, alice.roomId('work'), alice.token(alice.roomId('work'))))
    expect((await third.closed).code).toBe(CloseCode.TooManyRooms)
    expect(third.messages).toHaveLength(0)
    expect(relay.metrics().rejections[CloseCode.TooManyRooms]).toBe(1)

    // Known rooms still open; other accounts have their own quota.
    const again = await observer(relay, alice, alice.roomId('personal'))
    await waitFor(() => again.log.length === 1, 5000, 'history')
    await observer(relay, bob, bob.roomId('work'))
  })

  it('refuses writes past the stored-bytes quota with 4413, and accepts deletions that free space', async () => {
    const relay = await startRelay({ limits: { maxStoredBytesPerAccount: 3500 } })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const watcher = await observer(relay, alice, roomId)
    const writer = await observer(relay, alice, roomId)
    for (let i = 0; i < 3; i++) writer.log.push([fakeEnvelope(`fits-${i}`, 1000)])
    await waitFor(() => watcher.log.length === 3, 5000, 'three entries')
    writer.log.push([fakeEnvelope('over-quota', 1000)])
    await waitFor(() => writer.errors.includes(String(CloseCode.QuotaExceeded)), 5000, 'quota refusal')
    await sleep(200)
    expect(watcher.log.length).toBe(3)
    expect(relay.metrics().rejections[CloseCode.QuotaExceeded]).toBe(1)
    expect(relay.metrics().storedBytes).toBeLessThanOrEqual(3500)

    // Another device compacts: deleting two entries frees space, so a new entry fits again.
    watcher.log.delete(0, 2)
    await sleep(100)
    watcher.log.push([fakeEnvelope('fits-again', 1000)])
    const checker = await observer(relay, alice, roomId)
    await waitFor(() => checker.log.length === 2, 5000, 'compacted log')
    expect(checker.errors).toEqual([])
    expect(watcher.errors).toEqual([])
    expect(relay.metrics().storedBytes).toBeLessThanOrEqual(3500)
  })

  it('closes a malformed frame with 4400 and stores nothing from it', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const watcher = await observer(relay, alice, roomId)
    const bad = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    await bad.opened
    const frame = updateFrame(appendUpdate([fakeEnvelope('truncated', 200)]))
    bad.send(frame.subarray(0, frame.length - 3))
    expect((await bad.closed).code).toBe(CloseCode.MalformedFrame)
    const text = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    await text.opened
    text.ws.send('hello')
    expect((await text.closed).code).toBe(CloseCode.MalformedFrame)
    // An update Yjs decodes but that would corrupt the room: a zero-length struct.
    const zero = encoding.createEncoder()
    encoding.writeVarUint(zero, 1) // one client
    encoding.writeVarUint(zero, 1) // one struct
    encoding.writeVarUint(zero, 12345) // client
    encoding.writeVarUint(zero, 0) // clock
    encoding.writeUint8(zero, 1) // info: ContentDeleted, no origins → parent info follows
    encoding.writeVarUint(zero, 1) // parent is a root type…
    encoding.writeVarString(zero, 'log') // …named 'log'
    encoding.writeVarUint(zero, 0) // ContentDeleted of length 0
    encoding.writeVarUint(zero, 0) // empty delete set
    const zeroUpdate = encoding.toUint8Array(zero)
    expect(Y.decodeUpdate(zeroUpdate).structs[0]?.length).toBe(0)
    const sneaky = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    await sneaky.opened
    sneaky.send(updateFrame(zeroUpdate))
    expect((await sneaky.closed).code).toBe(CloseCode.MalformedFrame)
    expect(relay.metrics().rejections[CloseCode.MalformedFrame]).toBe(3)
    await sleep(100)
    expect(watcher.log.length).toBe(0)
    expect(relay.metrics().storedBytes).toBe(0)
  })
})
