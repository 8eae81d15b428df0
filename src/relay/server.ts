/**
 * The relay server: HTTP (`/healthz`, `/metrics`) plus y-websocket rooms over WebSocket, with
 * auth on the upgrade, limits, blind persistence and graceful shutdown.
 *
 * Lifecycle of a connection: a TCP connection is counted against the per-address and global
 * connection caps and must complete its upgrade within `upgradeTimeoutMs` (slowloris); the upgrade
 * request's room and token go through the auth hooks, the operator's `authorizeAccount` and the
 * room quotas *before* the relay sends anything; a refusal completes the WebSocket handshake
 * only to deliver its close code (browsers cannot read an HTTP status of a failed upgrade) and
 * closes at once — the client receives no room state. An admitted connection joins its room,
 * which loads from storage on first use and unloads (merged) after its last connection leaves.
 * Admission itself is `admission.ts`; the options and the relay's handle are `server-options.ts`.
 *
 * @module
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import { cryptoBackend, ready } from '../crypto/index.js'
import {
  noAuth,
  orderHooks,
  pairingAuth,
  PAIRING_ROOM_PATTERN,
  RelayRefusal,
  tokenAuth,
  type AuthHook,
} from './auth.js'
import { addressKey, ConnectionGate, sourceAddress } from './addresses.js'
import { RegistryGuard, registryAccount } from './registry-guard.js'
import { CloseCode } from '../wire/close-codes.js'
import { TOKEN_PROTOCOL } from '../wire/token-protocol.js'
import { RelayConnection, type ConnectionContext } from './connection.js'
import { resolveLimits } from './limits.js'
import { jsonLogger } from './log.js'
import { PROMETHEUS_CONTENT_TYPE, RelayMetrics, renderPrometheus, type LimitName } from './metrics.js'
import { NonceCache } from './nonce-cache.js'
import { PairingRoomQuota } from './pairing-rooms.js'
import { RelayStorage } from './accounting.js'
import { backendStore, memoryStore, sqliteStore } from './persistence.js'
import { Room } from './room.js'
import type { RelayStore } from './store.js'
import type { AwarenessOwner, FanoutMessage } from './fanout.js'
import type { BrokenReason, RoomHooks } from './room.js'
import { admitConnection, decideUpgrade, type AdmissionDeps, type Decision } from './admission.js'
import { at, formatUrl, reachable, type SocketState } from './server-helpers.js'
import type { Relay, RelayOptions } from './server-options.js'

export type { Relay, RelayOptions, RelayPersistenceOptions } from './server-options.js'

/**
 * How often (ms) a node on a shared store reads the relay-wide figures (`RelayStore.usage`): the
 * most a relay-wide cap can be passed by is what the other nodes store in this long.
 */
const USAGE_REFRESH_MS = 1_000

/**
 * Start a relay.
 *
 * @example
 * ```ts
 * const relay = await createRelay({ port: 8787, dataDir: './relay-data' })
 * console.log(relay.url) // ws://127.0.0.1:8787
 * await relay.close()
 * ```
 */
export async function createRelay(options: RelayOptions = {}): Promise<Relay> {
  await ready()
  const limits = resolveLimits(options.limits)
  const logger = options.logger ?? jsonLogger()
  const host = options.host ?? '127.0.0.1'
  const mergeIntervalMs = options.persistence?.mergeIntervalMs ?? 10_000
  const mergeEveryUpdates = options.persistence?.mergeEveryUpdates ?? 500
  const keepAliveMs = options.keepAliveMs ?? 30_000
  const shutdownGraceMs = options.shutdownGraceMs ?? 2_000

  const store: RelayStore =
    options.store ??
    (options.persistence?.backend
      ? backendStore(options.persistence.backend, 'custom')
      : options.dataDir !== undefined
        ? sqliteStore(options.dataDir, {
            onAppendError: (error, rows) =>
              logger.error('storing updates failed; they reach storage with the next merge', { rows, error: error instanceof Error ? error.message : 'unknown' }),
          })
        : memoryStore())
  // Spent token nonces go to the relay's store so a restart forgets none; a store other nodes
  // share is asked at every upgrade, so a token spent at one node is refused at every other.
  const nonces = new NonceCache(
    store.shared ? {} : { onClaim: (nonce, keepUntil) => void store.claimNonce(nonce, keepUntil, Date.now()).catch(() => {}) },
  )
  const spend = store.shared ? (nonce: string, keepUntil: number) => store.claimNonce(nonce, keepUntil, Date.now()) : undefined
  let storage: RelayStorage
  try {
    nonces.restore(await store.spentNonces(Date.now()))
    storage = await RelayStorage.open(store)
  } catch (error) {
    await store.close().catch(() => {})
    throw error
  }
  let hooks: AuthHook[]
  if (options.auth === 'none') {
    hooks = [noAuth()]
    logger.warn('AUTH DISABLED: every client may read and write every room. Never use auth "none" outside tests.', {
      auth: 'none',
    })
  } else if (options.auth === undefined) {
    const audiences = options.audience === undefined ? undefined : (typeof options.audience === 'string' ? [options.audience] : [...options.audience]).map((a) => a.toLowerCase())
    hooks = [pairingAuth(), tokenAuth({ check: (grant) => guard.check(grant), nonces, ...(spend && { spend }), ...(audiences && { audiences }) })]
  } else {
    hooks = orderHooks(Array.isArray(options.auth) ? options.auth : [options.auth as AuthHook])
  }

  // A pairing room left in storage by a crash is of no use to anyone: rendezvous rooms only live
  // while their devices are connected.
  for (const roomId of storage.storedRoomIds()) {
    if (!PAIRING_ROOM_PATTERN.test(roomId)) continue
    await store.remove(roomId).catch(() => {})
    storage.recordRemove(roomId)
  }
  // Reads revocations and relay passes from each account's registry room (defense in depth).
  // A revocation read here is reported to every other node: the device's connections may be
  // spread over nodes that never open its account's registry room.
  const guard = new RegistryGuard(storage, (accountId, deviceId, revocation, source) => {
    const closed = closeDeviceConnections(accountId, deviceId, CloseCode.Forbidden, guard.revocationNotice(accountId, deviceId))
    logger.info('device revoked', { accountId, deviceId, closed, source })
    if (source === 'registry') options.fanout?.publishRevocation(revocation)
  }, options.fanout ? (accountId, rootPublicKey, statement) => options.fanout!.publishPass({ accountId, rootPublicKey, statement }) : undefined)
  const header = options.clientAddressHeader
  // Without a proxy header, the TCP gate counts per peer address; with one, it only counts the
  // total and `addressGate` counts per header address from the upgrade on.
  const tcpGate = new ConnectionGate(header ? Number.MAX_SAFE_INTEGER : limits.maxConnectionsPerAddress, limits.maxConnections)
  const addressGate = header ? new ConnectionGate(limits.maxConnectionsPerAddress, Number.MAX_SAFE_INTEGER) : undefined
  const pairingQuota = new PairingRoomQuota(limits.maxPairingRoomsPerAddress)
  const sockets = new WeakMap<Socket | Duplex, SocketState>()
  const metrics = new RelayMetrics({
    storedBytes: () => storage.totalBytes,
    storedSize: () => storage.totalSize,
    roomsKnown: () => storage.roomCount,
    sockets: () => tcpGate.size,
    addresses: () => (addressGate ?? tcpGate).addresses,
    nonces: () => nonces.size,
  })
  const context: ConnectionContext = { limits, metrics, logger, storage }
  const rooms = new Map<string, Room>()
  /** Rooms being read from the store, so concurrent upgrades share one load. */
  const loading = new Map<string, Promise<Room>>()
  /** Store writes of unloaded rooms still in flight, by room id (a reload waits for them). */
  const flushing = new Map<string, Promise<void>>()
  const connections = new Set<RelayConnection>()
  /** Live connections per room, to unload a room when its last one closes. */
  const roomConnections = new Map<Room, number>()
  /** Lifetime timers of open pairing rooms. */
  const pairingTimers = new Map<Room, NodeJS.Timeout>()
  let drained: (() => void) | undefined
  let closing = false
  let needsCheckpoint = false

  /** Close a device's connections; its registry connection first gets `notice` (why, verifiably). */
  function closeDeviceConnections(accountId: string, deviceId: string, code: CloseCode, notice?: Uint8Array): number {
    let count = 0
    for (const connection of connections) {
      if (connection.identity.accountId === accountId && connection.identity.deviceId === deviceId) {
        // Sent before the close frame, so it arrives even though this update's broadcast to the
        // room comes after the guard saw it (the device would otherwise never hear of it).
        if (notice && registryAccount(connection.room.id) === accountId) connection.send(notice)
        connection.refuse(code, 'device closed by relay')
        count += 1
      }
    }
    return count
  }

  const onMerged = (): void => {
    metrics.merges += 1
    needsCheckpoint = true
  }

  const fanout = options.fanout
  const roomHooks: RoomHooks = {
    ...(fanout && {
      onCommitted: (room: Room, seq: number, update: Uint8Array) => {
        metrics.fanoutOut += 1
        fanout.publishUpdate(room.id, seq, update)
      },
      onAwareness: (room: Room, update: Uint8Array, owner: AwarenessOwner | undefined) => {
        fanout.publishAwareness(room.id, update, owner)
      },
      onGap: () => {
        metrics.gaps += 1
      },
      onCatchUp: (_room: Room, rows: number) => {
        metrics.catchUps += 1
        metrics.catchUpRows += rows
      },
    }),
    onBroken: (room: Room, reason: BrokenReason, origin: unknown): void => {
      logger.error('room closed: the store refused or failed a write', { roomId: room.id, reason })
      const members = [...connections].filter((connection) => connection.room === room)
      unloadRoom(room)
      for (const connection of members) {
        if (connection !== origin || reason === 'storage') connection.refuse(CloseCode.InternalError, 'room unavailable')
        else if (reason === 'quota') {
          metrics.limitHit('storedBytesPerAccount')
          connection.refuse(CloseCode.QuotaExceeded, 'account storage quota exceeded')
        } else {
          // A room cap another node's rooms used up (the store counts every node's rooms).
          metrics.limitHit(reason)
          connection.refuse(CloseCode.TooManyRooms, reason === 'rooms' ? 'relay room limit reached' : 'room quota exceeded')
        }
      }
    },
  }

  const openRoom = async (roomId: string): Promise<Room> => {
    const open = rooms.get(roomId)
    if (open) return open
    const pending = loading.get(roomId)
    if (pending) return pending
    const load = (async () => {
      await flushing.get(roomId)
      // Subscribed before the load reads the store, so nothing committed after it goes unheard.
      fanout?.join(roomId)
      // With a store other nodes share, the store checks the account quota on every append too
      // (pairing rooms have their own per-room quota, checked here).
      // The room caps too: rooms with rows on every node count, in the transaction that gives a
      // room its first row.
      const hooks = store.shared && !PAIRING_ROOM_PATTERN.test(roomId) ? { ...roomHooks, maxAccountSize: limits.maxStoredBytesPerAccount, maxRoomsPerAccount: limits.maxRoomsPerAccount, maxRooms: limits.maxRooms } : roomHooks
      let room: Room
      try {
        room = await Room.load(roomId, storage, logger, mergeEveryUpdates, onMerged, hooks)
      } catch (error) {
        fanout?.leave(roomId)
        throw error
      }
      rooms.set(roomId, room)
      // Notifications that came while the load ran were dropped: fetch what committed meanwhile.
      if (fanout) void room.catchUp()
      guard.watch(roomId, room.doc)
      storage.markOpen(roomId)
      metrics.rooms = rooms.size
      if (PAIRING_ROOM_PATTERN.test(roomId)) {
        const opened = room
        const timer = setTimeout(() => expirePairingRoom(opened), limits.pairingRoomLifetimeMs)
        timer.unref()
        pairingTimers.set(room, timer)
      }
      return room
    })()
    loading.set(roomId, load)
    try {
      return await load
    } finally {
      loading.delete(roomId)
    }
  }

  /** A pairing room reached its lifetime: close everyone in it with 4410 and delete it. */
  const expirePairingRoom = (room: Room): void => {
    metrics.limitHit('pairingRoomLifetime')
    for (const connection of connections) if (connection.room === room) connection.refuse(CloseCode.RoomExpired, 'pairing room expired')
    // Their close handshakes may take a while; a new connection gets a fresh room meanwhile.
    unloadRoom(room)
  }

  const unloadRoom = (room: Room): void => {
    if (rooms.get(room.id) !== room) return
    room.tryMerge()
    rooms.delete(room.id)
    guard.unwatch(room.id)
    clearTimeout(pairingTimers.get(room))
    pairingTimers.delete(room)
    storage.markClosed(room.id)
    fanout?.leave(room.id)
    const pairing = PAIRING_ROOM_PATTERN.test(room.id)
    room.destroy()
    metrics.rooms = rooms.size
    // Queued writes finish before the room can load again; a rendezvous room is only needed while
    // both devices are there.
    const done = room
      .settled()
      .then(async () => {
        if (!pairing) return
        await store.remove(room.id)
        storage.recordRemove(room.id)
      })
      .catch((error: unknown) => logger.error('removing a pairing room failed', { roomId: room.id, error: error instanceof Error ? error.message : 'unknown' }))
      .finally(() => {
        if (flushing.get(room.id) === done) flushing.delete(room.id)
      })
    flushing.set(room.id, done)
  }

  const onClosed = (connection: RelayConnection): void => {
    if (!connections.delete(connection)) return
    metrics.connections = connections.size
    const room = connection.room
    const left = (roomConnections.get(room) ?? 1) - 1
    if (left > 0) roomConnections.set(room, left)
    else {
      roomConnections.delete(room)
      unloadRoom(room)
    }
    if (connections.size === 0) drained?.()
  }

  const admissionDeps: AdmissionDeps = {
    storage,
    limits,
    metrics,
    logger,
    context,
    pairingQuota,
    connections,
    roomConnections,
    closing: () => closing,
    openRoom,
    unloadRoom,
    onClosed,
  }
  const admit = (ws: WebSocket, decision: Decision, address: string, release: () => void): Promise<void> =>
    admitConnection(ws, decision, address, release, admissionDeps)
  const decide = (request: IncomingMessage): Promise<Decision> => decideUpgrade(request, hooks, options.authorizeAccount, logger)

  /** A new TCP connection: count it, and give it `upgradeTimeoutMs` to upgrade. */
  const onConnection = (socket: Socket): void => {
    const address = addressKey(socket.remoteAddress)
    if (closing) {
      socket.destroy()
      return
    }
    const gate = tcpGate.enter(address)
    if (!gate.admit && gate.drop) {
      metrics.limitHit(gate.limit)
      socket.destroy()
      return
    }
    const state: SocketState = { address, over: gate.admit ? undefined : gate.limit, timer: undefined }
    state.timer = setTimeout(() => {
      state.timer = undefined
      metrics.limitHit('upgradeTimeout')
      socket.destroy()
    }, limits.upgradeTimeoutMs)
    state.timer.unref()
    sockets.set(socket, state)
    socket.once('close', () => {
      clearTimeout(state.timer)
      tcpGate.leave(address)
    })
  }

  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxMessageBytes,
    perMessageDeflate: false,
    clientTracking: false,
    // Select the contextsync subprotocol, never the entry carrying the token (it is not echoed).
    handleProtocols: (protocols) => (protocols.has(TOKEN_PROTOCOL) ? TOKEN_PROTOCOL : false),
  })

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => socket.destroy())
    if (closing) {
      socket.destroy()
      return
    }
    const state = sockets.get(socket)
    let address = state?.address ?? addressKey(request.socket.remoteAddress)
    let over: LimitName | undefined = state?.over
    let release = (): void => {}
    if (addressGate) {
      address = sourceAddress(request.socket.remoteAddress, request.headers, header)
      const gate = addressGate.enter(address)
      if (!gate.admit && gate.drop) {
        metrics.limitHit(gate.limit)
        socket.destroy()
        return
      }
      // Counted until it closes, refused or not (so refused sockets are capped too).
      const counted = address
      let released = false
      release = () => {
        if (!released) addressGate.leave(counted)
        released = true
      }
      socket.once('close', release)
      if (!gate.admit) over ??= gate.limit
    }
    // Over a connection cap: no auth work at all, only the close code.
    const decided: Promise<Decision> =
      over === 'connectionsPerAddress'
        ? Promise.resolve({ refusal: new RelayRefusal(CloseCode.RateLimited, 'too many connections from this address'), roomId: undefined, limit: over })
        : over === 'connections'
          ? Promise.resolve({ refusal: new RelayRefusal(CloseCode.TryAgainLater, 'relay at its connection limit'), roomId: undefined, limit: over })
          : decide(request)
    void decided.then((decision) => {
      if (closing || socket.destroyed) {
        release()
        socket.destroy()
        return
      }
      // Upgraded: from here the WebSocket keep-alive looks after idle connections.
      if (state) clearTimeout(state.timer)
      wss.handleUpgrade(request, socket, head, (ws) => void admit(ws, decision, address, release))
    })
  }

  const onRequest = (request: IncomingMessage, response: ServerResponse): void => {
    // A complete request arrived in time; the socket closes after the response (no keep-alive to
    // hold it open past the upgrade timeout's reach).
    const state = sockets.get(request.socket)
    if (state) clearTimeout(state.timer)
    const path = (request.url ?? '/').split('?')[0]
    const send = (status: number, type: string, body: string): void => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', connection: 'close' })
      response.end(body)
    }
    if (request.method === 'GET' && path === '/healthz') {
      if (closing) return send(503, 'application/json', JSON.stringify({ ok: false }))
      void health().then((report) => send(report.ok ? 200 : 503, 'application/json', JSON.stringify(report)))
    } else if (request.method === 'GET' && path === '/metrics') {
      send(200, PROMETHEUS_CONTENT_TYPE, renderPrometheus(metrics.snapshot()))
    } else if (request.headers.upgrade === undefined && path !== '/' && request.method === 'GET') {
      send(426, 'application/json', JSON.stringify({ error: 'rooms are served over WebSocket' }))
    } else {
      send(404, 'application/json', JSON.stringify({ error: 'not found' }))
    }
  }

  /** A message from another node for a room this node may have open. */
  function onFanoutMessage(roomId: string, message: FanoutMessage): void {
    const room = rooms.get(roomId)
    if (!room) return
    metrics.fanoutIn += 1
    if (message.kind === 'update') {
      metrics.fanoutLag(Date.now() - message.sentAt)
      room.applyRemote(message.seq, message.update)
    } else if (message.kind === 'awareness') room.applyRemoteAwareness(message.update, message.owner)
  }

  /**
   * Fetch what every open room lacks from the store (fan-out reconnected, or the timer): one
   * query for the heads of up to 1 000 rooms, then a fetch only for the rooms behind.
   */
  function catchUpAll(): void {
    const ids = [...rooms.keys()]
    for (let i = 0; i < ids.length; i += 1_000) {
      const chunk = ids.slice(i, i + 1_000)
      store.heads(chunk).then(
        (heads) => {
          for (const [roomId, head] of heads) {
            const room = rooms.get(roomId)
            if (room && head > room.head) void room.catchUp()
          }
        },
        (error: unknown) => logger.warn('comparing rooms with the store failed; retried with the next check', { error: error instanceof Error ? error.message : 'unknown' }),
      )
    }
  }

  /**
   * What `/healthz` reports: `{ ok }`, plus — on a store other nodes share — whether this node
   * reaches it (`store`). A node that cannot reach its store is not ok.
   */
  async function health(): Promise<{ ok: boolean; store?: 'ok' | 'down'; fanout?: 'ok' | 'down' }> {
    if (!store.shared && !fanout) return { ok: true }
    const [storeUp, fanoutUp] = await Promise.all([reachable(() => store.ping()), fanout ? reachable(() => fanout.ping()) : Promise.resolve(true)])
    return { ok: storeUp && fanoutUp, store: storeUp ? 'ok' : 'down', ...(fanout && { fanout: fanoutUp ? 'ok' : ('down' as const) }) }
  }

  if (fanout) {
    try {
      await fanout.start({ message: onFanoutMessage, reconnected: catchUpAll, revocation: (revocation) => void guard.learn(revocation), pass: ({ accountId, rootPublicKey, statement }) => void guard.learnPass(accountId, rootPublicKey, statement) })
    } catch (error) {
      await fanout.close().catch(() => {})
      await store.close().catch(() => {})
      throw error
    }
  }

  const server = createServer(onRequest)
  server.on('connection', onConnection)
  server.on('upgrade', onUpgrade)
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (error) {
    // e.g. EADDRINUSE: release the database before reporting.
    await store.close().catch(() => {})
    throw error
  }
  const port = (server.address() as AddressInfo).port
  const url = formatUrl(host, port)

  const keepAlive = setInterval(() => {
    for (const connection of connections) {
      if (!connection.alive) {
        connection.ws.terminate()
        continue
      }
      connection.alive = false
      try {
        connection.ws.ping()
      } catch {
        connection.ws.terminate()
      }
    }
  }, keepAliveMs)
  keepAlive.unref()

  const mergeAll = (): void => {
    for (const room of rooms.values()) room.tryMerge()
    if (needsCheckpoint) {
      needsCheckpoint = false
      store.checkpoint().catch((error: unknown) => logger.error('storage checkpoint failed', { error: error instanceof Error ? error.message : 'unknown' }))
    }
  }
  const mergeTimer = setInterval(mergeAll, mergeIntervalMs)
  // With a store other nodes share, relay-wide caps (all rooms, all stored bytes) follow the
  // store's figures; a failed read keeps the last ones (this node's growth still counts on them).
  const refreshUsage = (): void => {
    store.usage().then(
      (usage) => storage.setSharedUsage(usage),
      (error: unknown) => logger.warn('reading relay-wide usage from the store failed', { error: error instanceof Error ? error.message : 'unknown' }),
    )
  }
  if (store.shared) refreshUsage()
  const usageTimer = store.shared ? setInterval(refreshUsage, USAGE_REFRESH_MS) : undefined
  usageTimer?.unref()
  // A lost notification costs at most this long: every open room is compared with the store.
  const catchUpTimer = fanout ? setInterval(catchUpAll, options.catchUpIntervalMs ?? 10_000) : undefined
  catchUpTimer?.unref()
  mergeTimer.unref()

  logger.info('relay listening', {
    url,
    storage: store.kind,
    fanout: fanout ? `node ${fanout.node}` : 'none',
    crypto: cryptoBackend(),
    maxMessageBytes: limits.maxMessageBytes,
    messagesPerSecond: limits.messagesPerSecond,
    burst: limits.burst,
    maxRoomsPerAccount: limits.maxRoomsPerAccount,
    maxStoredBytesPerAccount: limits.maxStoredBytesPerAccount,
    maxConnectionsPerAddress: limits.maxConnectionsPerAddress,
    maxConnections: limits.maxConnections,
    maxRooms: limits.maxRooms,
    maxStoredBytes: limits.maxStoredBytes,
    maxPairingRoomsPerAddress: limits.maxPairingRoomsPerAddress,
    upgradeTimeoutMs: limits.upgradeTimeoutMs,
    accounts: options.authorizeAccount ? 'restricted' : 'open',
    clientAddressHeader: header,
  })

  let closed: Promise<void> | undefined
  const close = async (): Promise<void> => {
    closing = true
    clearInterval(keepAlive)
    clearInterval(mergeTimer)
    clearInterval(catchUpTimer)
    clearInterval(usageTimer)
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
    if (connections.size > 0) {
      const allClosed = new Promise<void>((resolve) => (drained = resolve))
      for (const connection of connections) connection.shutdown(CloseCode.GoingAway, 'relay shutting down')
      let timer: NodeJS.Timeout | undefined
      await Promise.race([allClosed, new Promise<void>((resolve) => (timer = setTimeout(resolve, shutdownGraceMs)))])
      clearTimeout(timer)
      for (const connection of [...connections]) {
        connection.ws.terminate()
        onClosed(connection)
      }
    }
    await Promise.allSettled([...loading.values()])
    for (const room of [...rooms.values()]) unloadRoom(room)
    await Promise.allSettled([...flushing.values()])
    await fanout?.close().catch(() => {})
    await store.close().catch((error: unknown) => logger.error('closing the store failed', { error: error instanceof Error ? error.message : 'unknown' }))
    wss.close()
    server.closeAllConnections()
    await serverClosed
    logger.info('relay closed', { url })
  }

  return {
    url,
    host,
    port,
    metrics: () => metrics.snapshot(),
    closeDevice: (accountId, deviceId, code = CloseCode.Forbidden) => closeDeviceConnections(accountId, deviceId, code),
    close: () => (closed ??= close()),
  }
}
