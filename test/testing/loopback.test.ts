import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import * as prng from 'lib0/prng'
import {
  LoopbackError,
  loopbackNetwork,
  type LoopbackFaults,
  type LoopbackLayout,
  type LoopbackMessage,
  type LoopbackNetwork,
  type LoopbackStats,
} from '../../src/testing/loopback/index.js'
import {
  outerStateBytes,
  runTransportTests,
  sameOuterState,
  sealedLog,
  type TransportTestContext,
} from '../../src/adapters/transport-conformance.js'
import type { Transport, TransportAttachment, TransportStatus } from '../../src/adapters/transport.js'
import { toHex, utf8 } from '../../src/util/bytes.js'

const LAYOUTS: LoopbackLayout[] = ['hub', 'mesh']
const HARSH: LoopbackFaults = { minDelay: 1, maxDelay: 12, reorder: 0.3, duplicate: 0.15, drop: 0.15 }

function conformanceContext(net: LoopbackNetwork): TransportTestContext {
  return {
    makeTransport: (name) => net.transport(name === undefined ? {} : { name }),
    settle: () => net.settle(),
    goOffline: (transport) => net.disconnect(transport),
    goOnline: (transport) => net.reconnect(transport),
    teardown: async () => net.destroy(),
  }
}

for (const layout of LAYOUTS) {
  runTransportTests(async () => conformanceContext(loopbackNetwork({ seed: 1, layout })), `loopback (${layout})`)
  runTransportTests(
    async () => conformanceContext(loopbackNetwork({ seed: 2, layout, faults: HARSH })),
    `loopback (${layout}, faults)`,
  )
}

// ————————————————————————————————————————————————————————————— simulator-specific

interface Device {
  transport: Transport
  doc: Y.Doc
  awareness: Awareness
  attachment: TransportAttachment
  statuses: TransportStatus[]
}

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

/** A network with `count` devices attached to one room; client ids are fixed so bytes repeat. */
function setup(options: Parameters<typeof loopbackNetwork>[0], count: number, roomId = 'room') {
  const net = loopbackNetwork(options)
  const devices: Device[] = []
  for (let i = 0; i < count; i++) {
    const transport = net.transport({ name: `device-${i}` })
    const doc = new Y.Doc()
    doc.clientID = i + 1
    const awareness = new Awareness(doc)
    const attachment = transport.attach({ roomId, doc, awareness })
    const device: Device = { transport, doc, awareness, attachment, statuses: [] }
    attachment.on('status', ({ status }) => device.statuses.push(status))
    devices.push(device)
  }
  cleanups.push(() => {
    net.destroy()
    for (const device of devices) device.doc.destroy()
  })
  return { net, devices }
}

function hexState(doc: Y.Doc): string {
  return toHex(outerStateBytes(doc))
}

/** Fails with the seed in the message so a failure can be replayed with that seed alone. */
function expectConverged(net: LoopbackNetwork, devices: Device[], label: string): void {
  const [first, ...rest] = devices
  if (!first) return
  const docs = rest.map((device) => device.doc)
  const relay = net.relayDoc('room')
  if (relay) docs.push(relay)
  docs.forEach((doc, i) => {
    expect(hexState(doc), `${label}: replica ${i + 1} differs from replica 0 (seed ${net.seed}, ${net.layout})`).toBe(
      hexState(first.doc),
    )
  })
  for (const observer of devices) {
    for (const subject of devices) {
      if (observer === subject) continue
      expect(
        observer.awareness.getStates().get(subject.doc.clientID),
        `${label}: presence of ${subject.doc.clientID} at ${observer.doc.clientID} (seed ${net.seed}, ${net.layout})`,
      ).toEqual(subject.awareness.getLocalState() ?? undefined)
    }
  }
}

function randomFaults(gen: prng.PRNG): LoopbackFaults {
  const maxDelay = prng.uint32(gen, 0, 20)
  return {
    minDelay: prng.uint32(gen, 0, maxDelay),
    maxDelay,
    reorder: prng.real53(gen) * 0.4,
    duplicate: prng.real53(gen) * 0.3,
    drop: prng.real53(gen) * 0.3,
  }
}

function randomPartition(gen: prng.PRNG, devices: Device[]): Transport[][] {
  const groups: Transport[][] = [[], [], []]
  for (const device of devices) groups[prng.uint32(gen, 0, 2)]!.push(device.transport)
  return groups.filter((group) => group.length > 0)
}

/**
 * A random run on 4 devices: writes, deletes, presence changes, partitions, offline devices and
 * heals under seeded faults, with time passing in between. Ends healed and settled.
 */
async function chaos(seed: number, layout: LoopbackLayout) {
  const gen = prng.create(seed)
  const { net, devices } = setup({ seed, layout, faults: randomFaults(gen) }, 4)
  for (let step = 0; step < 40; step++) {
    const device = prng.oneOf(gen, devices)
    const log = sealedLog(device.doc)
    const action = prng.uint32(gen, 0, 9)
    if (action <= 3) log.push([prng.uint8Array(gen, prng.uint32(gen, 1, 64))])
    else if (action === 4 && log.length > 0) {
      const index = prng.uint32(gen, 0, log.length - 1)
      log.delete(index, prng.uint32(gen, 1, log.length - index))
    } else if (action === 5) device.awareness.setLocalState(prng.bool(gen) ? { presence: prng.word(gen) } : null)
    else if (action === 6) net.partition(...randomPartition(gen, devices))
    else if (action === 7) net.heal()
    else if (action === 8) {
      if (prng.bool(gen)) net.disconnect(device.transport)
      else net.reconnect(device.transport)
    } else await new Promise((resolve) => setTimeout(resolve, 0))
  }
  net.heal()
  await net.settle()
  return { net, devices }
}

describe('loopback network simulator', () => {
  const SEEDS = Array.from({ length: 50 }, (_, i) => i + 1)

  for (const layout of LAYOUTS) {
    it(`converges 4 replicas under seeded faults, partitions and heals across ${SEEDS.length} seeds (${layout})`, async () => {
      let faultsSeen = 0
      for (const seed of SEEDS) {
        const { net, devices } = await chaos(seed, layout)
        expectConverged(net, devices, `chaos seed ${seed}`)
        for (const device of devices) {
          expect(device.attachment.status, `seed ${seed} (${layout})`).toBe('synced')
        }
        const stats = net.stats
        faultsSeen += stats.dropped + stats.duplicated + stats.lost
      }
      // The runs must actually have exercised the faults, or the convergence above proves little.
      expect(faultsSeen).toBeGreaterThan(100)
    })
  }

  it('is deterministic: the same seed gives the same stats and state, another seed does not', async () => {
    const runs: Array<{ stats: LoopbackStats; state: string }> = []
    for (const seed of [7, 7, 8]) {
      const { net, devices } = await chaos(seed, 'hub')
      runs.push({ stats: net.stats, state: hexState(devices[0]!.doc) })
    }
    expect(runs[1]).toEqual(runs[0])
    expect(runs[0]!.stats.dropped + runs[0]!.stats.duplicated).toBeGreaterThan(0)
    expect(runs[2]!.stats).not.toEqual(runs[0]!.stats)
  })

  it('delivers asynchronously, never inside the sender’s transaction', async () => {
    const { net, devices } = setup({ seed: 3 }, 2)
    const [a, b] = devices as [Device, Device]
    await net.settle()
    let deliveredInsideTransaction = false
    b.doc.on('update', () => {
      if (a.doc._transaction !== null) deliveredInsideTransaction = true
    })
    sealedLog(a.doc).push([utf8('x')])
    expect(sealedLog(b.doc).length).toBe(0)
    await Promise.resolve()
    expect(sealedLog(b.doc).length).toBe(0)
    await net.settle()
    expect(sealedLog(b.doc).length).toBe(1)
    expect(deliveredInsideTransaction).toBe(false)
  })

  for (const layout of LAYOUTS) {
    it(`reports 'disconnected' to partitioned transports and recovers on heal (${layout})`, async () => {
      const { net, devices } = setup({ seed: 4, layout, faults: { maxDelay: 3 } }, 4)
      const [a, b, c, d] = devices as [Device, Device, Device, Device]
      await net.settle()
      for (const device of devices) expect(device.attachment.status).toBe('synced')

      // hub: the relay stays with the first group, so c and d lose it; mesh: c and d keep each other.
      const cutOff = layout === 'hub' ? [c, d] : [d]
      net.partition(layout === 'hub' ? [a.transport, b.transport] : [a.transport, b.transport, c.transport], cutOff.map((x) => x.transport))
      for (const device of cutOff) {
        expect(device.attachment.status).toBe('disconnected')
        expect(device.statuses.at(-1)).toBe('disconnected')
      }
      for (const device of devices.filter((x) => !cutOff.includes(x))) expect(device.attachment.status).toBe('synced')

      sealedLog(a.doc).push([utf8('majority')])
      sealedLog(d.doc).push([utf8('minority')])
      await net.settle()
      expect(sealedLog(d.doc).toArray().map((e) => new TextDecoder().decode(e))).toEqual(['minority'])
      expect(a.awareness.getStates().has(d.doc.clientID)).toBe(false)

      net.heal()
      await net.settle()
      expectConverged(net, devices, 'after heal')
      for (const device of cutOff) {
        expect(device.statuses.slice(-4)).toEqual(['disconnected', 'connecting', 'connected', 'synced'])
      }
      expect(sealedLog(a.doc).length).toBe(2)
    })
  }

  it('lets a device go offline while its doc changes, and catches it up on reconnect', async () => {
    const { net, devices } = setup({ seed: 5, layout: 'hub', faults: { maxDelay: 4, duplicate: 0.2 } }, 3)
    const [a, b] = devices as [Device, Device, Device]
    await net.settle()
    net.disconnect(a.transport)
    expect(a.attachment.status).toBe('disconnected')
    for (let i = 0; i < 10; i++) sealedLog(a.doc).push([utf8(`offline-${i}`)])
    sealedLog(a.doc).delete(0, 3)
    a.awareness.setLocalState({ presence: 'walking' })
    await net.settle()
    expect(sealedLog(b.doc).length).toBe(0)
    expect(b.awareness.getStates().has(a.doc.clientID)).toBe(false)

    net.reconnect(a.transport)
    await net.settle()
    expectConverged(net, devices, 'after reconnect')
    expect(sealedLog(b.doc).length).toBe(7)
    expect(b.awareness.getStates().get(a.doc.clientID)).toEqual({ presence: 'walking' })
  })

  it('recovers dropped messages in settle() by re-syncing', async () => {
    const { net, devices } = setup({ seed: 6, layout: 'mesh', faults: { maxDelay: 5, drop: 0.5 } }, 4)
    for (const [i, device] of devices.entries()) sealedLog(device.doc).push([utf8(`w${i}`)])
    await net.settle()
    expectConverged(net, devices, 'drop 0.5')
    expect(net.stats.dropped).toBeGreaterThan(0)
    expect(net.stats.resyncs).toBeGreaterThan(0)
  })

  it('heal() alone re-runs sync step 1 both ways and recovers what was dropped', async () => {
    const { net, devices } = setup({ seed: 9, layout: 'hub' }, 3)
    const [a, b, c] = devices as [Device, Device, Device]
    await net.settle()
    net.setFaults({ drop: 1 })
    sealedLog(a.doc).push([utf8('lost-1')])
    sealedLog(b.doc).push([utf8('lost-2')])
    await new Promise((resolve) => setTimeout(resolve, 10))
    expect(sealedLog(c.doc).length).toBe(0)
    net.setFaults({})
    net.heal()
    for (let i = 0; i < 100 && !(sameOuterState(a.doc, c.doc) && sameOuterState(b.doc, c.doc)); i++) {
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    expect(sealedLog(c.doc).length).toBe(2)
    expect(hexState(a.doc)).toBe(hexState(c.doc))
    expect(hexState(b.doc)).toBe(hexState(c.doc))
  })

  it('settle() gives up with the seed in the error when nothing gets through', async () => {
    const { net, devices } = setup({ seed: 10, layout: 'hub' }, 2)
    await net.settle()
    net.setFaults({ drop: 1 })
    sealedLog(devices[0]!.doc).push([utf8('never')])
    await expect(net.settle()).rejects.toThrow(/seed 10/)
  })

  it('taps every message with its exact bytes', async () => {
    const { net, devices } = setup({ seed: 11, layout: 'mesh', faults: { maxDelay: 6, drop: 0.2, duplicate: 0.2 } }, 3)
    const tapped: LoopbackMessage[] = []
    net.on('message', (message) => tapped.push(message))
    await net.settle()
    const marker = 'plaintext-marker-4711'
    sealedLog(devices[0]!.doc).push([utf8(marker)])
    devices[1]!.awareness.setLocalState({ presence: 'tap-presence' })
    await net.settle()
    const stats = net.stats
    expect(tapped.length).toBe(stats.sent)
    expect(tapped.reduce((sum, m) => sum + m.bytes.length, 0)).toBe(stats.bytesSent)
    expect(tapped.filter((m) => m.dropped).length).toBe(stats.dropped)
    expect(tapped.filter((m) => m.duplicated).length).toBe(stats.duplicated)
    expect(stats.delivered).toBe(stats.sent - stats.dropped + stats.duplicated - stats.lost)
    const hex = toHex(utf8(marker))
    expect(tapped.some((m) => m.type === 'sync-update' && toHex(m.bytes).includes(hex))).toBe(true)
    expect(tapped.some((m) => m.type === 'awareness' && new TextDecoder().decode(m.bytes).includes('tap-presence'))).toBe(true)
    expect(new Set(tapped.map((m) => m.type))).toEqual(new Set(['sync-step-1', 'sync-step-2', 'sync-update', 'awareness']))
    for (const m of tapped) {
      expect(m.roomId).toBe('room')
      expect(m.from).not.toBe(m.to)
    }
  })

  for (const reorder of [0, 1]) {
    it(`keeps each link FIFO despite random delays unless reorder hits (reorder ${reorder})`, async () => {
      const { net, devices } = setup({ seed: 12, layout: 'mesh', faults: { maxDelay: 10, reorder } }, 2)
      await net.settle()
      const sent: LoopbackMessage[] = []
      const delivered: LoopbackMessage[] = []
      net.on('message', (message) => sent.push(message))
      net.on('delivery', ({ message, at }) => {
        expect(at).toBeGreaterThanOrEqual(message.at)
        delivered.push(message)
      })
      for (let i = 0; i < 30; i++) sealedLog(devices[0]!.doc).push([utf8(`in-order-${i}`)])
      await net.settle()
      expect(delivered.length).toBe(sent.length)
      const inversions = delivered.filter((message, i) => i > 0 && sent.indexOf(message) < sent.indexOf(delivered[i - 1]!))
      if (reorder === 0) expect(inversions).toEqual([])
      else expect(inversions.length).toBeGreaterThan(0)
      expectConverged(net, devices, `reorder ${reorder}`)
    })
  }

  it('rejects misuse with a LoopbackError', () => {
    const net = loopbackNetwork()
    const other = loopbackNetwork()
    cleanups.push(() => {
      net.destroy()
      other.destroy()
    })
    const foreign = other.transport()
    expect(() => net.partition([foreign])).toThrow(LoopbackError)
    expect(() => net.setFaults({ drop: 2 })).toThrow(LoopbackError)
    expect(() => net.setFaults({ minDelay: 5, maxDelay: 1 })).toThrow(LoopbackError)
    const t = net.transport()
    expect(() => net.partition([t], [t])).toThrow(LoopbackError)
    t.close()
    const doc = new Y.Doc()
    cleanups.push(() => doc.destroy())
    expect(() => t.attach({ roomId: 'r', doc, awareness: new Awareness(doc) })).toThrow(LoopbackError)
  })
})
