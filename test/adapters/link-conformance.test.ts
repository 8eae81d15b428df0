/**
 * The link transport runs the shared transport conformance suite over the BLE link simulator, at
 * the MTUs a Bluetooth link negotiates (20: the default ATT MTU; 185: iOS; 244: LE Data Length
 * Extension; 512: the ATT maximum), hub-and-spoke (devices → `linkServer`) and mesh (every pair
 * of devices on its own connection).
 */
import { runTransportTests, type TransportTestContext } from '../../src/adapters/transport-conformance.js'
import { linkServer } from '../../src/adapters/link-server.js'
import { linkTransport, type LinkTransport } from '../../src/adapters/link.js'
import type { Transport } from '../../src/adapters/transport.js'
import { bleLinkSimulator, type BleLink } from '../../src/testing/ble-link.js'

const MTUS = [20, 185, 244, 512]
/** Fast links: the suite moves 1 MiB entries, which at MTU 20 is ~60 000 packets. */
const FAST = { connectionIntervalMs: 7.5, packetsPerEvent: 64, txBufferPackets: 128 }

function hubContext(mtu: number): TransportTestContext {
  const sim = bleLinkSimulator({ seed: mtu, mtu, ...FAST })
  const hub = linkServer({ auth: 'none', clock: sim.clock, keepaliveMs: 0 })
  const links = new Map<Transport, BleLink>()
  const offline = new Set<Transport>()
  const wire = (transport: LinkTransport): void => {
    const link = sim.connect()
    links.set(transport, link)
    hub.accept(link.central)
    transport.connect(link.peripheral)
  }
  return {
    makeTransport: () => {
      const transport = linkTransport({ clock: sim.clock, keepaliveMs: 0 })
      wire(transport)
      return transport
    },
    settle: async () => void (await sim.settle()),
    goOffline: (transport) => {
      offline.add(transport)
      links.get(transport)?.disconnect()
    },
    goOnline: (transport) => {
      offline.delete(transport)
      wire(transport as LinkTransport)
    },
    teardown: async () => hub.close(),
  }
}

/**
 * Every pair of devices on its own connection, plus an always-on peer that holds no rooms (a home
 * hub): a device alone with its room is then synced with everyone it can reach, vacuously, as in
 * the loopback mesh — with no peer at all it would rightly be 'disconnected'.
 */
function meshContext(mtu: number): TransportTestContext {
  const sim = bleLinkSimulator({ seed: 1000 + mtu, mtu, ...FAST })
  const anchor = linkTransport({ clock: sim.clock, keepaliveMs: 0 })
  const transports: LinkTransport[] = [anchor]
  const links: Array<{ a: LinkTransport; b: LinkTransport; link: BleLink }> = []
  const offline = new Set<LinkTransport>()
  const pair = (a: LinkTransport, b: LinkTransport): void => {
    const link = sim.connect()
    links.push({ a, b, link })
    a.connect(link.central, { role: 'responder' })
    b.connect(link.peripheral, { role: 'initiator' })
  }
  return {
    makeTransport: () => {
      const transport = linkTransport({ clock: sim.clock, keepaliveMs: 0 })
      for (const other of transports) if (!offline.has(other)) pair(other, transport)
      transports.push(transport)
      return transport
    },
    settle: async () => void (await sim.settle()),
    goOffline: (transport) => {
      offline.add(transport as LinkTransport)
      for (const { a, b, link } of links) if (a === transport || b === transport) link.disconnect()
    },
    goOnline: (transport) => {
      offline.delete(transport as LinkTransport)
      for (const other of transports) if (other !== transport && !offline.has(other)) pair(other, transport as LinkTransport)
    },
    teardown: async () => anchor.close(),
  }
}

for (const mtu of MTUS) runTransportTests(async () => hubContext(mtu), `link (hub, MTU ${mtu})`)
for (const mtu of [20, 244]) runTransportTests(async () => meshContext(mtu), `link (mesh, MTU ${mtu})`)
