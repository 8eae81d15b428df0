/**
 * A tampering relay for tests: a real y-websocket server (sync + awareness over `ws`, like
 * `@y/websocket-server`) that does everything a hostile relay can do with the bytes it carries —
 * delete, truncate, wipe, inject, replay, reorder and move sealed-log entries, drop public
 * registry statements, withhold updates, and lose a room's storage. THREAT_MODEL.md ("The relay")
 * lists what such a relay must not achieve; the integrity tests use this server to try.
 *
 * Rooms are the URL path (`/<roomId>?token=…`). Every token is accepted — this relay does not
 * care who connects — but it reads the device id out of the token's relay pass (WIRE.md "Relay
 * access token"; unverified, nothing here checks a signature) so tests can address connections,
 * and withhold traffic, by device.
 *
 * What it keeps about each room:
 * - the server's copy of the outer doc ({@link TamperingRelay.room}; tamper with it through the
 *   bound operations of `sealed-log-tamper.ts`, and every client sees the result as an ordinary
 *   sync update);
 * - a **capture** of every envelope it ever saw there, from any client or its own injections, in
 *   first-seen order — what an attacker keeps for a replay after a deletion; it survives
 *   {@link TamperingRelay.forgetRoom}.
 *
 * Node only (`ws`, `node:http`).
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import * as awarenessProtocol from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import { WebSocketServer, type WebSocket } from 'ws'
import { publicStatementsMap } from '../crdt/registry.js'
import { sealedLog } from '../crdt/sealed-log.js'
import { CloseCode } from '../wire/close-codes.js'
import { MessageType } from '../wire/messages.js'
import { tokenFromProtocols } from '../wire/token-protocol.js'
import { StatementType } from '../crypto/statement.js'
import { fromBase64Url, toHex } from '../util/bytes.js'
import {
  deleteEntries,
  deletePublicStatements,
  deleteRange,
  injectEntries,
  listEntries,
  listPublicStatements,
  moveEntries,
  reorderEntries,
  replayEntries,
  setPublicStatement,
  truncate,
  wipe,
  type EnvelopeInfo,
} from './sealed-log-tamper.js'
import type {
  CapturedEnvelope,
  RelayConnectionInfo,
  TamperingRelay,
  TamperingRelayOptions,
  TamperRoom,
  Withholding,
  WithholdRule,
} from './tampering-relay-types.js'
import { envelopesInUpdate } from './update-envelopes.js'

export * from './tampering-relay-types.js'
export { envelopesInUpdate } from './update-envelopes.js'

/** Transaction origin of updates applied by {@link Withholding.release}. */
export const RELEASE_ORIGIN = Symbol('contextsync/tampering-relay/release')

const WS_OPEN = 1
/** "Going away": y-websocket clients and `websocketTransport` reconnect quietly. */
const GOING_AWAY = CloseCode.GoingAway

/**
 * Start a tampering relay.
 *
 * @example
 * ```ts
 * const relay = await createTamperingRelay()
 * const transport = websocketTransport({ url: relay.url, WebSocketPolyfill: WebSocket })
 * // … devices sync through it …
 * relay.room(phone.roomId('personal')).wipe()
 * const hold = relay.withhold({ to: car.deviceId, roomId: phone.roomId('personal') })
 * hold.release()
 * await relay.close()
 * ```
 */
export async function createTamperingRelay(options: TamperingRelayOptions = {}): Promise<TamperingRelay> {
  const relay = new Harness()
  await relay.listen(options.host ?? '127.0.0.1', options.port ?? 0)
  return relay
}

/** The device id inside a relay token's pass, read without verifying anything. */
export function deviceIdOfToken(token: string): string | undefined {
  const bytes = fromBase64Url(token)
  if (!bytes) return undefined
  try {
    // WIRE.md "Relay access token": u8 version · 32B root · varbytes relayPass · …
    const dec = decoding.createDecoder(bytes)
    // Versions 1 and 2 (2 adds the audience after the room) start the same way.
    const version = decoding.readUint8(dec)
    if ((version !== 1 && version !== 2) || bytes.length < 1 + 32 + 1) return undefined
    dec.pos += 32
    const pass = decoding.readVarUint8Array(dec)
    if (dec.pos > bytes.length) return undefined
    // The pass is a statement (u8 version · u8 type · varbytes body · sig) whose body starts
    // with the 16-byte device id.
    const passDec = decoding.createDecoder(pass)
    if (decoding.readUint8(passDec) !== 1 || decoding.readUint8(passDec) !== StatementType.RelayPass) return undefined
    const body = decoding.readVarUint8Array(passDec)
    if (passDec.pos > pass.length || body.length < 16) return undefined
    return toHex(body.subarray(0, 16))
  } catch {
    return undefined
  }
}

// ————————————————————————————————————————————————————————————————— internals

class Connection {
  alive = true
  /** Awareness client ids this connection announced (removed when it leaves). */
  readonly controlled = new Set<number>()

  constructor(
    readonly id: number,
    readonly ws: WebSocket,
    readonly room: HarnessRoom,
    readonly deviceId: string | undefined,
  ) {}

  send(frame: Uint8Array): void {
    if (!this.alive || this.ws.readyState !== WS_OPEN) return
    this.ws.send(frame, (error) => {
      if (error) this.ws.terminate()
    })
  }

  info(): RelayConnectionInfo {
    return {
      id: this.id,
      roomId: this.room.roomId,
      deviceId: this.deviceId,
      close: (code = GOING_AWAY) => this.ws.close(code),
    }
  }
}

class HarnessRoom {
  readonly doc = new Y.Doc({ gc: true })
  readonly awareness = new awarenessProtocol.Awareness(this.doc)
  readonly connections = new Set<Connection>()

  constructor(readonly roomId: string) {
    // A relay has no presence of its own.
    this.awareness.setLocalState(null)
    // Typed root types from the start, so items always point at these instances.
    sealedLog(this.doc)
    publicStatementsMap(this.doc)
  }

  destroy(): void {
    this.awareness.destroy()
    this.doc.destroy()
  }
}

/** Where a struct of an outer doc lives. */
class WithholdingImpl implements Withholding {
  readonly incoming: Uint8Array[] = []
  readonly outgoing: Array<{ connection: Connection; frame: Uint8Array; envelopes: EnvelopeInfo[] }> = []
  private readonly heldInfo: EnvelopeInfo[] = []

  constructor(
    readonly rule: Readonly<WithholdRule>,
    private readonly harness: Harness,
  ) {}

  get heldCount(): number {
    return this.incoming.length + this.outgoing.length
  }

  heldEnvelopes(): EnvelopeInfo[] {
    return [...this.heldInfo]
  }

  holdIncoming(update: Uint8Array, envelopes: EnvelopeInfo[]): void {
    this.incoming.push(update)
    this.heldInfo.push(...envelopes)
  }

  holdOutgoing(connection: Connection, frame: Uint8Array, envelopes: EnvelopeInfo[]): void {
    this.outgoing.push({ connection, frame, envelopes })
    this.heldInfo.push(...envelopes)
  }

  release(): void {
    if (!this.harness.removeRule(this)) return
    this.harness.releaseIncoming(this.incoming.splice(0))
    for (const { connection, frame } of this.outgoing.splice(0)) connection.send(frame)
  }

  discard(): void {
    this.harness.removeRule(this)
    this.incoming.length = 0
    this.outgoing.length = 0
  }
}

class Harness implements TamperingRelay {
  url = ''
  port = 0
  private readonly http: Server
  private readonly wss: WebSocketServer
  private readonly roomsById = new Map<string, HarnessRoom>()
  /** Capture per room, keyed by the envelope bytes (base64), in first-seen order. */
  private readonly captures = new Map<string, Map<string, CapturedEnvelope>>()
  private readonly rules: WithholdingImpl[] = []
  /** The room each held incoming update was sent to, so a release applies it there. */
  private readonly heldRooms = new WeakMap<Uint8Array, string>()
  private nextConnectionId = 1
  private closed = false

  constructor() {
    this.http = createServer((_request, response) => {
      response.writeHead(200, { 'content-type': 'text/plain' })
      response.end('tampering relay\n')
    })
    this.wss = new WebSocketServer({ server: this.http })
    this.wss.on('connection', (ws, request) => this.onConnection(ws, request))
  }

  listen(host: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject)
      this.http.listen(port, host, () => {
        this.http.off('error', reject)
        this.port = (this.http.address() as AddressInfo).port
        this.url = `ws://${host.includes(':') ? `[${host}]` : host}:${this.port}`
        resolve()
      })
    })
  }

  // ——— public API

  room(roomId: string): TamperRoom {
    this.openRoom(roomId)
    const current = (): Y.Doc => this.openRoom(roomId).doc
    const api: TamperRoom = {
      roomId,
      get doc() {
        return current()
      },
      entries: () => listEntries(current()),
      deleteEntries: (match) => deleteEntries(current(), match),
      deleteRange: (start, end) => deleteRange(current(), start, end),
      truncate: (length) => truncate(current(), length),
      wipe: () => wipe(current()),
      inject: (entries, at) => injectEntries(current(), entries, at),
      replay: (entries) => replayEntries(current(), entries),
      reorder: (seed) => reorderEntries(current(), seed),
      moveTo: (target, match) => moveEntries(current(), target instanceof Y.Doc ? target : target.doc, match),
      publicStatements: () => listPublicStatements(current()),
      deletePublicStatements: (match) => deletePublicStatements(current(), match),
      setPublicStatement: (key, bytes) => setPublicStatement(current(), key, bytes),
      captured: () => this.captured(roomId),
      connections: () => this.connections(roomId),
    }
    return api
  }

  rooms(): string[] {
    return [...this.roomsById.keys()]
  }

  captured(roomId: string): CapturedEnvelope[] {
    return [...(this.captures.get(roomId)?.values() ?? [])].map((e) => ({ ...e, bytes: e.bytes.slice() }))
  }

  withhold(rule: WithholdRule): Withholding {
    const withholding = new WithholdingImpl({ ...rule }, this)
    this.rules.push(withholding)
    return withholding
  }

  forgetRoom(roomId: string): void {
    const room = this.roomsById.get(roomId)
    if (!room) return
    this.roomsById.delete(roomId)
    for (const connection of room.connections) {
      // Dead at once: anything it still sends must not reach the room that replaces this one.
      connection.alive = false
      connection.ws.close(GOING_AWAY)
    }
    room.connections.clear()
    room.destroy()
  }

  connections(roomId?: string): RelayConnectionInfo[] {
    const out: RelayConnectionInfo[] = []
    for (const room of this.roomsById.values()) {
      if (roomId !== undefined && room.roomId !== roomId) continue
      for (const connection of room.connections) if (connection.alive) out.push(connection.info())
    }
    return out.sort((a, b) => a.id - b.id)
  }

  closeConnections(filter: { roomId?: string; deviceId?: string }, code = GOING_AWAY): number {
    let closed = 0
    for (const info of this.connections(filter.roomId)) {
      if (filter.deviceId !== undefined && info.deviceId !== filter.deviceId) continue
      info.close(code)
      closed++
    }
    return closed
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const room of this.roomsById.values()) {
      for (const connection of room.connections) {
        connection.alive = false
        connection.ws.terminate()
      }
      room.destroy()
    }
    this.roomsById.clear()
    this.rules.length = 0
    await new Promise<void>((resolve) => this.wss.close(() => resolve()))
    await new Promise<void>((resolve) => this.http.close(() => resolve()))
  }

  // ——— withholding plumbing (called by WithholdingImpl)

  removeRule(rule: WithholdingImpl): boolean {
    const index = this.rules.indexOf(rule)
    if (index < 0) return false
    this.rules.splice(index, 1)
    return true
  }

  releaseIncoming(updates: Uint8Array[]): void {
    for (const update of updates) {
      const roomId = this.heldRooms.get(update)
      const room = roomId === undefined ? undefined : this.roomsById.get(roomId)
      // A room forgotten meanwhile lost these too; its clients re-upload them on reconnect.
      if (room) applyQuietly(room.doc, update, RELEASE_ORIGIN)
    }
  }

  // ——— rooms and connections

  private openRoom(roomId: string): HarnessRoom {
    let room = this.roomsById.get(roomId)
    if (room) return room
    const created = new HarnessRoom(roomId)
    room = created
    this.roomsById.set(roomId, created)
    created.doc.on('update', (update: Uint8Array, origin: unknown) => this.onDocUpdate(created, update, origin))
    created.awareness.on('update', (change: { added: number[]; updated: number[]; removed: number[] }, origin: unknown) =>
      this.onAwarenessUpdate(created, change, origin),
    )
    return created
  }

  private onConnection(ws: WebSocket, request: IncomingMessage): void {
    const target = parseTarget(request.url, request.headers['sec-websocket-protocol'])
    if (this.closed || target.roomId === undefined) {
      ws.close(CloseCode.MalformedFrame, 'no room')
      return
    }
    const room = this.openRoom(target.roomId)
    const connection = new Connection(
      this.nextConnectionId++,
      ws,
      room,
      target.token === undefined ? undefined : deviceIdOfToken(target.token),
    )
    room.connections.add(connection)
    ws.binaryType = 'nodebuffer'
    ws.on('error', () => ws.terminate())
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
      if (!connection.alive) return
      const frame = Array.isArray(data) ? new Uint8Array(Buffer.concat(data)) : new Uint8Array(data as ArrayBufferLike)
      this.onMessage(connection, frame)
    })
    ws.on('close', () => this.onClose(connection))
    // As a y-websocket server: our sync step 1 first, then everyone's presence.
    const step1 = encoding.createEncoder()
    encoding.writeVarUint(step1, MessageType.Sync)
    syncProtocol.writeSyncStep1(step1, room.doc)
    connection.send(encoding.toUint8Array(step1))
    if (room.awareness.getStates().size > 0) connection.send(awarenessFrame(room.awareness, [...room.awareness.getStates().keys()]))
  }

  private onClose(connection: Connection): void {
    const room = connection.room
    const wasAlive = connection.alive
    connection.alive = false
    room.connections.delete(connection)
    if (wasAlive && this.roomsById.get(room.roomId) === room && connection.controlled.size > 0) {
      awarenessProtocol.removeAwarenessStates(room.awareness, [...connection.controlled], null)
    }
  }

  private onMessage(connection: Connection, frame: Uint8Array): void {
    const room = connection.room
    try {
      const decoder = decoding.createDecoder(frame)
      const type = decoding.readVarUint(decoder)
      if (type === MessageType.Sync) {
        const syncType = decoding.readVarUint(decoder)
        if (syncType === syncProtocol.messageYjsSyncStep1) {
          const encoder = encoding.createEncoder()
          encoding.writeVarUint(encoder, MessageType.Sync)
          syncProtocol.writeSyncStep2(encoder, room.doc, decoding.readVarUint8Array(decoder))
          this.sendSync(connection, encoding.toUint8Array(encoder), undefined)
        } else if (syncType === syncProtocol.messageYjsSyncStep2 || syncType === syncProtocol.messageYjsUpdate) {
          this.onClientUpdate(connection, decoding.readVarUint8Array(decoder))
        }
      } else if (type === MessageType.Awareness) {
        awarenessProtocol.applyAwarenessUpdate(room.awareness, decoding.readVarUint8Array(decoder), connection)
      } else if (type === MessageType.QueryAwareness) {
        connection.send(awarenessFrame(room.awareness, [...room.awareness.getStates().keys()]))
      }
    } catch {
      // A frame this relay cannot read is dropped; it has no reason to protect anyone.
    }
  }

  private onClientUpdate(connection: Connection, update: Uint8Array): void {
    const room = connection.room
    const envelopes = envelopesInUpdate(update, room.doc)
    this.capture(room.roomId, envelopes, connection.deviceId)
    const rule = this.rules.find((r) => matchesIncoming(r.rule, room.roomId, connection.deviceId, envelopes))
    if (rule) {
      this.heldRooms.set(update, room.roomId)
      rule.holdIncoming(update, envelopes)
      return
    }
    applyQuietly(room.doc, update, connection)
  }

  private onDocUpdate(room: HarnessRoom, update: Uint8Array, origin: unknown): void {
    const source = origin instanceof Connection ? origin : undefined
    // Client updates were captured on arrival; the relay's own changes (tampering, releases) here.
    if (!source) this.capture(room.roomId, envelopesInUpdate(update, room.doc), undefined)
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeUpdate(encoder, update)
    const frame = encoding.toUint8Array(encoder)
    for (const connection of room.connections) {
      if (connection !== source) this.sendSync(connection, frame, source?.deviceId)
    }
  }

  private onAwarenessUpdate(room: HarnessRoom, change: { added: number[]; updated: number[]; removed: number[] }, origin: unknown): void {
    if (origin instanceof Connection) {
      for (const id of change.added) origin.controlled.add(id)
      for (const id of change.removed) origin.controlled.delete(id)
    }
    const changed = [...change.added, ...change.updated, ...change.removed]
    if (changed.length === 0) return
    const frame = awarenessFrame(room.awareness, changed)
    for (const connection of room.connections) connection.send(frame)
  }

  /** Send a sync frame (step 2 or update) unless an outgoing rule holds it. */
  private sendSync(connection: Connection, frame: Uint8Array, fromDevice: string | undefined): void {
    const outgoing = this.rules.filter((r) => r.rule.to !== undefined && r.rule.to === connection.deviceId)
    if (outgoing.length > 0) {
      const update = updateOfSyncFrame(frame)
      const envelopes = update ? envelopesInUpdate(update, connection.room.doc) : []
      const capture = this.captures.get(connection.room.roomId)
      const firstFrom = (e: EnvelopeInfo): string | undefined => capture?.get(captureKey(e.bytes))?.from
      const rule = outgoing.find((r) => matchesOutgoing(r.rule, connection.room.roomId, fromDevice, envelopes, firstFrom))
      if (rule) {
        rule.holdOutgoing(connection, frame, envelopes)
        return
      }
    }
    connection.send(frame)
  }

  private capture(roomId: string, envelopes: EnvelopeInfo[], from: string | undefined): void {
    if (envelopes.length === 0) return
    let captured = this.captures.get(roomId)
    if (!captured) this.captures.set(roomId, (captured = new Map()))
    for (const envelope of envelopes) {
      const key = captureKey(envelope.bytes)
      if (!captured.has(key)) captured.set(key, { ...envelope, from })
    }
  }
}

function matchesIncoming(rule: Readonly<WithholdRule>, roomId: string, deviceId: string | undefined, envelopes: EnvelopeInfo[]): boolean {
  if (rule.to !== undefined) return false
  if (rule.roomId !== undefined && rule.roomId !== roomId) return false
  if (rule.from !== undefined && rule.from !== deviceId) return false
  if (rule.envelope !== undefined && !envelopes.some((e) => rule.envelope!(e))) return false
  return true
}

function matchesOutgoing(
  rule: Readonly<WithholdRule>,
  roomId: string,
  fromDevice: string | undefined,
  envelopes: EnvelopeInfo[],
  firstFrom: (envelope: EnvelopeInfo) => string | undefined,
): boolean {
  if (rule.roomId !== undefined && rule.roomId !== roomId) return false
  if (rule.from !== undefined && fromDevice !== rule.from && !envelopes.some((e) => firstFrom(e) === rule.from)) return false
  if (rule.envelope !== undefined && !envelopes.some((e) => rule.envelope!(e))) return false
  return true
}

function applyQuietly(doc: Y.Doc, update: Uint8Array, origin: unknown): void {
  try {
    Y.applyUpdate(doc, update, origin)
  } catch {
    // Yjs refused it (a broken update): a relay simply does not keep it.
  }
}

function awarenessFrame(awareness: awarenessProtocol.Awareness, clients: number[]): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, MessageType.Awareness)
  encoding.writeVarUint8Array(encoder, awarenessProtocol.encodeAwarenessUpdate(awareness, clients))
  return encoding.toUint8Array(encoder)
}

/** The Yjs update inside a sync step 2 or update frame. */
function updateOfSyncFrame(frame: Uint8Array): Uint8Array | undefined {
  try {
    const decoder = decoding.createDecoder(frame)
    if (decoding.readVarUint(decoder) !== MessageType.Sync) return undefined
    const syncType = decoding.readVarUint(decoder)
    if (syncType !== syncProtocol.messageYjsSyncStep2 && syncType !== syncProtocol.messageYjsUpdate) return undefined
    return decoding.readVarUint8Array(decoder)
  } catch {
    return undefined
  }
}

function captureKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')
}

/** `/<roomId>?token=…` → room id and token. */
function parseTarget(url: string | undefined, protocols?: string | string[]): { roomId: string | undefined; token: string | undefined } {
  const raw = url ?? '/'
  const q = raw.indexOf('?')
  const path = q < 0 ? raw : raw.slice(0, q)
  // contextsync clients carry the token in a subprotocol entry, stock ones in the query.
  const token = tokenFromProtocols(protocols) ?? (q < 0 ? undefined : (new URLSearchParams(raw.slice(q + 1)).get('token') ?? undefined))
  try {
    const roomId = decodeURIComponent(path.slice(1))
    return { roomId: roomId.length > 0 ? roomId : undefined, token }
  } catch {
    return { roomId: undefined, token }
  }
}
