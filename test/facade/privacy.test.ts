import { describe, expect, it } from 'vitest'
import { type ContextSync } from '../../src/index.js'
import { converge, storageBytes, type TestDevice } from '../helpers/devices.js'
import { loopbackDevices } from '../helpers/loopback-devices.js'

describe('nothing readable leaves a device', () => {
  it('storage and network carry no plaintext of memories, sessions, titles, tags or device names', async () => {
    // No devices yet: the wire is recorded from the first message on.
    const fleet = await loopbackDevices([], { seed: 3, converge: false })
    const { net } = fleet
    const wire: Buffer[] = []
    net.on('message', (m) => wire.push(Buffer.from(m.bytes)))
    const devices: TestDevice[] = []
    for (const kind of ['phone', 'glasses', 'car', 'pc'] as const) devices.push(await fleet.open(kind))
    const [phone, glasses, , pc] = devices.map((d) => d.dev) as [ContextSync, ContextSync, ContextSync, ContextSync]

    const markers = {
      memory: 'MARKER-memory-7f3a',
      updated: 'MARKER-updated-19bc',
      tag: 'MARKER-tag-55e1',
      health: 'MARKER-health-b0d9',
      title: 'MARKER-title-c4a2',
      turn: 'MARKER-turn-8e77',
      stream: 'MARKER-stream-2d4f',
    }
    const m = await phone.memory.remember({ text: markers.memory, tags: [markers.tag] })
    await glasses.memory.remember({ text: markers.health, scope: 'health' })
    await converge(devices.map((d) => d.dev), net)
    await pc.memory.update(m.id, { text: markers.updated })
    const s = glasses.sessions.start({ title: markers.title })
    await s.append({ role: 'user', text: markers.turn })
    const w = s.stream({ role: 'assistant' })
    for (const part of markers.stream.split('-')) w.write(`${part}-`)
    await w.end()
    await converge(devices.map((d) => d.dev), net)
    // Sanity: the data did arrive, so the search below is looking at the right bytes.
    expect(phone.sessions.get(s.id)?.turns[1]?.text).toBe('MARKER-stream-2d4f-')
    expect(wire.length).toBeGreaterThan(10)

    const everything = Buffer.concat([...wire, ...(await Promise.all(devices.map((d) => storageBytes(d.storage))))])
    for (const marker of [...Object.values(markers), 'Test phone', 'Test car', 'personal', 'health']) {
      expect(everything.includes(marker), `found '${marker}'`).toBe(false)
    }
  })
})
