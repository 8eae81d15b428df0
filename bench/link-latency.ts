/**
 * Parts 3 and 5 of bench/link.ts, latency: a presence change during a large sync on the link, and
 * the direct-WebSocket baseline of a streamed answer's token latency.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as prng from 'lib0/prng'
import * as syncProtocol from 'y-protocols/sync'
import { WebSocket, WebSocketServer } from 'ws'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { MessageType } from '../src/wire/messages.js'
import { linkServer } from '../src/adapters/link-server.js'
import { linkTransport } from '../src/adapters/link.js'
import { bleLinkSimulator } from '../src/testing/ble-link.js'
import { INTERVAL, KEEPALIVE_MS, MTU, SEED, keyOf, type AnswerSealing } from './link-fixtures.js'

/**
 * Part 3: a presence change during a large initial sync on the same channel. The glasses come
 * back with `syncBytes` the phone lacks (one sync step 2); 3 s into it they change presence.
 * Baselines in the same run: the same change on an idle link, and the sync's own duration (what
 * the change would wait for if presence queued behind the sync's message, as before the lanes).
 * Bound the link promises: the packets already in the channel's TX buffer plus one event.
 */
export async function presenceDuringSync(syncBytes: number): Promise<{ presenceMs: number; syncMs: number }> {
  const sim = bleLinkSimulator({ seed: SEED, mtu: MTU, connectionIntervalMs: INTERVAL })
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: KEEPALIVE_MS })
  const glasses = linkTransport({ clock: sim.clock, keepaliveMs: KEEPALIVE_MS })
  const doc = new Y.Doc()
  const awareness = new Awareness(doc)
  const chunk = 1024
  for (let i = 0; i < Math.ceil(syncBytes / chunk); i++) doc.getArray<Uint8Array>('log').push([new Uint8Array(chunk).fill(i & 0xff)])
  glasses.attach({ roomId: 'big', doc, awareness })
  const link = sim.connect()
  hub.accept(link.central)
  glasses.connect(link.peripheral)
  const started = sim.clock.now()
  await sim.advance(3_000)
  const phone = hub.room('big')!
  let seenAt: number | undefined
  phone.awareness.on('update', () => {
    if (seenAt === undefined && phone.awareness.states.get(awareness.clientID)?.['where'] === 'kitchen') seenAt = sim.clock.now()
  })
  const setAt = sim.clock.now()
  awareness.setLocalState({ where: 'kitchen' })
  let syncedAt: number | undefined
  while (syncedAt === undefined && sim.clock.now() - started < 600_000) {
    await sim.advance(30)
    if (phone.doc.getArray('log').length === doc.getArray('log').length) syncedAt = sim.clock.now()
  }
  glasses.close()
  hub.close()
  awareness.destroy()
  if (seenAt === undefined || syncedAt === undefined) throw new RangeError(`presence or sync of ${syncBytes} B never arrived`)
  return { presenceMs: seenAt - setAt, syncMs: syncedAt - setAt }
}

/**
 * Part 5 baseline: the same streamed answers from the phone to the glasses over a direct
 * WebSocket — real sockets on 127.0.0.1 (`ws`), one y-protocols sync update per envelope, the
 * envelopes sealed 20 ms after their token as the sealer's default `streamFlushDelayMs` does —
 * timed from each token's creation to its arrival in the glasses' doc, in wall time.
 */
export async function websocketTokenDelays(answer: AnswerSealing, answers: number): Promise<number[]> {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0 })
  await new Promise<void>((resolve) => server.once('listening', () => resolve()))
  const port = (server.address() as { port: number }).port
  const phoneDoc = new Y.Doc()
  const glassesDoc = new Y.Doc()
  const connected = new Promise<WebSocket>((resolve) => server.once('connection', (socket) => resolve(socket)))
  const client = new WebSocket(`ws://127.0.0.1:${port}`)
  client.binaryType = 'nodebuffer'
  client.on('message', (data: Buffer) => {
    const decoder = decoding.createDecoder(new Uint8Array(data.buffer, data.byteOffset, data.byteLength))
    decoding.readVarUint(decoder)
    syncProtocol.readSyncMessage(decoder, encoding.createEncoder(), glassesDoc, 'phone')
  })
  const socket = await connected
  phoneDoc.on('update', (update: Uint8Array) => {
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeUpdate(encoder, update)
    socket.send(encoding.toUint8Array(encoder))
  })
  const gen = prng.create(SEED)
  const createdAt = new Map<string, number[]>()
  const delays: number[] = []
  glassesDoc.getArray<Uint8Array>('log').observe((event) => {
    const now = performance.now()
    for (const change of event.changes.delta) {
      for (const entry of (change.insert as Uint8Array[] | undefined) ?? []) for (const at of createdAt.get(keyOf(entry)) ?? []) delays.push(now - at)
    }
  })
  for (let run = 0; run < answers; run++) {
    const start = performance.now()
    let first = 0
    const writes = answer.sizes.map((size, k) => {
      const tokens = Array.from({ length: answer.tokens[k]! }, (_, j) => start + (first + j) * 80)
      first += answer.tokens[k]!
      return { size, tokens }
    })
    for (const { size, tokens } of writes) {
      const due = tokens[0]! + answer.sealDelayMs
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - performance.now())))
      const entry = new Uint8Array(size)
      for (let i = 0; i < size; i++) entry[i] = prng.uint32(gen, 0, 255)
      createdAt.set(keyOf(entry), tokens)
      phoneDoc.getArray<Uint8Array>('log').push([entry])
    }
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  client.close()
  for (const peer of server.clients) peer.terminate()
  await new Promise<void>((resolve) => server.close(() => resolve()))
  const expected = answers * answer.tokens.reduce((x, y) => x + y, 0)
  if (delays.length !== expected) throw new RangeError(`WebSocket baseline: ${delays.length} of ${expected} tokens arrived`)
  return delays
}
