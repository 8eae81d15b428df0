/**
 * The head unit's link when the relay comes and goes: reconnecting backs off (here up to 60 s),
 * and the host saying the network is there (`setNetwork({ online: true })`) makes it try at once
 * instead of waiting the backoff out; offline, it stops trying altogether.
 */
import { connect, createServer, type Server, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { ownerDevice, relayOn, teardown, tempDir, testCar, waitUntil } from '../helpers/car.js'

afterEach(teardown)

async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/**
 * A TCP front for the relay that either forwards or, like a tunnel that drops every packet,
 * accepts and never answers (and cuts what it was forwarding when it starts to).
 */
async function tunnelFront(relayPort: number): Promise<{ url: string; hold(): void; forward(): void; close(): Promise<void> }> {
  let holding = false
  const sockets = new Set<Socket>()
  const track = (socket: Socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => socket.destroy())
  }
  const server: Server = createServer((socket) => {
    track(socket)
    if (holding) return
    const up = connect(relayPort, '127.0.0.1')
    track(up)
    socket.pipe(up).pipe(socket)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `ws://127.0.0.1:${port}`,
    hold() {
      holding = true
      for (const socket of sockets) socket.destroy()
    },
    forward() {
      holding = false
    },
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}

describe('the car link', () => {
  it('waits out its backoff while the relay is away, and retries at once when the host reports the network', async () => {
    const dataDir = tempDir()
    const relayDir = tempDir()
    const port = await freePort()
    let relay = await relayOn({ port, dataDir: relayDir })
    const { dev: phone } = await ownerDevice(relay.url)
    const car = await testCar({ dataDir, relayUrl: relay.url, maxBackoffTime: 60_000 })
    await car.profiles.join({ id: 'alice', invite: (await phone.devices.invite({ kind: 'car' })).code })
    const statuses: string[] = []
    car.device.on('status', ({ scope, status }) => scope === 'personal' && statuses.push(status))

    // The relay goes away for a while: attempts fail fast and the backoff grows (0.2, 0.4, … s,
    // each jittered to ½–1×). Right after the fifth failure the next try is ≥ 3.2 s away.
    await relay.close()
    const attempts = () => statuses.filter((s) => s === 'connecting').length
    await waitUntil(() => attempts() >= 5 && statuses.at(-1) === 'disconnected', 15_000, 'five failed attempts')
    relay = await relayOn({ port, dataDir: relayDir })
    await new Promise((r) => setTimeout(r, 500))
    // Back, but the car is waiting out its backoff.
    expect(statuses.at(-1)).toBe('disconnected')
    expect(attempts()).toBe(5)

    const note = await car.device.memory.remember({ text: 'back from the garage' })
    const started = Date.now()
    car.setNetwork({ online: true })
    await waitUntil(() => statuses.at(-1) === 'synced', 3_000, 'synced right after setNetwork')
    expect(Date.now() - started).toBeLessThan(2_000)
    await waitUntil(() => phone.memory.get(note.id) !== undefined, 10_000, 'the note on the phone')

    // Offline: it closes and stops trying, whatever the relay does.
    car.setNetwork({ online: false })
    await waitUntil(() => statuses.at(-1) === 'disconnected', 2_000, 'disconnected')
    const before = statuses.length
    await new Promise((r) => setTimeout(r, 1_500))
    expect(statuses.length).toBe(before)
  }, 60_000)

  it('an attempt the dead network swallowed is dropped when the host reports the network', async () => {
    const relay = await relayOn({ port: await freePort(), dataDir: tempDir() })
    const front = await tunnelFront(relay.port)
    const { dev: phone } = await ownerDevice(relay.url)
    const car = await testCar({ dataDir: tempDir(), relayUrl: front.url })
    await car.profiles.join({ id: 'alice', invite: (await phone.devices.invite({ kind: 'car' })).code })
    const statuses: string[] = []
    car.device.on('status', ({ scope, status }) => scope === 'personal' && statuses.push(status))
    const before = await phone.memory.remember({ text: 'before the tunnel' })
    await waitUntil(() => car.device.memory.get(before.id) !== undefined, 10_000, 'the car online through the front')

    // Into the tunnel: connections are cut, and the next attempt gets no answer at all.
    front.hold()
    await waitUntil(() => statuses.at(-1) === 'connecting', 5_000, 'an attempt into the tunnel')
    await new Promise((r) => setTimeout(r, 1_000))
    expect(statuses.at(-1)).toBe('connecting')

    // Out of it: the host says so, and the car does not wait on the swallowed attempt.
    front.forward()
    const note = await car.device.memory.remember({ text: 'out of the tunnel' })
    const started = Date.now()
    car.setNetwork({ online: true })
    await waitUntil(() => statuses.at(-1) === 'synced', 3_000, 'synced right after setNetwork')
    expect(Date.now() - started).toBeLessThan(2_000)
    await waitUntil(() => phone.memory.get(note.id) !== undefined, 10_000, 'the note on the phone')
    await front.close()
  }, 60_000)
})
