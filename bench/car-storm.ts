/**
 * Reconnect storm (BENCH=car-storm): BENCH_STORM_CARS (1000) head-unit links, one room each of
 * their own account, synced with a relay on 127.0.0.1; the relay goes away for BENCH_STORM_DOWN
 * (8 s — links keep failing and backing off meanwhile), restarts on the same port, and every link
 * comes back by itself. Subject — the car's link (`jitter: true`: each delay drawn
 * from ½–1× the exponential backoff); baseline — the same transport without jitter, same run.
 * Reported: the most connection attempts in any 100 ms window after the restart (the storm the
 * relay sees), attempts in all, time until every link synced again, and the relay process's CPU
 * time over that period (this process runs the links too, so CPU is for comparison only).
 *
 * Environment: BENCH_STORM_CARS (1000), BENCH_STORM_BACKOFF (2 500 ms, the ceiling),
 * BENCH_STORM_DOWN (8 000 ms).
 */
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { createAccessToken, createAccountKeys, createDeviceKeys, issueRelayPass, ownerKeyring, ready } from '../src/crypto/index.js'
import { websocketTransport } from '../src/entries/websocket-node.js'
import type { TransportAttachment } from '../src/index.js'
import { createRelay, silentLogger, type Relay } from '../src/relay/index.js'
import { fmt, printTable } from './table.js'

const CARS = Number(process.env.BENCH_STORM_CARS ?? 1000)
const BACKOFF = Number(process.env.BENCH_STORM_BACKOFF ?? 2500)
const DOWN = Number(process.env.BENCH_STORM_DOWN ?? 8000)

interface StormResult {
  peak: number
  attempts: number
  allSyncedMs: number
  cpuMs: number
}

const startRelay = (port: number): Promise<Relay> =>
  createRelay({ host: '127.0.0.1', port, logger: silentLogger, limits: { maxConnectionsPerAddress: CARS * 4, maxConnections: CARS * 4 } })

async function storm(jitter: boolean): Promise<StormResult> {
  let relay = await startRelay(0)
  const port = Number(new URL(relay.url).port)
  const attempts: number[] = []
  const attachments: TransportAttachment[] = []
  const transports = []
  const awarenesses: Awareness[] = []
  for (let i = 0; i < CARS; i++) {
    const account = createAccountKeys()
    const device = createDeviceKeys()
    const relayPass = issueRelayPass(account, device)
    const roomId = ownerKeyring(account).roomId('location')
    const doc = new Y.Doc()
    const transport = websocketTransport({
      url: relay.url,
      jitter,
      maxBackoffTime: BACKOFF,
      token: (room, { audience }) => createAccessToken({ rootPublicKey: account.rootPublicKey, relayPass, device, roomId: room, audience }),
    })
    transports.push(transport)
    const awareness = new Awareness(doc)
    // y-protocols' Awareness keeps a timer until destroyed: without this the process never exits.
    awarenesses.push(awareness)
    const attachment = transport.attach({ roomId, doc, awareness })
    attachment.on('status', ({ status }) => status === 'connecting' && attempts.push(performance.now()))
    attachments.push(attachment)
  }
  const allSynced = async (since: number): Promise<number> => {
    while (!attachments.every((a) => a.status === 'synced')) {
      if (performance.now() - since > 120_000) throw new Error('bench: links did not all sync again')
      await new Promise((r) => setTimeout(r, 10))
    }
    return performance.now() - since
  }
  await allSynced(performance.now())
  await relay.close()
  await new Promise((r) => setTimeout(r, DOWN))
  const restart = performance.now()
  const cpu = process.cpuUsage()
  relay = await startRelay(port)
  const allSyncedMs = await allSynced(restart)
  const used = process.cpuUsage(cpu)
  const after = attempts.filter((t) => t >= restart)
  let peak = 0
  for (let i = 0, j = 0; i < after.length; i++) {
    while (after[i]! - after[j]! > 100) j++
    peak = Math.max(peak, i - j + 1)
  }
  for (const t of transports) await t.close()
  for (const a of awarenesses) a.destroy()
  await relay.close()
  return { peak, attempts: after.length, allSyncedMs, cpuMs: (used.user + used.system) / 1000 }
}

/** Run the storm with and without jitter and print the table. */
export async function benchCarStorm(): Promise<void> {
  await ready()
  const withJitter = await storm(true)
  const without = await storm(false)
  const row = (name: string, a: number, b: number, unit = '') => [name, fmt(a, unit), fmt(b, unit), `${fmt(a / b)}x`]
  printTable(
    `car-storm: ${CARS} links back after the relay was away ${DOWN} ms (backoff ceiling ${BACKOFF} ms)`,
    ['after the restart', 'jittered (car link)', 'no jitter', 'ratio'],
    [
      row('peak attempts / 100 ms', withJitter.peak, without.peak),
      row('attempts in all', withJitter.attempts, without.attempts),
      row('until all synced', withJitter.allSyncedMs, without.allSyncedMs, 'ms'),
      row('CPU (relay + links)', withJitter.cpuMs, without.cpuMs, 'ms'),
    ],
  )
}
