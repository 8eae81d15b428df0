/**
 * The relay under an abusive mix vs clean (README "The relay", limits), same run, same workload.
 *
 * A relay CLI process (its CPU and memory are its own, read from /proc) serves honest device
 * connections — `ACCOUNTS` accounts × `DEVICES` devices × `ROOMS` rooms, each device from its own
 * address, each connection a y-websocket sealed-log room through `websocketTransport` — that
 * write 96-byte envelopes at a fixed offered rate. Each phase starts a fresh relay and measures a
 * window after a warm-up:
 *
 * - **clean** (baseline): only the honest devices;
 * - **abusive**: the same, while a separate abuser process loops the attacks the relay's limits
 *   exist for — a pairing-room flood and a connection flood from one address each, replays of
 *   captured honest tokens, slowloris upgrades, self-minted accounts pushing data, and a member
 *   device flooding and overwriting awareness in its account's rooms.
 *
 * Per phase: honest deliveries per second (a write reaching each other device of its room), the
 * delivery latency p50/p99, the relay's CPU per delivered message, its resident memory at the end
 * and its peak. The abuser and the honest devices share this machine's cores with the relay, so
 * part of the abusive phase's cost is the attack traffic's own CPU — as it is on a real host.
 *
 * Run: `BENCH=relay-mix npm run bench` (knobs: BENCH_MIX_ACCOUNTS, BENCH_MIX_DEVICES,
 * BENCH_MIX_ROOMS, BENCH_MIX_WRITES_PER_S, BENCH_MIX_SECONDS).
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { createAccessToken, createDeviceKeys, issueRelayPass, ready } from '../src/crypto/index.js'
import { websocketTransport } from '../src/adapters/websocket.js'
import type { Transport, TransportAttachment } from '../src/adapters/transport.js'
import { awarenessFrame, fakeEnvelope, makeAccount, relayCliProcess, roomUrl, sealedLog, updateFrame, wsFrom, type TestAccount } from '../test/relay/helpers.js'
import { sleep } from './bench-kit.js'
import { cpuMs, procMemory } from './proc-cpu.js'
import { fmt, percentile, printTable } from './table.js'

const ABUSER_ENV = 'CONTEXTSYNC_BENCH_MIX_ABUSER'
const ACCOUNTS = Number(process.env.BENCH_MIX_ACCOUNTS ?? 10)
const DEVICES = Number(process.env.BENCH_MIX_DEVICES ?? 4)
const ROOMS = Number(process.env.BENCH_MIX_ROOMS ?? 5)
const WRITES_PER_S = Number(process.env.BENCH_MIX_WRITES_PER_S ?? 400)
const SECONDS = Number(process.env.BENCH_MIX_SECONDS ?? 10)
const WARMUP_MS = 2_000

/** What the abuser process is given: honest tokens to replay and an insider's credentials. */
interface AbuserBrief {
  url: string
  port: number
  replays: Array<{ roomId: string; token: string }>
  /** Fresh tokens of an account member for the connection flood (one room). */
  floodRoom: string
  floodTokens: string[]
  /** A member device of account 0: its rooms and one fresh token per room. */
  insider: Array<{ roomId: string; token: string }>
}

interface PhaseResult {
  deliveriesPerS: number
  p50Ms: number
  p99Ms: number
  cpuUsPerMessage: number
  rssMiB: number
  peakMiB: number
  lost: number
  /** The relay's limit-hit counters at the end of the phase (what the attacks ran into). */
  hits: Record<string, number>
}

async function phase(abusive: boolean): Promise<PhaseResult> {
  await ready()
  const owners: TestAccount[] = Array.from({ length: ACCOUNTS }, () => makeAccount())
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-bench-mix-'))
  const accountsFile = join(dir, 'accounts.txt')
  writeFileSync(accountsFile, owners.map((o) => o.account.accountId).join('\n') + '\n')
  const relay = await relayCliProcess([
    '--port', '0', '--data', ':memory:', '--log-level', 'error',
    '--client-address-header', 'x-forwarded-for', '--upgrade-timeout', '2s', '--accounts', accountsFile,
  ])
  const transports: Transport[] = []
  type Member = { key: string; room: ReturnType<typeof sealedLog>; attachment: TransportAttachment; next: number }
  const members: Member[] = []
  let abuser: ChildProcess | undefined
  try {
    const captured: Array<{ roomId: string; token: string }> = []
    owners.forEach((owner, a) => {
      const rooms = Array.from({ length: ROOMS }, (_, r) => owner.roomId(`scope-${r}`))
      for (let d = 0; d < DEVICES; d++) {
        const device = createDeviceKeys()
        const relayPass = issueRelayPass(owner.account, device)
        const transport = websocketTransport({
          url: relay.url,
          token: (roomId) => {
            const token = createAccessToken({ rootPublicKey: owner.account.rootPublicKey, relayPass, device, roomId })
            if (captured.length < 100) captured.push({ roomId, token })
            return token
          },
          WebSocketPolyfill: wsFrom(`10.${a >> 8}.${a & 0xff}.${d + 1}`),
        })
        transports.push(transport)
        for (const roomId of rooms) {
          const room = sealedLog(roomId)
          members.push({ key: `${a}/${d}`, room, attachment: transport.attach(room), next: 0 })
        }
      }
    })
    const deadline = Date.now() + 60_000
    while (!members.every((m) => m.attachment.status === 'synced')) {
      if (Date.now() > deadline) throw new Error('honest devices did not sync within 60 s')
      await sleep(20)
    }

    // Deliveries: a write marked `<writer>|<n>|<sent ms>` arriving in another device's copy of the room.
    const latencies: number[] = []
    let delivered = 0
    let measuring = false
    const decoder = new TextDecoder()
    for (const m of members) {
      m.room.log.observe((event) => {
        if (event.transaction.local) return
        for (const item of event.changes.added) {
          for (const entry of item.content.getContent() as Uint8Array[]) {
            const marker = decoder.decode(entry.subarray(0, 48)).split('|')
            const sent = Number(marker[2])
            if (!measuring || !Number.isFinite(sent)) continue
            delivered++
            latencies.push(performance.now() - sent)
          }
        }
      })
    }

    if (abusive) {
      const insiderDevice = createDeviceKeys()
      const insiderOwner = owners[0]!
      const insiderPass = issueRelayPass(insiderOwner.account, insiderDevice)
      const victim = owners[1 % owners.length]!
      const floodRoom = victim.roomId('scope-0')
      const brief: AbuserBrief = {
        url: relay.url,
        port: relay.port,
        replays: captured,
        floodRoom,
        floodTokens: Array.from({ length: 300 }, () => victim.token(floodRoom)),
        insider: Array.from({ length: ROOMS }, (_, r) => {
          const roomId = insiderOwner.roomId(`scope-${r}`)
          return { roomId, token: createAccessToken({ rootPublicKey: insiderOwner.account.rootPublicKey, relayPass: insiderPass, device: insiderDevice, roomId }) }
        }),
      }
      abuser = fork(fileURLToPath(import.meta.url), [], { execArgv: ['--import', 'tsx'], env: { ...process.env, [ABUSER_ENV]: '1' }, stdio: 'inherit' })
      abuser.send(brief)
      await new Promise<void>((resolve) => abuser!.once('message', () => resolve()))
    }

    // The honest load: every member writes at WRITES_PER_S / members.length per second.
    const intervalMs = (members.length / WRITES_PER_S) * 1000
    let n = 0
    const start = performance.now()
    const writer = setInterval(() => {
      const now = performance.now()
      for (const m of members) {
        if (m.next === 0) m.next = start + Math.random() * intervalMs
        while (m.next <= now) {
          m.room.log.push([fakeEnvelope(`${m.key}|${n++}|${performance.now().toFixed(3)}|`, 96)])
          m.next += intervalMs
        }
      }
    }, 5)
    await sleep(WARMUP_MS)
    const cpuBefore = cpuMs(relay.child.pid!)
    measuring = true
    const measureStart = performance.now()
    await sleep(SECONDS * 1000)
    measuring = false
    const seconds = (performance.now() - measureStart) / 1000
    const cpuAfter = cpuMs(relay.child.pid!)
    const memory = procMemory(relay.child.pid!)
    clearInterval(writer)
    // What was sent must still arrive: every member's room copy converges to the same length.
    const settle = Date.now() + 20_000
    const lengths = () => new Map(members.map((m) => [m.room.roomId, 0]))
    let lost = 0
    while (Date.now() < settle) {
      const want = lengths()
      for (const m of members) want.set(m.room.roomId, Math.max(want.get(m.room.roomId)!, m.room.log.length))
      lost = members.reduce((sum, m) => sum + (want.get(m.room.roomId)! - m.room.log.length), 0)
      if (lost === 0) break
      await sleep(100)
    }
    const metrics = await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text()
    const hits: Record<string, number> = {}
    for (const [, name, value] of metrics.matchAll(/contextsync_relay_limit_hits_total\{limit="(\w+)"\} (\d+)/g)) hits[name!] = Number(value)
    return {
      hits,
      deliveriesPerS: delivered / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      cpuUsPerMessage: ((cpuAfter - cpuBefore) * 1000) / Math.max(1, delivered),
      rssMiB: memory.rssMiB,
      peakMiB: memory.peakMiB,
      lost,
    }
  } finally {
    if (abuser && abuser.exitCode === null) {
      const exited = new Promise((resolve) => abuser!.once('exit', resolve))
      abuser.kill('SIGTERM')
      await exited
    }
    await Promise.all(transports.map((t) => t.close()))
    // Each room's Awareness keeps a timer: without this the process never exits.
    for (const m of members) m.room.awareness.destroy()
    await relay.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Run both phases and print them side by side. */
export async function benchRelayMix(): Promise<void> {
  const clean = await phase(false)
  const abusive = await phase(true)
  const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`
  const members = ACCOUNTS * DEVICES * ROOMS
  printTable(
    `Relay under the abusive mix vs clean — ${members} honest connections (${ACCOUNTS} accounts × ${DEVICES} devices × ${ROOMS} rooms), ` +
      `${WRITES_PER_S} writes/s offered (each delivered to ${DEVICES - 1} devices), ${SECONDS} s window, relay CLI process on ':memory:'`,
    ['', 'clean (baseline)', 'abusive', 'abusive / clean'],
    [
      ['honest deliveries / s', fmt(clean.deliveriesPerS), fmt(abusive.deliveriesPerS), ratio(abusive.deliveriesPerS, clean.deliveriesPerS)],
      ['delivery latency p50', fmt(clean.p50Ms, 'ms'), fmt(abusive.p50Ms, 'ms'), ratio(abusive.p50Ms, clean.p50Ms)],
      ['delivery latency p99', fmt(clean.p99Ms, 'ms'), fmt(abusive.p99Ms, 'ms'), ratio(abusive.p99Ms, clean.p99Ms)],
      ['relay CPU per delivered message', fmt(clean.cpuUsPerMessage, 'µs'), fmt(abusive.cpuUsPerMessage, 'µs'), ratio(abusive.cpuUsPerMessage, clean.cpuUsPerMessage)],
      ['relay RSS at the end of the window', fmt(clean.rssMiB, 'MiB'), fmt(abusive.rssMiB, 'MiB'), ratio(abusive.rssMiB, clean.rssMiB)],
      ['relay peak RSS', fmt(clean.peakMiB, 'MiB'), fmt(abusive.peakMiB, 'MiB'), ratio(abusive.peakMiB, clean.peakMiB)],
      ['writes not delivered after 20 s', String(clean.lost), String(abusive.lost), ''],
    ],
  )
  const nonZero = (hits: Record<string, number>) => Object.entries(hits).filter(([, v]) => v > 0).map(([k, v]) => `${k} ${v}`).join(', ') || 'none'
  console.log(`limit hits — clean: ${nonZero(clean.hits)}; abusive: ${nonZero(abusive.hits)}`)
}

// ── the abuser process ─────────────────────────────────────────────────────────────────────────

function raw(url: string, address: string): WebSocket {
  const ws = new WebSocket(url, { headers: { 'x-forwarded-for': address } })
  ws.on('error', () => {})
  return ws
}

async function abuserMain(brief: AbuserBrief): Promise<void> {
  await ready()
  const open = new Set<WebSocket>()
  const keep = (ws: WebSocket): WebSocket => {
    open.add(ws)
    ws.once('close', () => open.delete(ws))
    return ws
  }
  // The insider stays connected to its account's rooms and floods/overwrites awareness each cycle.
  const insiders = brief.insider.map(({ roomId, token }) => keep(raw(roomUrl(brief.url, roomId, token), '203.0.113.5')))
  process.send!('ready')
  let cycle = 0
  for (;;) {
    cycle++
    // Pairing-room flood from one address.
    for (let i = 0; i < 100; i++) keep(raw(roomUrl(brief.url, `pair.${randomBytes(16).toString('base64url')}`), '203.0.113.1'))
    // Connection flood from one address (tokens reused after the first cycle: replays too).
    for (const token of brief.floodTokens) keep(raw(roomUrl(brief.url, brief.floodRoom, token), '203.0.113.2'))
    // Replayed honest tokens.
    brief.replays.forEach(({ roomId, token }, i) => keep(raw(roomUrl(brief.url, roomId, token), `203.0.113.3${i % 10}`)))
    // Slowloris upgrades that never finish.
    for (let i = 0; i < 100; i++) {
      const socket = connect(brief.port, '127.0.0.1').on('error', () => {})
      socket.write('GET /x HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n')
    }
    // Self-minted accounts (not on the operator's list) pushing data.
    for (let i = 0; i < 50; i++) {
      const who = makeAccount()
      const ws = keep(raw(roomUrl(brief.url, who.roomId(), who.token(who.roomId())), `203.0.113.4${i % 10}`))
      ws.once('open', () => {
        const doc = new Y.Doc()
        doc.getArray<Uint8Array>('log').push([fakeEnvelope(`minted-${cycle}-${i}`, 4096)])
        ws.send(updateFrame(Y.encodeStateAsUpdate(doc)))
      })
    }
    // Awareness: overwrite and remove the honest devices' states (ids guessed), and flood new ones.
    for (const ws of insiders) {
      if (ws.readyState !== WebSocket.OPEN) continue
      ws.send(awarenessFrame(Array.from({ length: 20 }, (_, i) => ({ clientId: i + 1, clock: cycle * 10, state: { evil: true } }))))
      ws.send(awarenessFrame(Array.from({ length: 500 }, (_, i) => ({ clientId: 900_000 + i, clock: cycle, state: { flood: 'x'.repeat(64) } }))))
    }
    await sleep(1_000)
    // Drop what this cycle opened that the relay has not refused yet (the insiders stay).
    for (const ws of open) if (!insiders.includes(ws)) ws.terminate()
    // Slowloris sockets are left for the relay's upgrade timeout to close.
  }
}

if (process.env[ABUSER_ENV] === '1') {
  process.once('message', (brief: AbuserBrief) => void abuserMain(brief))
  process.once('disconnect', () => process.exit(0))
  process.on('SIGTERM', () => process.exit(0))
}
