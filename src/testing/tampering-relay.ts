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
import { PUBLIC_STATEMENTS_KEY, publicStatementsMap } from '../crdt/registry.js'
import { SEALED_LOG_KEY, sealedLog } from '../crdt/sealed-log.js'
import { CloseCode } from '../wire/close-codes.js'
import { MessageType } from '../wire/messages.js'
import { tokenFromProtocols } from '../wire/token-protocol.js'
import { StatementType } from '../crypto/statement.js'
import { fromBase64Url, toHex } from '../util/bytes.js'
import {
  deleteEntries,
  deletePublicStatements,
  deleteRange,
  describeEnvelope,
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
  type PublicStatement,
  type SealedLogEntry,
  type WipeResult,
} from './sealed-log-tamper.js'

/** Options of {@link createTamperingRelay}. */
export interface TamperingRelayOptions {
  /** Interface to bind; default `127.0.0.1`. */
  host?: string
  /** TCP port; default 0 (a free port). */
  port?: number
}

/** An envelope the relay saw in a room. */
export interface CapturedEnvelope extends EnvelopeInfo {
  /**
   * Device id of the connection it first arrived from; `undefined` when the relay put it there
   * itself (an injection) or the connection carried no readable token.
   */
  from: string | undefined
}

/** A live client connection. */
export interface RelayConnectionInfo {
  /** Unique per relay, in connection order. */
  id: number
  roomId: string
  /** Read from the connection's token; `undefined` without one (pairing rooms, stock clients). */
  deviceId: string | undefined
  /** Close it (default 1001 "going away", which clients treat as a plain disconnect and retry). */
  close(code?: number): void
}

/**
 * What to withhold. Without `to`, the rule acts on updates the relay *receives*: they are not
 * applied to its doc (so nobody gets them). With `to`, it acts on what the relay *sends* to that
 * device: its doc is updated as usual, but matching sync frames (updates and sync-step-2 replies)
 * towards that device's connections are held — so the device stays unsynced until released.
 * Every given condition must hold.
 */
export interface WithholdRule {
  /** Only in this room (default: every room). */
  roomId?: string
  /**
   * Only updates that carry at least one envelope this selects (default: every update, with or
   * without envelopes — deletions and public statements included).
   */
  envelope?: (envelope: EnvelopeInfo) => boolean
  /**
   * Only updates from this device: sent by its connections, or (towards `to`) carrying an
   * envelope first received from it.
   */
  from?: string
  /** Hold what the relay sends to this device instead of what it receives. */
  to?: string
}

/** A withholding in force; see {@link TamperingRelay.withhold}. */
export interface Withholding {
  /** The rule as given. */
  readonly rule: Readonly<WithholdRule>
  /** Updates (incoming) or frames (outgoing) held so far. */
  readonly heldCount: number
  /** Every envelope in what is held so far. */
  heldEnvelopes(): EnvelopeInfo[]
  /**
   * Stop withholding and deliver what was held: incoming updates are applied to the room's doc
   * (and so reach everyone), outgoing frames are sent to their connections if still open.
   */
  release(): void
  /** Stop withholding and drop what was held (nothing of it was applied or sent). */
  discard(): void
}

/** The server's copy of one room with the tamper operations bound to it. */
export interface TamperRoom {
  readonly roomId: string
  /** The server's outer doc (a fresh one after {@link TamperingRelay.forgetRoom}). */
  readonly doc: Y.Doc
  /** Every sealed-log entry with its parsed header. */
  entries(): SealedLogEntry[]
  /** Delete the entries `match` selects. */
  deleteEntries(match: (entry: SealedLogEntry) => boolean): SealedLogEntry[]
  /** Delete entries `[start, end)`. */
  deleteRange(start: number, end?: number): SealedLogEntry[]
  /** Keep the first `length` entries. */
  truncate(length: number): SealedLogEntry[]
  /** Delete every entry and every public statement. */
  wipe(): WipeResult
  /** Insert bytes at `at` (default: the end). */
  inject(entries: readonly Uint8Array[], at?: number): void
  /** Append captured (or any) envelope bytes again. */
  replay(entries: readonly Uint8Array[]): void
  /** Re-insert every entry in a seeded random order; returns the permutation. */
  reorder(seed: number): number[]
  /** Move the entries `match` selects to the end of another room's (or any outer doc's) log. */
  moveTo(target: TamperRoom | Y.Doc, match: (entry: SealedLogEntry) => boolean): SealedLogEntry[]
  /** Public statements (registry room). */
  publicStatements(): PublicStatement[]
  /** Delete the public statements `match` selects. */
  deletePublicStatements(match: (statement: PublicStatement) => boolean): PublicStatement[]
  /** Write one public statement. */
  setPublicStatement(key: string, bytes: Uint8Array): void
  /** Every envelope the relay ever saw in this room, first-seen order. */
  captured(): CapturedEnvelope[]
  /** Live connections of this room. */
  connections(): RelayConnectionInfo[]
}

/** A running tampering relay. */
export interface TamperingRelay {
  /** `ws://host:port`; clients connect to `${url}/${roomId}`. */
  readonly url: string
  readonly port: number
  /** A room's server copy and tamper operations (the room is created empty if new). */
  room(roomId: string): TamperRoom
  /** Ids of the rooms the relay currently holds a doc for. */
  rooms(): string[]
  /** Every envelope the relay ever saw in a room, first-seen order. */
  captured(roomId: string): CapturedEnvelope[]
  /** Start withholding; see {@link WithholdRule}. */
  withhold(rule: WithholdRule): Withholding
  /**
   * Lose a room's storage: close its connections (1001) and drop its doc and awareness. Clients
   * reconnect to an empty room and upload what they hold. The capture is kept.
   */
  forgetRoom(roomId: string): void
  /** Live connections (of one room, or all). */
  connections(roomId?: string): RelayConnectionInfo[]
  /** Close the live connections matching `filter` (default code 1001); returns how many. */
  closeConnections(filter: { roomId?: string; deviceId?: string }, code?: number): number
  /** Stop: terminate every connection, destroy every room, release the port. Idempotent. */
  close(): Promise<void>
}

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
type Place = 'log' | 'public' | 'other'

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

/**
 * The sealed-log entries an update inserts. Binary content is either a log entry or a public
 * statement (the only two shared types of an outer doc, WIRE.md "Sealed log"); an update encodes
 * the parent only for items without a left or right origin, so the others are placed through
 * their origins — in `doc` when already there, else among the update's own items.
 * What cannot be placed counts as an entry when it parses as an envelope.
 */
export function envelopesInUpdate(update: Uint8Array, doc: Y.Doc): EnvelopeInfo[] {
  let structs: Array<Y.Item | Y.GC | Y.Skip>
  try {
    structs = Y.decodeUpdate(update).structs
  } catch {
    return []
  }
  const items = structs.filter((s): s is Y.Item => s instanceof Y.Item)
  if (!items.some((item) => item.content instanceof Y.ContentBinary)) return []
  const byClient = new Map<number, Y.Item[]>()
  for (const item of items) {
    let list = byClient.get(item.id.client)
    if (!list) byClient.set(item.id.client, (list = []))
    list.push(item)
  }
  for (const list of byClient.values()) list.sort((a, b) => a.id.clock - b.id.clock)
  const places = new Map<Y.Item, Place>()
  const locate = (id: Y.ID): Place | undefined => {
    const integrated = integratedItem(doc, id)
    if (integrated) return placeInDoc(doc, integrated)
    const local = findItem(byClient.get(id.client), id.clock)
    return local ? places.get(local) : undefined
  }
  const place = (item: Y.Item): Place | undefined => {
    const integrated = integratedItem(doc, item.id)
    if (integrated) return placeInDoc(doc, integrated)
    if (item.parentSub !== null) return 'public'
    if (typeof item.parent === 'string') {
      return item.parent === SEALED_LOG_KEY ? 'log' : item.parent === PUBLIC_STATEMENTS_KEY ? 'public' : 'other'
    }
    if (item.parent !== null) return 'other'
    for (const ref of [item.origin, item.rightOrigin]) {
      const found = ref ? locate(ref) : undefined
      if (found) return found
    }
    return undefined
  }
  // Origins may point at items of the same update placed later in this order: repeat until stable.
  let unplaced = items
  for (;;) {
    const next: Y.Item[] = []
    for (const item of unplaced) {
      const found = place(item)
      if (found) places.set(item, found)
      else next.push(item)
    }
    if (next.length === 0 || next.length === unplaced.length) break
    unplaced = next
  }
  const out: EnvelopeInfo[] = []
  for (const item of items) {
    if (!(item.content instanceof Y.ContentBinary)) continue
    const where = places.get(item)
    const info = describeEnvelope(item.content.content)
    if (where === 'log' || (where === undefined && info.header !== undefined)) out.push(info)
  }
  return out
}

function integratedItem(doc: Y.Doc, id: Y.ID): Y.Item | undefined {
  const structs = doc.store.clients.get(id.client)
  if (!structs || id.clock >= Y.getState(doc.store, id.client)) return undefined
  try {
    const struct = structs[Y.findIndexSS(structs, id.clock)]
    return struct instanceof Y.Item ? struct : undefined
  } catch {
    return undefined
  }
}

function placeInDoc(doc: Y.Doc, item: Y.Item): Place {
  if (item.parentSub !== null) return 'public'
  // Typed first: a root Yjs created untyped (from an update) gets its items re-parented then.
  const log = sealedLog(doc)
  return item.parent === log ? 'log' : 'other'
}

function findItem(list: Y.Item[] | undefined, clock: number): Y.Item | undefined {
  if (!list) return undefined
  let lo = 0
  let hi = list.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    const item = list[mid]!
    if (clock < item.id.clock) hi = mid - 1
    else if (clock >= item.id.clock + item.length) lo = mid + 1
    else return item
  }
  return undefined
}
