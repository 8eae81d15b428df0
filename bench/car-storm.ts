/**
 * Reconnect storm (BENCH=car-storm): BENCH_STORM_CARS (1000) head-unit links, one room each of
 * their own account, synced with a relay on 127.0.0.1; the relay goes away for BENCH_STORM_DOWN
 * (8 s — links keep failing and backing off meanwhile), restarts on the same port, and every link
 * comes back by itself. Subject — the car's link (`jitter: true`: each delay drawn
 * from ½–1× the exponential backoff); baseline — the same transport without jitter, same run.
 *
 * The relay is the `contextsync relay` CLI in its own process (`--data :memory:`), as deployed, so
 * its CPU is its own: user + system time from /proc/<pid>/stat (bench/proc-cpu.ts), from its
 * "listening" line after the restart until every link synced again. The links run in this process.
 * Reported: the most connection attempts in any 100 ms window after the restart (the storm the
 * relay sees), attempts in all, time from the relay listening again until every link synced, and
 * the relay's CPU over that time (in all and per car).
 *
 * Environment: BENCH_STORM_CARS (1000), BENCH_STORM_BACKOFF (2 500 ms, the ceiling),
 * BENCH_STORM_DOWN (8 000 ms).
 */
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import { createAccessToken, createAccountKeys, createDeviceKeys, issueRelayPass, ownerKeyring, ready } from '../src/crypto/index.js'
import { websocketTransport } from '../src/entries/websocket-node.js'
import type { TransportAttachment } from '../src/index.js'
import { relayCliProcess, type RelayProcess } from '../test/relay/helpers.js'
import { cpuMs } from './proc-cpu.js'
import { fmt, printTable } from './table.js'

const CARS = Number(process.env.BENCH_STORM_CARS ?? 1000)
const BACKOFF = Number(process.env.BENCH_STORM_BACKOFF ?? 2500)
const DOWN = Number(process.env.BENCH_STORM_DOWN ?? 8000)

interface StormResult {
  peak: number
  attempts: number
  allSyncedMs: number
  /** The relay process's CPU (user + system) from listening again until all synced. */
  cpuMs: number
}

const startRelay = (port: number): Promise<RelayProcess> =>
  relayCliProcess([
    '--port', String(port), '--data', ':memory:', '--log-level', 'error',
    '--max-connections-per-address', String(CARS * 4), '--max-connections', String(CARS * 4),
  ])

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
  await relay.stop()
  await new Promise((r) => setTimeout(r, DOWN))
  relay = await startRelay(port)
  const pid = relay.child.pid!
  const restart = performance.now()
  const cpuAtListen = cpuMs(pid)
  const allSyncedMs = await allSynced(restart)
  const relayCpuMs = cpuMs(pid) - cpuAtListen
  const after = attempts.filter((t) => t >= restart)
  let peak = 0
  for (let i = 0, j = 0; i < after.length; i++) {
    while (after[i]! - after[j]! > 100) j++
    peak = Math.max(peak, i - j + 1)
  }
  for (const t of transports) await t.close()
  for (const a of awarenesses) a.destroy()
  await relay.stop()
  return { peak, attempts: after.length, allSyncedMs, cpuMs: relayCpuMs }
}

/** Run the storm with and without jitter and print the table. */
export async function benchCarStorm(): Promise<void> {
  await ready()
  const withJitter = await storm(true)
  const without = await storm(false)
  const row = (name: string, a: number, b: number, unit = '') => [name, fmt(a, unit), fmt(b, unit), `${fmt(a / b)}x`]
  printTable(
    `car-storm: ${CARS} links back after the relay (its own process) was away ${DOWN} ms (backoff ceiling ${BACKOFF} ms)`,
    ['after the restart', 'jittered (car link)', 'no jitter', 'ratio'],
    [
      row('peak attempts / 100 ms', withJitter.peak, without.peak),
      row('attempts in all', withJitter.attempts, without.attempts),
      row('until all synced', withJitter.allSyncedMs, without.allSyncedMs, 'ms'),
      row('relay process CPU', withJitter.cpuMs, without.cpuMs, 'ms'),
      row('relay CPU per car', withJitter.cpuMs / CARS, without.cpuMs / CARS, 'ms'),
    ],
  )
}
