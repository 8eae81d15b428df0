/**
 * The link over a real `MessageChannel` and real timers (the way a webview reaches the native
 * Bluetooth stack), not the simulator: a fragmented entry crosses at MTU 20, a dropped connection
 * shows as disconnected, and a new channel resumes from state vectors.
 */
import { afterEach, expect, it } from 'vitest'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { linkServer } from '../../src/adapters/link-server.js'
import { linkTransport } from '../../src/adapters/link.js'
import { portChannel, type PortChannel } from '../../src/adapters/link-port.js'
import { sameOuterState, sealedLog } from '../../src/adapters/transport-conformance.js'

const cleanups: Array<() => void> = []
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup()
})

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000
  while (!check()) {
    if (Date.now() > deadline) expect.fail(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

it('syncs over a MessageChannel with real timers, and resumes on a new channel after a drop', async () => {
  const hub = linkServer({ auth: 'none', keepaliveMs: 0, radioWindowMs: 10 })
  const glasses = linkTransport({ keepaliveMs: 0, radioWindowMs: 10 })
  cleanups.push(() => glasses.close(), () => hub.close())
  const wire = (): [PortChannel, PortChannel] => {
    const { port1, port2 } = new MessageChannel()
    const pair: [PortChannel, PortChannel] = [portChannel(port1, { mtu: 20 }), portChannel(port2, { mtu: 20 })]
    cleanups.push(() => pair.forEach((end) => end.closed()))
    hub.accept(pair[0])
    glasses.connect(pair[1])
    return pair
  }
  const first = wire()
  const doc = new Y.Doc()
  const attachment = glasses.attach({ roomId: 'room-port', doc, awareness: new Awareness(doc) })
  const entry = Uint8Array.from({ length: 5_000 }, (_, i) => (i * 7) & 0xff)
  sealedLog(doc).push([entry])
  await until(() => attachment.status === 'synced' && hub.room('room-port') !== undefined && sameOuterState(doc, hub.room('room-port')!.doc), 'the hub holds the entry')
  expect([...sealedLog(hub.room('room-port')!.doc).get(0)]).toEqual([...entry])

  // The connection drops on both sides; writes go on offline, then a new channel comes up.
  first.forEach((end) => end.closed())
  await until(() => attachment.status === 'disconnected', 'the glasses see the drop')
  sealedLog(doc).push([Uint8Array.of(1, 2, 3)])
  const second = wire()
  // The hub may hold the entry a moment before its sync step 2 reaches the glasses: wait for both.
  await until(() => sameOuterState(doc, hub.room('room-port')!.doc) && attachment.status === 'synced', 'the hub catches up on the new channel')
  expect(glasses.connections).toHaveLength(1)
  // Only the missing entry and the state vectors crossed the new channel, not the 5 KB entry.
  expect(glasses.connections[0]!.stats.bytesSent).toBeLessThan(1_000)
  second.forEach((end) => end.closed())
})
