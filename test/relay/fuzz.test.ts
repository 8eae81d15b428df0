/**
 * Seeded fuzzing of the relay's frame handling. Replay a failure with CONTEXTSYNC_FUZZ_SEED=<seed>.
 *
 * The relay closes a connection at its first malformed frame (4400) and reads nothing more from
 * it, so over real sockets each connection gets one malformed frame *parsed*; the frames pipelined
 * behind it are received and dropped. Hence two phases, both seeded:
 *  1. sockets: ≥ 100k fuzz frames written over real connections by a few concurrent lanes that
 *     reconnect whenever the relay closes them;
 *  2. handler: ≥ 100k random / truncated / bit-flipped frames each *parsed* by the exact
 *     connection code path (`RelayConnection` on a room), with a fresh connection after each
 *     refusal — no TCP handshake per frame, so it fits the time budget.
 * After both, the relay still answers /healthz, a good client syncs a fresh room and the fuzzed
 * rooms, and nothing crashed.
 */
import { EventEmitter } from 'node:events'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as prng from 'lib0/prng'
import * as syncProtocol from 'y-protocols/sync'
import { ready } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { RelayConnection } from '../../src/relay/connection.js'
import { resolveLimits } from '../../src/relay/limits.js'
import { silentLogger } from '../../src/relay/log.js'
import { RelayMetrics } from '../../src/relay/metrics.js'
import { RelayStorage } from '../../src/relay/accounting.js'
import { memoryStore } from '../../src/relay/persistence.js'
import { Room } from '../../src/relay/room.js'
import { CloseCode } from '../../src/wire/close-codes.js'
import { closeRelays, fakeEnvelope, NodeWebSocket, sealedLog, startRelay, waitFor } from './helpers.js'

const SEED = Number(process.env.CONTEXTSYNC_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31))

beforeAll(async () => {
  await ready()
  console.log(`relay fuzz seed: ${SEED} (replay with CONTEXTSYNC_FUZZ_SEED=${SEED})`)
})
afterEach(async () => {
  await closeRelays()
})

// ——————————————————————————————————————————————————————————————— frame generators

function syncFrame(type: 'step1' | 'step2' | 'update', payload: Uint8Array): Uint8Array {
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 0)
  if (type === 'step1') {
    encoding.writeVarUint(e, syncProtocol.messageYjsSyncStep1)
    encoding.writeVarUint8Array(e, payload)
  } else if (type === 'step2') {
    encoding.writeVarUint(e, syncProtocol.messageYjsSyncStep2)
    encoding.writeVarUint8Array(e, payload)
  } else {
    syncProtocol.writeUpdate(e, payload)
  }
  return encoding.toUint8Array(e)
}

/** A well-formed update from random edits on a doc with a random client id. */
function randomUpdate(gen: prng.PRNG): Uint8Array {
  const doc = new Y.Doc()
  doc.clientID = prng.uint32(gen, 1, 2 ** 31)
  const log = doc.getArray<Uint8Array>('log')
  const ops = prng.uint32(gen, 1, 4)
  for (let i = 0; i < ops; i++) {
    const op = prng.uint32(gen, 0, 5)
    if (op <= 2) log.push([prng.uint8Array(gen, prng.uint32(gen, 0, 96))])
    else if (op === 3 && log.length > 0) log.delete(0, 1)
    else if (op === 4) doc.getMap('m').set(prng.word(gen, 1, 6), prng.word(gen))
    else doc.getText('t').insert(0, prng.utf16String(gen, 12))
  }
  const update = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return update
}

function randomStateVector(gen: prng.PRNG): Uint8Array {
  const e = encoding.createEncoder()
  const n = prng.uint32(gen, 0, 4)
  encoding.writeVarUint(e, n)
  for (let i = 0; i < n; i++) {
    encoding.writeVarUint(e, prng.uint32(gen, 0, 2 ** 31))
    encoding.writeVarUint(e, prng.uint32(gen, 0, 2 ** 20))
  }
  return encoding.toUint8Array(e)
}

function randomAwareness(gen: prng.PRNG): Uint8Array {
  const inner = encoding.createEncoder()
  const n = prng.uint32(gen, 1, 3)
  encoding.writeVarUint(inner, n)
  for (let i = 0; i < n; i++) {
    encoding.writeVarUint(inner, prng.uint32(gen, 1, 2 ** 31))
    encoding.writeVarUint(inner, prng.uint32(gen, 0, 1000))
    encoding.writeVarString(inner, prng.bool(gen) ? 'null' : JSON.stringify({ presence: prng.word(gen) }))
  }
  const e = encoding.createEncoder()
  encoding.writeVarUint(e, 1)
  encoding.writeVarUint8Array(e, encoding.toUint8Array(inner))
  return encoding.toUint8Array(e)
}

/** A valid frame of any kind the relay accepts. */
function validFrame(gen: prng.PRNG): Uint8Array {
  switch (prng.uint32(gen, 0, 4)) {
    case 0:
      return syncFrame('step1', randomStateVector(gen))
    case 1:
      return syncFrame('step2', randomUpdate(gen))
    case 2:
      return syncFrame('update', randomUpdate(gen))
    case 3:
      return randomAwareness(gen)
    default:
      return new Uint8Array([3])
  }
}

type FrameKind = 'random' | 'truncated' | 'mutated' | 'valid'

/** Cheap templates to truncate and mutate, built once per seed. */
function templates(gen: prng.PRNG): Uint8Array[] {
  return Array.from({ length: 64 }, () => validFrame(gen))
}

function fuzzFrame(gen: prng.PRNG, pool: Uint8Array[], kind: FrameKind): Uint8Array {
  if (kind === 'valid') return validFrame(gen)
  if (kind === 'random') {
    const len = prng.real53(gen) < 0.9 ? prng.uint32(gen, 0, 48) : prng.uint32(gen, 49, 4096)
    const bytes = prng.uint8Array(gen, len)
    // Often start with a plausible message type so deeper decoders get exercised.
    if (len > 0 && prng.bool(gen)) bytes[0] = prng.uint32(gen, 0, 3)
    if (len > 1 && bytes[0] === 0 && prng.bool(gen)) bytes[1] = prng.uint32(gen, 0, 2)
    return bytes
  }
  const template = prng.oneOf(gen, pool)
  if (kind === 'truncated') return template.slice(0, prng.uint32(gen, 0, Math.max(0, template.length - 1)))
  const bytes = template.slice()
  const flips = prng.uint32(gen, 1, 3)
  for (let i = 0; i < flips && bytes.length > 0; i++) bytes[prng.uint32(gen, 0, bytes.length - 1)]! ^= 1 << prng.uint32(gen, 0, 7)
  return bytes
}

function pickKind(gen: prng.PRNG, weights: Record<FrameKind, number>): FrameKind {
  let r = prng.real53(gen)
  for (const [kind, weight] of Object.entries(weights) as [FrameKind, number][]) {
    if ((r -= weight) < 0) return kind
  }
  return 'random'
}

// ——————————————————————————————————————————————————————————————— the test

/** Stand-in for a `ws` socket so the connection handler runs without TCP. */
class FakeSocket extends EventEmitter {
  readyState = 1
  closedWith: number | undefined
  send(_frame: Uint8Array, cb?: (error?: Error) => void): void {
    cb?.()
  }
  close(code: number): void {
    this.closedWith = code
    this.readyState = 2
  }
  terminate(): void {
    this.readyState = 3
  }
  ping(): void {}
}

describe('relay fuzz', () => {
  it('survives ≥ 100k random and truncated frames over sockets and through the handler, then still syncs', async () => {
    const started = Date.now()
    const gen = prng.create(SEED)
    const pool = templates(gen)
    const relay = await startRelay({ auth: 'none', limits: { messagesPerSecond: 1_000_000, burst: 1_000_000 } })
    const fuzzRooms = ['acct.fuzz-a', 'acct.fuzz-b', 'acct.fuzz-c']

    // Phase 1: real sockets, a few lanes, each pipelining up to 60 frames per connection.
    const SOCKET_FRAMES = 100_000
    let sent = 0
    let garbageSent = 0
    let connections = 0
    const lane = async (laneIndex: number): Promise<void> => {
      const laneGen = prng.create(SEED + laneIndex + 1)
      while (sent < SOCKET_FRAMES) {
        connections += 1
        const ws = new WebSocket(`${relay.url}/${prng.oneOf(laneGen, fuzzRooms)}`)
        ws.on('error', () => {})
        const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()))
        await new Promise<void>((resolve) => {
          ws.once('open', () => resolve())
          ws.once('close', () => resolve())
        })
        if (ws.readyState === WebSocket.OPEN) {
          const batch = prng.uint32(laneGen, 1, 60)
          for (let i = 0; i < batch; i++) {
            const kind = pickKind(laneGen, { random: 0.45, truncated: 0.35, mutated: 0.1, valid: 0.1 })
            if (kind === 'random' || kind === 'truncated') garbageSent += 1
            ws.send(fuzzFrame(laneGen, pool, kind))
            sent += 1
          }
          // All-valid batches are closed by us; the relay closes the rest with 4400.
          setTimeout(() => ws.close(), 200).unref()
        }
        await closed
      }
    }
    await Promise.all([0, 1, 2, 3].map(lane))
    const afterSockets = relay.metrics()
    console.log(
      `fuzz sockets: ${sent} frames (${garbageSent} random/truncated) over ${connections} connections; ` +
        `relay parsed ${afterSockets.messagesIn}, refused ${afterSockets.rejections[CloseCode.MalformedFrame] ?? 0} with 4400 ` +
        `in ${Date.now() - started} ms`,
    )
    expect(sent).toBeGreaterThanOrEqual(SOCKET_FRAMES)
    expect(garbageSent).toBeGreaterThan(75_000)
    expect(afterSockets.rejections[CloseCode.MalformedFrame]).toBeGreaterThan(connections * 0.8)
    expect((await fetch(`http://127.0.0.1:${relay.port}/healthz`)).status).toBe(200)

    // Phase 2: every frame parsed by the real connection handler on a real room.
    const handlerStart = Date.now()
    const storage = await RelayStorage.open(memoryStore())
    const metrics = new RelayMetrics(() => storage.totalBytes)
    const context = {
      limits: resolveLimits({ messagesPerSecond: 1_000_000, burst: 1_000_000 }),
      metrics,
      logger: silentLogger,
      storage,
    }
    // A fresh room every 2,000 frames: random client ids grow a room's state vector, and every
    // refusal re-joins, so one room for all frames would make the run quadratic.
    let room = new Room('acct.handler-fuzz-0', storage, silentLogger, 500, () => {})
    let roomsUsed = 1
    let unencodable = 0
    const retire = (): void => {
      // Bit-flipped updates that decode used to leave rooms unencodable (zero-length structs);
      // the relay now refuses them up front, so every fuzzed room must still merge.
      if (!room.tryMerge()) unencodable += 1
      room.destroy()
    }
    const HANDLER_FRAMES = 100_000
    const counts: Record<FrameKind, number> = { random: 0, truncated: 0, mutated: 0, valid: 0 }
    let socket = new FakeSocket()
    const open = (): void => {
      socket = new FakeSocket()
      const connection = new RelayConnection(
        socket as unknown as WebSocket,
        room,
        { accountId: 'acct', deviceId: 'fuzzer' },
        context,
        () => {},
      )
      connection.start()
    }
    open()
    let refusals = 0
    for (let i = 1; counts.random + counts.truncated < HANDLER_FRAMES; i++) {
      const kind = pickKind(gen, { random: 0.5, truncated: 0.4, mutated: 0.05, valid: 0.05 })
      counts[kind] += 1
      socket.emit('message', Buffer.from(fuzzFrame(gen, pool, kind)), true)
      if (socket.closedWith !== undefined) {
        expect(socket.closedWith).toBe(CloseCode.MalformedFrame)
        refusals += 1
        socket.emit('close')
        open()
      }
      if (i % 2000 === 0) {
        socket.emit('close')
        retire()
        room = new Room(`acct.handler-fuzz-${roomsUsed++}`, storage, silentLogger, 500, () => {})
        open()
      }
    }
    socket.emit('close')
    retire()
    console.log(
      `fuzz handler: ${JSON.stringify(counts)} frames, ${refusals} refused with 4400, ` +
        `${metrics.messagesIn} parsed in ${Date.now() - handlerStart} ms over ${roomsUsed} rooms ` +
        `(${unencodable} left unencodable by bit-flipped updates)`,
    )
    expect(metrics.messagesIn).toBe(counts.random + counts.truncated + counts.mutated + counts.valid)
    expect(unencodable).toBe(0)
    // Nearly every random/truncated frame is malformed (a few random ones are valid by chance).
    expect(refusals).toBeGreaterThan((counts.random + counts.truncated) * 0.95)

    // The relay still serves: a fresh room and every fuzzed room sync for a good client.
    const good = websocketTransport({ url: relay.url, WebSocketPolyfill: NodeWebSocket })
    const other = websocketTransport({ url: relay.url, WebSocketPolyfill: NodeWebSocket })
    for (const roomId of ['acct.after-fuzz', ...fuzzRooms]) {
      const a = sealedLog(roomId)
      const b = sealedLog(roomId)
      const ta = good.attach(a)
      const tb = other.attach(b)
      await waitFor(() => ta.status === 'synced' && tb.status === 'synced', 10_000, `synced ${roomId}`)
      const before = b.log.length
      a.log.push([fakeEnvelope(`after-fuzz-${roomId}`)])
      await waitFor(() => b.log.length === before + 1, 10_000, `delivered in ${roomId}`)
      expect(b.log.get(b.log.length - 1)).toEqual(fakeEnvelope(`after-fuzz-${roomId}`))
    }
    expect(relay.metrics().rejections[CloseCode.InternalError]).toBeUndefined()
    good.close()
    other.close()
    const elapsed = Date.now() - started
    console.log(`relay fuzz total ${elapsed} ms (seed ${SEED})`)
    expect(elapsed).toBeLessThan(60_000)
  }, 120_000)
})
