/**
 * The shared conformance suite every {@link Transport} runs: the loopback network in both layouts,
 * the WebSocket transport through a relay, the phone↔glasses link. It only ever touches sealed
 * logs (outer docs of opaque entries) and awareness, and it compares each replica's *full* outer
 * state — state vector, delete set and every entry — never one field.
 *
 * Exported from `contextsync/testing`; it imports vitest, so only test code should load it.
 *
 * @module
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { bytesEqual, fromUtf8, toHex, utf8 } from '../util/bytes.js'
import type { Transport, TransportAttachment, TransportStatus } from './transport.js'

/**
 * What a transport under test provides to {@link runTransportTests}. `setup` is called once per
 * test, so each test gets a fresh network (or relay).
 *
 * @example
 * ```ts
 * // A WebSocket transport through a relay started on port 0:
 * runTransportTests(async () => {
 *   const relay = await startRelay({ port: 0 })
 *   return {
 *     makeTransport: () => websocketTransport({ url: relay.url }),
 *     settle: () => new Promise((resolve) => setTimeout(resolve, 20)), // the suite polls on top
 *     teardown: () => relay.close(),
 *   }
 * }, 'websocket')
 * ```
 */
export interface TransportTestContext {
  /** A new transport on the shared network — one per simulated device. */
  makeTransport(name?: string): Transport | Promise<Transport>
  /**
   * Let traffic flow. The suite calls it repeatedly while it polls for convergence, so it may
   * simply wait a little; a simulator resolves once everything is delivered.
   */
  settle(): Promise<void>
  /** Take a transport offline while its docs keep changing; omit to skip the offline test. */
  goOffline?(transport: Transport): void | Promise<void>
  /** Bring a transport taken offline back. Required with `goOffline`. */
  goOnline?(transport: Transport): void | Promise<void>
  /** Release the network / relay. Transports made by the test are closed before this runs. */
  teardown(): Promise<void>
  /** How long an eventual check may take before it fails, in ms. Default 10 000. */
  timeoutMs?: number
  /** A fresh room id (e.g. `<accountId>.<hash>` for a relay that checks them). */
  roomId?(): string
}

/**
 * Canonical bytes of a sealed log's full outer state: its Yjs snapshot (state vector + delete
 * set, both written in a fixed order) followed by every entry. Two outer docs hold the same
 * sealed log exactly when these bytes are equal — independent of how structs were split.
 *
 * @example
 * ```ts
 * expect(toHex(outerStateBytes(phoneDoc))).toBe(toHex(outerStateBytes(carDoc)))
 * ```
 */
export function outerStateBytes(doc: Y.Doc): Uint8Array {
  const parts = [Y.encodeSnapshot(Y.snapshot(doc)), ...sealedLog(doc).toArray()]
  let size = 0
  for (const part of parts) size += 4 + part.length
  const out = new Uint8Array(size)
  const view = new DataView(out.buffer)
  let offset = 0
  // Length-prefix every part so that different splits of the same bytes never compare equal.
  for (const part of parts) {
    view.setUint32(offset, part.length)
    out.set(part, offset + 4)
    offset += 4 + part.length
  }
  return out
}

/**
 * Whether two outer docs hold the same sealed log (see {@link outerStateBytes}).
 *
 * @example
 * ```ts
 * expect(sameOuterState(a.doc, b.doc)).toBe(true)
 * ```
 */
export function sameOuterState(a: Y.Doc, b: Y.Doc): boolean {
  return bytesEqual(outerStateBytes(a), outerStateBytes(b))
}

/**
 * The sealed log of an outer doc: `doc.getArray<Uint8Array>('log')`.
 *
 * @example
 * ```ts
 * sealedLog(doc).push([envelope])
 * ```
 */
export function sealedLog(doc: Y.Doc): Y.Array<Uint8Array> {
  return doc.getArray<Uint8Array>('log')
}

/** One device's copy of a room in the suite. */
interface Replica {
  readonly name: string
  readonly transport: Transport
  readonly roomId: string
  readonly doc: Y.Doc
  readonly awareness: Awareness
  attachment: TransportAttachment
  /** Every status event, in order, since the last (re)attach. */
  statuses: TransportStatus[]
  /** Log length when 'synced' was first reported, to check a late joiner's history. */
  lengthAtSynced: number | undefined
}

const STATUS_ORDER: TransportStatus[] = ['connecting', 'connected', 'synced']

/**
 * Register the transport conformance suite with vitest. Call it at the top level of a test file.
 *
 * @param setup creates a fresh {@link TransportTestContext} for each test.
 * @param name label of the `describe` block, e.g. `'loopback (mesh)'`.
 *
 * @example
 * ```ts
 * runTransportTests(async () => {
 *   const net = loopbackNetwork({ seed: 1, layout: 'mesh' })
 *   return { makeTransport: (name) => net.transport({ name }), settle: () => net.settle(),
 *     goOffline: (t) => net.disconnect(t), goOnline: (t) => net.reconnect(t),
 *     teardown: async () => net.destroy() }
 * }, 'loopback (mesh)')
 * ```
 */
export function runTransportTests(setup: () => Promise<TransportTestContext>, name = 'transport'): void {
  describe(`${name} — transport conformance`, () => {
    let ctx: TransportTestContext
    let transports: Transport[]
    let replicas: Replica[]
    let rooms = 0

    beforeEach(async () => {
      ctx = await setup()
      transports = []
      replicas = []
    })

    afterEach(async () => {
      for (const replica of replicas) replica.attachment.detach()
      for (const transport of transports) await transport.close()
      await ctx.teardown()
      for (const replica of replicas) replica.doc.destroy()
    })

    async function device(deviceName: string): Promise<Transport> {
      const transport = await ctx.makeTransport(deviceName)
      transports.push(transport)
      return transport
    }

    function newRoomId(): string {
      return ctx.roomId?.() ?? `conformance-${++rooms}`
    }

    /** Attach a fresh outer doc for `roomId`; `before` may write to it before attaching. */
    function join(transport: Transport, roomId: string, replicaName: string, before?: (doc: Y.Doc) => void): Replica {
      const doc = new Y.Doc()
      before?.(doc)
      const awareness = new Awareness(doc)
      const replica: Replica = {
        name: replicaName,
        transport,
        roomId,
        doc,
        awareness,
        attachment: transport.attach({ roomId, doc, awareness }),
        statuses: [],
        lengthAtSynced: undefined,
      }
      watch(replica)
      replicas.push(replica)
      return replica
    }

    function watch(replica: Replica): void {
      replica.statuses = []
      replica.attachment.on('status', ({ status, roomId }) => {
        expect(roomId).toBe(replica.roomId)
        replica.statuses.push(status)
        if (status === 'synced' && replica.lengthAtSynced === undefined) {
          replica.lengthAtSynced = sealedLog(replica.doc).length
        }
      })
    }

    /** Poll (settling in between) until `check` holds; fail with `what` after the timeout. */
    async function eventually(check: () => boolean, what: () => string): Promise<void> {
      const deadline = Date.now() + (ctx.timeoutMs ?? 10_000)
      for (;;) {
        await ctx.settle()
        if (check()) return
        if (Date.now() > deadline) expect.fail(`timed out waiting until ${what()}`)
        await sleep(10)
      }
    }

    async function converge(group: Replica[]): Promise<void> {
      const [first, ...rest] = group
      if (!first) return
      await eventually(
        () => rest.every((replica) => sameOuterState(first.doc, replica.doc)),
        () => `${group.map(describeReplica).join(' and ')} hold the same outer state`,
      )
      for (const replica of rest) {
        // Entry summaries give a readable diff; the full comparison is sameOuterState.
        expect(entrySummary(replica), `${replica.name} entries`).toEqual(entrySummary(first))
        expect(sameOuterState(replica.doc, first.doc), `${replica.name} outer state equals ${first.name}'s`).toBe(true)
      }
    }

    it('syncs two attachments of a room both ways, including content written before attaching', async () => {
      const roomId = newRoomId()
      const a = join(await device('a'), roomId, 'a', (doc) => sealedLog(doc).push([utf8('a0')]))
      const b = join(await device('b'), roomId, 'b')
      await converge([a, b])
      expect(texts(b)).toEqual(['a0'])

      sealedLog(a.doc).push([utf8('a1')])
      await converge([a, b])
      expect(texts(b)).toEqual(['a0', 'a1'])

      sealedLog(b.doc).push([utf8('b1')])
      await converge([a, b])
      expect(texts(a)).toEqual(['a0', 'a1', 'b1'])
    })

    it('converges four attachments writing concurrently', async () => {
      const roomId = newRoomId()
      const group: Replica[] = []
      for (const who of ['a', 'b', 'c', 'd']) group.push(join(await device(who), roomId, who))
      for (let i = 0; i < 3; i++) {
        for (const replica of group) sealedLog(replica.doc).push([utf8(`${replica.name}${i}`)])
      }
      await converge(group)
      expect([...texts(group[0]!)].sort()).toEqual(
        ['a', 'b', 'c', 'd'].flatMap((who) => [0, 1, 2].map((i) => `${who}${i}`)).sort(),
      )
    })

    it('keeps rooms isolated', async () => {
      const [x, y] = [newRoomId(), newRoomId()]
      const [t1, t2, t3] = [await device('one'), await device('two'), await device('three')]
      const x1 = join(t1, x, 'one/x')
      const y1 = join(t1, y, 'one/y')
      const x2 = join(t2, x, 'two/x')
      const y2 = join(t2, y, 'two/y')
      const y3 = join(t3, y, 'three/y')
      sealedLog(x1.doc).push([utf8('only-in-x')])
      sealedLog(y3.doc).push([utf8('only-in-y')])
      await converge([x1, x2])
      await converge([y1, y2, y3])
      expect(texts(x2)).toEqual(['only-in-x'])
      expect(texts(y1)).toEqual(['only-in-y'])
      // Not even an empty struct of room x's writer may reach room y's docs.
      for (const replica of [y1, y2, y3]) {
        expect([...Y.decodeStateVector(Y.encodeStateVector(replica.doc)).keys()]).toEqual([y3.doc.clientID])
      }
      expect([...Y.decodeStateVector(Y.encodeStateVector(x2.doc)).keys()]).toEqual([x1.doc.clientID])
    })

    it('gives a late joiner the full history by the time it reports synced', async () => {
      const roomId = newRoomId()
      const a = join(await device('a'), roomId, 'a')
      const b = join(await device('b'), roomId, 'b')
      for (let i = 0; i < 20; i++) sealedLog(i % 2 ? a.doc : b.doc).push([utf8(`entry-${i}`)])
      sealedLog(a.doc).delete(0, 2)
      await converge([a, b])

      const late = join(await device('late'), roomId, 'late')
      await eventually(
        () => late.attachment.status === 'synced',
        () => `the late joiner is synced (status ${late.attachment.status})`,
      )
      expect(late.lengthAtSynced).toBe(18)
      await converge([a, b, late])
    })

    it('syncs writes made while offline after coming back', async ({ skip }) => {
      if (!ctx.goOffline || !ctx.goOnline) return skip('the transport has no goOffline/goOnline')
      const roomId = newRoomId()
      const a = join(await device('a'), roomId, 'a')
      const b = join(await device('b'), roomId, 'b')
      sealedLog(a.doc).push([utf8('before')])
      await converge([a, b])

      await ctx.goOffline(a.transport)
      await eventually(
        () => a.attachment.status === 'disconnected',
        () => `a reports disconnected (status ${a.attachment.status})`,
      )
      sealedLog(a.doc).push([utf8('offline-1'), utf8('offline-2')])
      sealedLog(a.doc).delete(0, 1)
      sealedLog(b.doc).push([utf8('online')])
      await ctx.settle()
      await sleep(20)
      expect(texts(b)).toEqual(['before', 'online'])
      expect(texts(a)).toEqual(['offline-1', 'offline-2'])

      await ctx.goOnline(a.transport)
      await converge([a, b])
      expect([...texts(a)].sort()).toEqual(['offline-1', 'offline-2', 'online'])
      await eventually(
        () => a.attachment.status === 'synced',
        () => `a is synced again (status ${a.attachment.status})`,
      )
    })

    it('reports status events in order up to synced', async () => {
      const roomId = newRoomId()
      const a = join(await device('a'), roomId, 'a')
      expect(['connecting', 'connected']).toContain(a.attachment.status)
      await eventually(
        () => a.attachment.status === 'synced',
        () => `a is synced (status ${a.attachment.status})`,
      )
      const b = join(await device('b'), roomId, 'b')
      await eventually(
        () => b.attachment.status === 'synced',
        () => `b is synced (status ${b.attachment.status})`,
      )
      for (const replica of [a, b]) {
        expect(replica.statuses.at(-1), `${replica.name}: ${replica.statuses.join(' → ')}`).toBe('synced')
        const ranks = replica.statuses.map((status) => STATUS_ORDER.indexOf(status))
        expect(ranks.every((rank, i) => rank >= 0 && (i === 0 || rank > ranks[i - 1]!)), replica.statuses.join(' → ')).toBe(
          true,
        )
      }
    })

    it('stops syncing a detached room, and resumes when it is attached again', async () => {
      const roomId = newRoomId()
      const a = join(await device('a'), roomId, 'a')
      const b = join(await device('b'), roomId, 'b')
      sealedLog(a.doc).push([utf8('shared')])
      await converge([a, b])

      b.attachment.detach()
      b.attachment.detach() // idempotent
      sealedLog(a.doc).push([utf8('from-a-after-detach')])
      sealedLog(b.doc).push([utf8('from-b-after-detach')])
      await ctx.settle()
      await sleep(20)
      await ctx.settle()
      expect(texts(a)).toEqual(['shared', 'from-a-after-detach'])
      expect(texts(b)).toEqual(['shared', 'from-b-after-detach'])

      b.attachment = b.transport.attach({ roomId, doc: b.doc, awareness: b.awareness })
      watch(b)
      await converge([a, b])
      expect([...texts(a)].sort()).toEqual(['from-a-after-detach', 'from-b-after-detach', 'shared'])
    })

    it('detaches every room on close()', async () => {
      const [x, y] = [newRoomId(), newRoomId()]
      const closing = await device('closing')
      const other = await device('other')
      const cx = join(closing, x, 'closing/x')
      const cy = join(closing, y, 'closing/y')
      const ox = join(other, x, 'other/x')
      const oy = join(other, y, 'other/y')
      await converge([cx, ox])
      await converge([cy, oy])
      await closing.close()
      sealedLog(ox.doc).push([utf8('x-after-close')])
      sealedLog(oy.doc).push([utf8('y-after-close')])
      await ctx.settle()
      await sleep(20)
      await ctx.settle()
      expect(texts(cx)).toEqual([])
      expect(texts(cy)).toEqual([])
    })

    it('throws when the same room is attached twice on one transport', async () => {
      const roomId = newRoomId()
      const transport = await device('a')
      const a = join(transport, roomId, 'a')
      expect(() => transport.attach({ roomId, doc: a.doc, awareness: a.awareness })).toThrow()
      const other = new Y.Doc()
      expect(() => transport.attach({ roomId, doc: other, awareness: new Awareness(other) })).toThrow()
      other.destroy()
    })

    it('propagates awareness states, their changes and their removal on detach', async () => {
      const roomId = newRoomId()
      const a = join(await device('a'), roomId, 'a')
      const b = join(await device('b'), roomId, 'b')
      const c = join(await device('c'), roomId, 'c')
      a.awareness.setLocalState({ presence: 'sealed-presence-a-1' })
      b.awareness.setLocalState({ presence: 'sealed-presence-b-1' })
      await eventually(
        () => sees(b, a, { presence: 'sealed-presence-a-1' }) && sees(a, b, { presence: 'sealed-presence-b-1' }),
        () => 'a and b see each other',
      )
      await eventually(() => sees(c, a, { presence: 'sealed-presence-a-1' }), () => 'c sees a')

      a.awareness.setLocalState({ presence: 'sealed-presence-a-2' })
      await eventually(
        () => sees(b, a, { presence: 'sealed-presence-a-2' }) && sees(c, a, { presence: 'sealed-presence-a-2' }),
        () => "b and c see a's new state",
      )

      a.attachment.detach()
      await eventually(
        () => !b.awareness.getStates().has(a.doc.clientID) && !c.awareness.getStates().has(a.doc.clientID),
        () => "b and c forget a's state after a detached",
      )
      expect(sees(c, b, { presence: 'sealed-presence-b-1' })).toBe(true)
    })

    it('propagates deletions', async () => {
      const roomId = newRoomId()
      const a = join(await device('a'), roomId, 'a')
      const b = join(await device('b'), roomId, 'b')
      sealedLog(a.doc).push(['e0', 'e1', 'e2', 'e3', 'e4', 'e5'].map(utf8))
      await converge([a, b])
      sealedLog(b.doc).delete(1, 2)
      sealedLog(a.doc).delete(5, 1)
      await converge([a, b])
      expect(texts(a)).toEqual(['e0', 'e3', 'e4'])
      expect(Y.snapshot(b.doc).ds.clients.get(a.doc.clientID)).toBeDefined()
    })

    it('syncs 1 MiB entries intact', async () => {
      const roomId = newRoomId()
      const a = join(await device('a'), roomId, 'a')
      const b = join(await device('b'), roomId, 'b')
      const big = patterned(1 << 20, 7)
      const other = patterned((1 << 20) + 13, 11)
      sealedLog(a.doc).push([big])
      sealedLog(b.doc).push([other])
      await converge([a, b])
      const entries = sealedLog(b.doc).toArray()
      expect(entries.map((entry) => entry.length).sort()).toEqual([1 << 20, (1 << 20) + 13])
      expect(entries.some((entry) => bytesEqual(entry, big))).toBe(true)
      expect(sealedLog(a.doc).toArray().some((entry) => bytesEqual(entry, other))).toBe(true)
    })
  })
}

function texts(replica: Replica): string[] {
  return sealedLog(replica.doc)
    .toArray()
    .map((entry) => fromUtf8(entry))
}

/** `length:first bytes` of each entry: readable in a diff even for 1 MiB entries. */
function entrySummary(replica: Replica): string[] {
  return sealedLog(replica.doc)
    .toArray()
    .map((entry) => `${entry.length}:${toHex(entry.subarray(0, 16))}`)
}

function describeReplica(replica: Replica): string {
  return `${replica.name}[${texts(replica).length} entries, ${replica.attachment.status}]`
}

/** Whether `observer` holds `subject`'s awareness state, equal to `state`. */
function sees(observer: Replica, subject: Replica, state: Record<string, unknown>): boolean {
  const seen = observer.awareness.getStates().get(subject.doc.clientID)
  return seen !== undefined && JSON.stringify(seen) === JSON.stringify(state)
}

/** Cheap deterministic bytes that are not all alike, so truncation or shuffling is detected. */
function patterned(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length)
  let x = seed >>> 0 || 1
  for (let i = 0; i < length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = x & 0xff
  }
  return out
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
