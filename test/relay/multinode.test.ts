/**
 * Several relay nodes as separate processes on one PostgreSQL and one Redis (real ones on
 * 127.0.0.1, started by `.ci/run`): devices of one account on different nodes converge on
 * memories, sessions and presence; stock y-websocket clients work against any node; a node killed
 * with SIGKILL mid-burst loses nothing its devices wrote; Redis pub/sub connections killed during
 * writes cost a catch-up from PostgreSQL, never data; an account's stored bytes are one quota over
 * all nodes.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import pg from 'pg'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { ContextSync, createAccount, memoryStorage, type Account } from '../../src/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { ready } from '../../src/crypto/index.js'
import { createAccessToken, createDeviceKeys, issueRelayPass, signRevocation } from '../../src/crypto/index.js'
import { passKey, PUBLIC_STATEMENTS_KEY, revocationKey } from '../../src/crdt/registry.js'
import { makeAccount, NodeWebSocket, rawClient, roomUrl, sealedLog, sleep, waitFor, type RawClient, type TestAccount } from './helpers.js'
import { POSTGRES_URL, REDIS_URL, warnIfNoServices } from '../helpers/services.js'
import { createDatabase, loadBalancer, releaseNodes, startNode, type RelayNode } from '../helpers/relay-nodes.js'

warnIfNoServices('relay nodes on PostgreSQL + Redis (test/relay/multinode.test.ts)')

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await releaseNodes()
})

beforeAll(async () => {
  await ready()
})

/** `n` relay nodes sharing a fresh database and the test Redis. */
async function cluster(n: number, args: string[] = []): Promise<{ nodes: RelayNode[]; database: string }> {
  const database = await createDatabase(POSTGRES_URL!)
  // The first node migrates the schema; the others start together (their migration waits on its lock).
  const nodes = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      // Half the nodes read their URLs from the environment, half from flags: both must work.
      i % 2 === 0
        ? startNode(['--store', database, '--redis', REDIS_URL!, ...args])
        : startNode(args, { CONTEXTSYNC_RELAY_STORE: database, CONTEXTSYNC_RELAY_REDIS: REDIS_URL! }),
    ),
  )
  return { nodes, database }
}

async function device(account: Account, kind: 'phone' | 'pc' | 'glasses' | 'car', url: string): Promise<ContextSync> {
  const transport = websocketTransport({ url, WebSocketPolyfill: NodeWebSocket, maxBackoffTime: 300 })
  const dev = await ContextSync.open({ account, device: { kind, name: `Node ${kind}` }, storage: memoryStorage(), transports: [transport] })
  cleanups.push(async () => {
    await dev.close()
    transport.close()
  })
  return dev
}

/** A stock y-websocket client on `url` for `who`'s room (token in the query, as stock clients send it). */
function stockClient(url: string, who: TestAccount, roomId: string): { doc: Y.Doc; provider: WebsocketProvider; log: Y.Array<string> } {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, roomId, doc, { params: { token: who.token(roomId) }, WebSocketPolyfill: NodeWebSocket, disableBc: true })
  cleanups.push(() => provider.destroy())
  return { doc, provider, log: doc.getArray<string>('log') }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0))
    })
  })
}

async function waitForAsync(predicate: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const start = Date.now()
  while (!(await predicate().catch(() => false))) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

/** The close code a raw client got, or `'admitted'` if it is still open 500 ms after its first frame. */
async function refusedOrAdmitted(client: RawClient): Promise<number | 'admitted'> {
  return Promise.race([
    client.closed.then(({ code }) => code),
    waitFor(() => client.messages.length > 0, 10_000, 'a first frame').then(() => sleep(500)).then(() => 'admitted' as const),
  ])
}

describe.runIf(POSTGRES_URL !== undefined && REDIS_URL !== undefined)('relay nodes on PostgreSQL + Redis', () => {
  it('devices of one account on three different nodes converge on memories, sessions and presence; stock clients on any node', async () => {
    const { nodes } = await cluster(3)
    for (const node of nodes) {
      const health = await fetch(`http://127.0.0.1:${node.port}/healthz`)
      expect(await health.json()).toEqual({ ok: true, store: 'ok', fanout: 'ok' })
    }
    const account = await createAccount()
    const phone = await device(account, 'phone', nodes[0]!.url)
    const pc = await device(account, 'pc', nodes[1]!.url)
    const glasses = await device(account, 'glasses', nodes[2]!.url)
    const fromPhone = await phone.memory.remember({ text: 'written on node 0' })
    const fromPc = await pc.memory.remember({ text: 'written on node 1' })
    const session = glasses.sessions.start({ title: 'walk' })
    await session.append({ role: 'user', text: 'turn written on node 2' })
    glasses.presence.set({ activity: 'walking', activeSessionId: session.id })
    const all = [phone, pc, glasses]
    await waitFor(
      () =>
        all.every(
          (d) =>
            d.memory.get(fromPhone.id)?.text === 'written on node 0' &&
            d.memory.get(fromPc.id)?.text === 'written on node 1' &&
            d.sessions.get(session.id)?.turns[0]?.text === 'turn written on node 2',
        ),
      20_000,
      'memories and sessions on every device',
    )
    await waitFor(
      () => [phone, pc].every((d) => d.presence.get(glasses.deviceId)?.activity === 'walking' && d.presence.get(glasses.deviceId)?.online === true),
      20_000,
      'presence across nodes',
    )

    // Stock y-websocket clients, one per node, in one room.
    const alice = makeAccount()
    const roomId = alice.roomId()
    const clients = nodes.map((node) => stockClient(node.url, alice, roomId))
    await waitFor(() => clients.every((c) => c.provider.synced), 10_000, 'stock clients synced')
    clients.forEach((c, i) => c.log.push([`stock ${i}`]))
    await waitFor(() => clients.every((c) => c.log.length === 3), 10_000, 'stock clients converge')
    const totals = await Promise.all(nodes.map((n) => n.metrics()))
    // Every node heard the others and told them about its own writes.
    for (const m of totals) {
      expect(m.fanout_received_total).toBeGreaterThan(0)
      expect(m.fanout_published_total).toBeGreaterThan(0)
    }
  }, 60_000)

  it('kill -9 of a node in the middle of a burst: devices reconnect to another node, nothing they wrote is lost', async () => {
    const { nodes } = await cluster(3)
    const balancer = await loadBalancer(() => nodes.map((n) => n.port))
    const account = await createAccount()
    const phone = await device(account, 'phone', balancer)
    const pc = await device(account, 'pc', balancer)
    const BURST = 40
    const written: string[] = []
    const burst = async (dev: ContextSync, who: string): Promise<void> => {
      for (let i = 0; i < BURST; i++) {
        written.push((await dev.memory.remember({ text: `${who} ${i}` })).id)
        if (who === 'phone' && i === BURST / 2) nodes[0]!.child.kill('SIGKILL')
        await sleep(10)
      }
    }
    await Promise.all([burst(phone, 'phone'), burst(pc, 'pc')])
    expect(nodes[0]!.child.signalCode ?? (await new Promise((r) => nodes[0]!.child.once('exit', (_c, sig) => r(sig))))).toBe('SIGKILL')
    await waitFor(() => [phone, pc].every((d) => written.every((id) => d.memory.get(id) !== undefined)), 30_000, 'both devices hold every memory')
    // What the surviving nodes serve from PostgreSQL alone holds every write: a new device opened
    // after both writers left receives all of it.
    await phone.flush()
    await pc.flush()
    await sleep(300)
    await phone.close()
    await pc.close()
    const fresh = await device(account, 'pc', nodes[2]!.url)
    await waitFor(() => written.every((id) => fresh.memory.get(id) !== undefined), 30_000, 'a new device receives every write from the surviving nodes')
  }, 90_000)

  it('Redis pub/sub connections killed during writes: the reader still converges by catching up from PostgreSQL, and the metrics show it', async () => {
    const { nodes } = await cluster(2)
    const alice = makeAccount()
    const roomId = alice.roomId()
    const writer = stockClient(nodes[0]!.url, alice, roomId)
    const reader = stockClient(nodes[1]!.url, alice, roomId)
    await waitFor(() => writer.provider.synced && reader.provider.synced, 10_000, 'synced')
    const admin = new Redis(REDIS_URL!)
    admin.on('error', () => {})
    cleanups.push(() => void admin.disconnect())
    let killed = 0
    let writing = true
    const killing = (async () => {
      while (writing) {
        killed += Number(await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub'))
        await sleep(60)
      }
    })()
    const WRITES = 120
    for (let i = 0; i < WRITES; i++) {
      writer.log.push([`entry ${i}`])
      await sleep(5)
    }
    writing = false
    await killing
    await waitFor(() => new Set(reader.log.toArray()).size === WRITES, 30_000, 'the reader holds every entry')
    const m = await nodes[1]!.metrics()
    console.log(`redis pub/sub killed ${killed} times: reader node caught up ${m.catchup_rows_total} rows in ${m.catchup_fetches_total} fetches, ${m.fanout_gaps_total} gaps seen, ${m.fanout_received_total} notifications`)
    expect(killed).toBeGreaterThan(0)
    // Notifications were lost and the rows came from PostgreSQL instead.
    expect(m.catchup_rows_total).toBeGreaterThan(0)
  }, 60_000)

  it('a revocation seen on one node cuts the device off on every node, and every node refuses it afterwards', async () => {
    const { nodes } = await cluster(3)
    const alice = makeAccount()
    const carKeys = createDeviceKeys()
    const carPass = issueRelayPass(alice.account, carKeys)
    const carToken = (roomId: string) => createAccessToken({ rootPublicKey: alice.account.rootPublicKey, relayPass: carPass, device: carKeys, roomId })
    const personal = alice.roomId()
    const registry = `${alice.account.accountId}.registry`
    // The car is connected to node 2 only, in a room other than the registry.
    const carLive = rawClient(roomUrl(nodes[2]!.url, personal, carToken(personal)))
    cleanups.push(() => carLive.ws.terminate())
    await waitFor(() => carLive.messages.length > 0, 10_000, 'car admitted on node 2')
    // The owner publishes the root-signed revocation through node 0.
    const transport = websocketTransport({ url: nodes[0]!.url, token: alice.token, WebSocketPolyfill: NodeWebSocket })
    cleanups.push(() => transport.close())
    const room = sealedLog(registry)
    const attachment = transport.attach(room)
    await waitFor(() => attachment.status === 'synced', 10_000, 'owner synced')
    const statement = signRevocation(alice.account, { deviceId: carKeys.deviceId, revokedAt: Date.now(), cutoffs: new Map() })
    room.doc.getMap<Uint8Array>(PUBLIC_STATEMENTS_KEY).set(revocationKey(carKeys.deviceId), statement)
    const closed = await Promise.race([carLive.closed.then(({ code }) => code), sleep(10_000).then(() => 'still connected')])
    expect(closed).toBe(4403)
    // Node 1 never had the registry room open: it refuses the car's next token all the same.
    const again = rawClient(roomUrl(nodes[1]!.url, personal, carToken(personal)))
    cleanups.push(() => again.ws.terminate())
    expect(await refusedOrAdmitted(again)).toBe(4403)
  }, 60_000)

  it('a newer relay pass read on one node supersedes the old one on every node', async () => {
    const { nodes } = await cluster(2)
    const alice = makeAccount()
    const carKeys = createDeviceKeys()
    const oldPass = issueRelayPass(alice.account, carKeys, { rooms: 'all', issuedAt: Date.now() - 60_000 })
    const tokenWith = (pass: Uint8Array, roomId: string) => createAccessToken({ rootPublicKey: alice.account.rootPublicKey, relayPass: pass, device: carKeys, roomId })
    const personal = alice.roomId()
    // Node 1 learns the account (and reads its registry room) with the old pass.
    const first = rawClient(roomUrl(nodes[1]!.url, personal, tokenWith(oldPass, personal)))
    cleanups.push(() => first.ws.terminate())
    expect(await refusedOrAdmitted(first)).toBe('admitted')
    // The owner publishes a newer pass for the car through node 0.
    const transport = websocketTransport({ url: nodes[0]!.url, token: alice.token, WebSocketPolyfill: NodeWebSocket })
    cleanups.push(() => transport.close())
    const room = sealedLog(`${alice.account.accountId}.registry`)
    const attachment = transport.attach(room)
    await waitFor(() => attachment.status === 'synced', 10_000, 'owner synced')
    room.doc.getMap<Uint8Array>(PUBLIC_STATEMENTS_KEY).set(passKey(carKeys.deviceId), issueRelayPass(alice.account, carKeys, { rooms: 'all' }))
    await sleep(1_000)
    // Node 1 never opened the registry room since: it refuses the superseded pass all the same.
    const again = rawClient(roomUrl(nodes[1]!.url, personal, tokenWith(oldPass, personal)))
    cleanups.push(() => again.ws.terminate())
    expect(await refusedOrAdmitted(again)).toBe(4403)
  }, 30_000)

  it('a token spent at one node is refused at every other (the replay cache is shared)', async () => {
    const { nodes } = await cluster(2)
    const alice = makeAccount()
    const roomId = alice.roomId()
    const token = alice.token(roomId)
    const first = rawClient(roomUrl(nodes[0]!.url, roomId, token))
    cleanups.push(() => first.ws.terminate())
    expect(await refusedOrAdmitted(first)).toBe('admitted')
    const replayed = rawClient(roomUrl(nodes[1]!.url, roomId, token))
    cleanups.push(() => replayed.ws.terminate())
    expect(await refusedOrAdmitted(replayed)).toBe(4409)
  }, 30_000)

  it('Redis paused (CLIENT PAUSE) and then killed and restarted during writes: the reader converges from PostgreSQL', async () => {
    const port = await freePort()
    const startRedis = (): ChildProcess => {
      const child = spawn('redis-server', ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
      cleanups.push(() => void child.kill('SIGKILL'))
      return child
    }
    let redis = startRedis()
    const url = `redis://127.0.0.1:${port}`
    const admin = new Redis(url, { maxRetriesPerRequest: 1 })
    admin.on('error', () => {})
    cleanups.push(() => void admin.disconnect())
    await waitForAsync(async () => (await admin.ping().catch(() => '')) === 'PONG', 5_000, 'private redis up')
    const database = await createDatabase(POSTGRES_URL!)
    const nodes = await Promise.all([0, 1].map(() => startNode(['--store', database, '--redis', url])))
    const alice = makeAccount()
    const roomId = alice.roomId()
    const writer = stockClient(nodes[0]!.url, alice, roomId)
    const reader = stockClient(nodes[1]!.url, alice, roomId)
    await waitFor(() => writer.provider.synced && reader.provider.synced, 10_000, 'synced')
    const WRITES = 90
    for (let i = 0; i < WRITES; i++) {
      writer.log.push([`entry ${i}`])
      if (i === 20) await admin.call('CLIENT', 'PAUSE', '700', 'ALL')
      if (i === 50) {
        redis.kill('SIGKILL')
        await new Promise((resolve) => redis.once('exit', resolve))
      }
      if (i === 65) redis = startRedis()
      await sleep(15)
    }
    await waitFor(() => new Set(reader.log.toArray()).size === WRITES, 30_000, 'the reader holds every entry')
    // Both nodes are healthy again once Redis is back.
    await waitForAsync(async () => (await (await fetch(`http://127.0.0.1:${nodes[1]!.port}/healthz`)).json()).fanout === 'ok', 10_000, 'fan-out back')
    const m = await nodes[1]!.metrics()
    console.log(`redis paused, killed and restarted: reader node caught up ${m.catchup_rows_total} rows in ${m.catchup_fetches_total} fetches, ${m.fanout_gaps_total} gaps seen`)
    expect(m.catchup_rows_total).toBeGreaterThan(0)
  }, 60_000)

  it("an account's stored bytes are one quota over all nodes: writes spread over three nodes cannot pass it", async () => {
    const QUOTA = 48 * 1024
    const { nodes, database } = await cluster(3, ['--max-stored-bytes', '48KiB'])
    const alice = makeAccount()
    const clients = nodes.map((node, i) => stockClient(node.url, alice, alice.roomId(`scope${i}`)))
    const closes: number[] = []
    for (const c of clients) c.provider.on('connection-close', (event: CloseEvent | null) => closes.push(event?.code ?? 0))
    await waitFor(() => clients.every((c) => c.provider.synced), 10_000, 'synced')
    // Each node alone would admit its 40 KiB: it fits the quota. Together they are 120 KiB.
    for (let i = 0; i < 20; i++) {
      for (const c of clients) c.doc.getArray<Uint8Array>('blobs').push([new Uint8Array(2048).fill(i + 1)])
      await sleep(20)
    }
    await sleep(1_000)
    for (const c of clients) c.provider.destroy()
    const db = new pg.Client({ connectionString: database })
    await db.connect()
    cleanups.push(() => db.end())
    const { rows } = await db.query<{ size: string }>('SELECT size FROM contextsync.accounts WHERE account = $1', [alice.account.accountId])
    const stored = await db.query<{ bytes: string }>('SELECT COALESCE(SUM(LENGTH(data)), 0) AS bytes FROM contextsync.updates WHERE room LIKE $1', [`${alice.account.accountId}.%`])
    console.log(`quota across nodes: counted ${rows[0]?.size} bytes, ${stored.rows[0]?.bytes} stored, quota ${QUOTA}; close codes ${[...new Set(closes)].join(',')}`)
    expect(Number(rows[0]!.size)).toBeLessThanOrEqual(QUOTA)
    expect(Number(stored.rows[0]!.bytes)).toBeLessThanOrEqual(QUOTA + 4096)
    expect(Number(stored.rows[0]!.bytes)).toBeGreaterThan(QUOTA / 2)
    expect(closes).toContain(4413)
  }, 60_000)
})

describe('relay CLI: --store and --redis', () => {
  it('reads both from flags or the environment, and refuses fan-out without a shared store or a bad URL', async () => {
    const { parseRelayArgs } = await import('../../src/cli.js')
    expect(parseRelayArgs(['--store', 'postgres://u@127.0.0.1:5432/db', '--redis', 'redis://127.0.0.1:6379'], {})).toMatchObject({
      storeUrl: 'postgres://u@127.0.0.1:5432/db',
      redisUrl: 'redis://127.0.0.1:6379',
    })
    expect(parseRelayArgs([], { CONTEXTSYNC_RELAY_STORE: 'postgresql://h/db', CONTEXTSYNC_RELAY_REDIS: 'rediss://h:6380' })).toMatchObject({
      storeUrl: 'postgresql://h/db',
      redisUrl: 'rediss://h:6380',
    })
    expect(() => parseRelayArgs(['--redis', 'redis://127.0.0.1:6379'], {})).toThrow(/--redis needs --store/)
    expect(() => parseRelayArgs(['--store', 'mysql://h/db'], {})).toThrow(/--store/)
    expect(() => parseRelayArgs(['--store', 'postgres://h/db', '--redis', 'http://h'], {})).toThrow(/--redis/)
  })
})

describe('revocations reported by another node', () => {
  it('are verified before they cut a device off: a forged or misattributed report changes nothing', async () => {
    const { RelayStorage } = await import('../../src/relay/accounting.js')
    const { memoryStore } = await import('../../src/relay/persistence.js')
    const { RegistryGuard } = await import('../../src/relay/registry-guard.js')
    const alice = makeAccount()
    const mallory = makeAccount()
    const cut: string[] = []
    const guard = new RegistryGuard(await RelayStorage.open(memoryStore()), (_account, deviceId) => cut.push(deviceId))
    const victim = 'ab'.repeat(16)
    const genuine = signRevocation(alice.account, { deviceId: victim, revokedAt: 1, cutoffs: new Map() })
    const forged = signRevocation(mallory.account, { deviceId: victim, revokedAt: 1, cutoffs: new Map() })
    const report = { accountId: alice.account.accountId, deviceId: victim, rootPublicKey: alice.account.rootPublicKey, statement: genuine }
    // Signed by another root, or naming another root for alice's account, or another device.
    expect(guard.learn({ ...report, statement: forged })).toBe(false)
    expect(guard.learn({ ...report, rootPublicKey: mallory.account.rootPublicKey, statement: forged })).toBe(false)
    expect(guard.learn({ ...report, deviceId: 'cd'.repeat(16) })).toBe(false)
    expect(cut).toEqual([])
    expect(guard.learn(report)).toBe(true)
    expect(guard.learn(report)).toBe(false)
    expect(cut).toEqual([victim])
    const grant = { accountId: alice.account.accountId, deviceId: victim, roomId: alice.roomId(), passIssuedAt: 1, rootPublicKey: alice.account.rootPublicKey }
    await expect(guard.check(grant)).rejects.toThrow(/revoked/)
  })
})
