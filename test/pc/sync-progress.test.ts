/**
 * Progress of the PC's initial sync, through the real `contextsync` process and a relay on
 * 127.0.0.1: a phone holding 1,600 memories in personal and work; `join` (stderr not a terminal)
 * prints JSON progress lines whose numbers only grow and end synced with the envelopes and bytes
 * the phone's logs hold; `sync` prints its synced line with what arrived in its run; `join --wait 0`
 * exits right after pairing; a `join` whose rooms the relay holds back exits 1 after --wait with one
 * line. The terminal bar is checked on the printer itself.
 */
import WebSocket from 'ws'
import { describe, expect, it, onTestFinished } from 'vitest'
import { ContextSync, createAccount, memoryStorage, plainKeys } from '../../src/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import type { CliIo } from '../../src/cli-io.js'
import { progressPrinter, type SyncProgress } from '../../adapters/pc/cli/progress.js'
import { CloseCode, RelayRefusal, tokenAuth, type AuthHook, type Relay } from '../../src/relay/index.js'
import { pairingAuth } from '../../src/relay/auth.js'
import { closeRelays, startRelay } from '../relay/helpers.js'
import { background, pcHome, runCli, until } from '../helpers/pc.js'

const SCOPES = ['personal', 'work']

async function phoneOnRelay(url: string): Promise<ContextSync> {
  const transport = websocketTransport({ url, WebSocketPolyfill: WebSocket, maxBackoffTime: 300 })
  const phone = await ContextSync.open({ account: await createAccount(), device: { kind: 'phone', name: 'Phone' }, storage: memoryStorage(), transports: [transport], keys: plainKeys() })
  onTestFinished(async () => {
    await phone.close()
    await transport.close()
  })
  return phone
}

/** `count` memories per scope, written in batches so they travel as many envelopes (one per batch). */
async function remember(phone: ContextSync, count: number, batch: number, tag: string): Promise<void> {
  for (const scope of SCOPES) {
    for (let start = 0; start < count; start += batch) {
      const writes = []
      for (let i = start; i < Math.min(count, start + batch); i++) writes.push(phone.memory.remember({ text: `${tag} note ${i} in ${scope}: secret-plaintext-${tag}-${i}`, scope }))
      await Promise.all(writes)
      await phone.flush()
    }
  }
}

/** The envelopes in the phone's logs of the PC's rooms, and their bytes. */
function phoneLogs(phone: ContextSync): { updates: number; bytes: number } {
  let updates = 0
  let bytes = 0
  for (const scope of SCOPES) {
    for (const entry of sealedLog(phone.replica(scope)!.outer).toArray()) {
      updates++
      bytes += entry.byteLength
    }
  }
  return { updates, bytes }
}

/** Until the relay stores everything the phone wrote: its stored bytes stay the same for 500 ms. */
async function phoneUploaded(phone: ContextSync, relay: Relay): Promise<void> {
  await phone.flush()
  let last = -1
  let steady = 0
  await until(() => {
    const stored = relay.metrics().storedBytes
    steady = stored === last && stored > 0 ? steady + 1 : 0
    last = stored
    return steady >= 10
  }, 'the phone’s writes stored on the relay')
}

interface ProgressLine {
  event: string
  rooms: number
  roomsSynced: number
  updates: number
  bytes: number
  applied?: number
  announced?: number
  final?: boolean
}

/** The JSON lines of stderr (progress and synced events); other lines are people's text. */
function jsonLines(stderr: string): ProgressLine[] {
  return stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as ProgressLine)
}

function expectMonotonic(lines: ProgressLine[]): void {
  for (let i = 1; i < lines.length; i++) {
    for (const key of ['rooms', 'roomsSynced', 'updates', 'bytes', 'applied', 'announced'] as const) {
      const before = lines[i - 1]![key]
      const after = lines[i]![key]
      if (before === undefined) continue
      expect(after, `${key} at line ${i}`).toBeGreaterThanOrEqual(before)
    }
  }
}

describe('contextsync initial sync progress', () => {
  it('join reports JSON progress on a non-terminal stderr up to the phone’s counts; sync prints its synced line; join --wait 0 does not wait', async () => {
    const relay = await startRelay()
    onTestFinished(() => closeRelays())
    const phone = await phoneOnRelay(relay.url)
    await remember(phone, 800, 10, 'first')
    await phoneUploaded(phone, relay)
    const has = phoneLogs(phone)
    expect(has.updates).toBeGreaterThanOrEqual(160)

    // join: pairs, then waits for both rooms with JSON progress lines on stderr.
    const home = pcHome()
    const invite = await phone.devices.invite({ kind: 'pc', confirm: () => true })
    const joined = await runCli(home, ['join', invite.code, '--relay', relay.url, '--yes', '--json'], { timeoutMs: 120_000 })
    expect(joined.code, joined.stderr).toBe(0)
    const result = JSON.parse(joined.stdout) as { deviceId: string; synced: boolean; rooms: number; updates: number; bytes: number }
    expect(result).toMatchObject({ synced: true, rooms: 2, updates: has.updates, bytes: has.bytes })
    const lines = jsonLines(joined.stderr)
    expect(lines.length).toBeGreaterThanOrEqual(2)
    expect(lines.every((l) => l.event === 'progress')).toBe(true)
    expect(lines[0]!.rooms).toBe(2)
    expectMonotonic(lines)
    const last = lines.at(-1)!
    expect(last).toMatchObject({ final: true, rooms: 2, roomsSynced: 2, updates: has.updates, bytes: has.bytes })
    expect(lines.filter((l) => l.final === true)).toHaveLength(1)
    expect(joined.stderr).not.toContain('secret-plaintext')

    // sync: what the phone wrote while the PC was away arrives, then the synced line.
    await until(() => phone.devices.list().some((d) => d.deviceId === result.deviceId), 'the PC on the phone')
    await remember(phone, 40, 10, 'later')
    await phoneUploaded(phone, relay)
    const later = phoneLogs(phone)
    const daemon = background(home, ['sync'])
    await until(() => daemon.stderr().includes('"event":"synced"'), `the daemon in sync (stderr: ${daemon.stderr()})`, 60_000)
    const daemonLines = jsonLines(daemon.stderr())
    const synced = daemonLines.find((l) => l.event === 'synced')!
    const progress = daemonLines.filter((l) => l.event === 'progress')
    expectMonotonic(progress)
    expect(progress.at(-1)).toMatchObject({ final: true, rooms: 2, roomsSynced: 2 })
    expect(synced).toMatchObject({ rooms: 2, updates: later.updates - has.updates, bytes: later.bytes - has.bytes })
    expect(daemon.stderr()).not.toContain('secret-plaintext')
    // It stays online: a new memory still arrives after the initial sync.
    const added = await phone.memory.remember({ text: 'Parks on level 3' })
    await until(() => daemon.stdout().includes(`memory added ${added.id}`), 'the new memory in the daemon output')
    expect(await daemon.stop()).toBe(0)

    // join --wait 0: exits right after pairing, with no progress lines.
    const other = pcHome()
    const second = await phone.devices.invite({ kind: 'pc', confirm: () => true })
    const quick = await runCli(other, ['join', second.code, '--relay', relay.url, '--yes', '--wait', '0', '--json'])
    expect(quick.code, quick.stderr).toBe(0)
    expect(JSON.parse(quick.stdout)).toMatchObject({ synced: false, rooms: 2, updates: 0, bytes: 0 })
    expect(jsonLines(quick.stderr)).toEqual([])
  }, 180_000)

  it('join --wait exits 1 with one line when the initial sync does not finish in time', async () => {
    // The relay admits the PC to pairing and the registry room but refuses it its scope rooms.
    const held = new Set<string>()
    let owner = ''
    const holdBack: AuthHook = {
      name: 'hold-back',
      priority: 50,
      onAuthenticate({ roomId, identity }) {
        if (identity && identity.deviceId !== owner && held.has(roomId)) throw new RelayRefusal(CloseCode.Forbidden, 'held back by the test')
      },
    }
    const relay = await startRelay({ auth: [pairingAuth(), tokenAuth(), holdBack] })
    onTestFinished(() => closeRelays())
    const phone = await phoneOnRelay(relay.url)
    owner = phone.deviceId
    for (const scope of SCOPES) held.add(phone.replica(scope)!.roomId)
    await remember(phone, 20, 10, 'held')

    const home = pcHome()
    const invite = await phone.devices.invite({ kind: 'pc', confirm: () => true })
    const started = Date.now()
    const run = await runCli(home, ['join', invite.code, '--relay', relay.url, '--yes', '--wait', '2'])
    expect(run.code, run.stderr).toBe(1)
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000)
    expect(run.stdout).toMatch(/^Joined account [0-9a-f]+ as [0-9a-f]+ \(scopes .*\)\.\n$/)
    const text = run.stderr.split('\n').filter((line) => line !== '' && !line.startsWith('{') && !line.startsWith('Pairing code'))
    expect(text).toEqual([expect.stringMatching(/^contextsync join: paired, but the initial sync did not finish within 2s \(0 of 2 rooms synced\)/)])
    const lines = jsonLines(run.stderr)
    expectMonotonic(lines)
    expect(lines.at(-1)).toMatchObject({ final: true, rooms: 2, roomsSynced: 0, updates: 0 })
  })

  it('on a terminal: one bar rewritten in place, ended by a newline at the final report', () => {
    let err = ''
    const io: CliIo = { stdout: () => undefined, stderr: (t) => void (err += t), env: {}, onShutdownSignal: () => () => undefined, stderrIsTty: true }
    const printer = progressPrinter(io)
    const at = (roomsSynced: number, updates: number): SyncProgress => ({ rooms: 2, roomsSynced, updates, bytes: updates * 100, synced: roomsSynced === 2, perRoom: [] })
    printer.report(at(0, 0), 'start')
    printer.report(at(0, 0), 'tick')
    printer.report(at(1, 40), 'room')
    printer.clear()
    printer.report(at(1, 40), 'tick')
    printer.report(at(2, 80), 'final')
    const writes = err.split('\r').filter((w) => w !== '')
    // The unchanged tick is left out; the one after clear() draws the bar again.
    expect(writes).toHaveLength(5)
    expect(writes[0]).toMatch(/^syncing \[-{20}\] 0\/2 rooms · 0 updates · 0 B\x1b\[K$/)
    expect(writes[1]).toMatch(/^syncing \[#{10}-{10}\] 1\/2 rooms · 40 updates · 3\.9 KiB/)
    expect(writes[2]).toBe('\x1b[K')
    expect(writes[4]).toMatch(/^synced  \[#{20}\] 2\/2 rooms · 80 updates · 7\.8 KiB\x1b\[K\n$/)
    expect(err.split('\n')).toHaveLength(2)
  })
})
