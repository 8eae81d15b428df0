/**
 * Single writes with each device in its own process, as deployed: the writer and the
 * receiver are forked child processes, the relay runs in this one. In the in-process table of
 * bench/relay.ts one thread runs writer, relay and receiver one after another, so work a device
 * does after sending (storing, indexing, local events) delays the relay and the other device; here
 * it overlaps, as on separate machines. Two processes plus the relay share this machine's 2 cores.
 *
 * Latency of write i = receiver's arrival time − writer's time just before the write, both read
 * from the system-wide monotonic clock (`process.hrtime`), so IPC to this process is not counted.
 * This process starts write i+1 after both reports of write i arrived.
 *
 * Baseline: two stock y-websocket clients writing the memory-shaped Y.Map (bench/relay-common.ts)
 * through a relay with `auth: 'none'`; subject: two ContextSync owner devices of one account
 * through a relay with the default auth. Same relay options otherwise.
 *
 * @module
 */
import { fork, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { memoryStorage } from '../src/adapters/memory-storage.js'
import { websocketTransport } from '../src/adapters/websocket.js'
import { insertMemory, memoriesMap } from '../src/crdt/memory.js'
import { createAccount } from '../src/facade/account.js'
import { ContextSync } from '../src/facade/context-sync.js'
import { CRYPTO_BACKEND_ENV, type CryptoBackendChoice } from '../src/crypto/sodium.js'
import { plainItem, startRelay, text, until, WS } from './relay-common.js'

const CHILD_ENV = 'CONTEXTSYNC_BENCH_DEVICE'

type Subject = 'plain' | 'e2ee'
type Role = 'writer' | 'receiver'

type Command =
  | { type: 'open'; subject: Subject; role: Role; url: string; room: string; recoveryCode: string }
  | { type: 'write'; i: number }
  | { type: 'close' }

type Report =
  | { type: 'ready' }
  | { type: 'wrote'; i: number; at: string }
  | { type: 'arrived'; count: number; at: string }
  | { type: 'closed' }
  | { type: 'error'; message: string }

// ── child: one device ────────────────────────────────────────────────────────

interface Device {
  write(i: number): void
  close(): Promise<void>
}

async function openPlain(role: Role, url: string, room: string, report: (r: Report) => void): Promise<Device> {
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(url, room, doc, { WebSocketPolyfill: WS, disableBc: true, resyncInterval: -1 })
  await until(() => provider.synced, 10_000, 'plain provider to sync')
  let count = 0
  if (role === 'receiver') {
    memoriesMap(doc).observe((event) => {
      for (const change of event.changes.keys.values()) if (change.action === 'add') count++
      report({ type: 'arrived', count, at: String(process.hrtime.bigint()) })
    })
  }
  const deviceId = 'd'.repeat(32)
  return {
    write: (i) => doc.transact(() => insertMemory(doc, plainItem(i, deviceId))),
    close: async () => {
      provider.destroy()
      doc.destroy()
    },
  }
}

async function openE2ee(role: Role, url: string, recoveryCode: string, report: (r: Report) => void): Promise<Device> {
  const account = await createAccount({ recoveryCode })
  const transport = websocketTransport({ url, WebSocketPolyfill: WS, maxBackoffTime: 500 })
  const dev = await ContextSync.open({ account, device: { kind: role === 'writer' ? 'phone' : 'pc' }, storage: memoryStorage(), transports: [transport] })
  let count = 0
  if (role === 'receiver') {
    dev.memory.on('change', (e) => {
      if (e.type !== 'added' || e.origin === 'local') return
      count++
      report({ type: 'arrived', count, at: String(process.hrtime.bigint()) })
    })
  }
  return {
    write: (i) => {
      dev.memory.remember({ text: text(i), kind: 'fact', tags: [`t${i % 10}`] }).catch((error: unknown) => report({ type: 'error', message: String(error) }))
    },
    close: async () => {
      await dev.close()
      transport.close()
    },
  }
}

function childMain(): void {
  let device: Device | undefined
  const report = (r: Report) => process.send!(r)
  process.on('message', (m: Command) => {
    void (async () => {
      try {
        if (m.type === 'open') {
          device = m.subject === 'plain' ? await openPlain(m.role, m.url, m.room, report) : await openE2ee(m.role, m.url, m.recoveryCode, report)
          report({ type: 'ready' })
        } else if (m.type === 'write') {
          const at = String(process.hrtime.bigint())
          device!.write(m.i)
          // Report after the write has gone out: an E2EE device seals and sends in a microtask
          // after write() returns, and a synchronous IPC send here would sit in its path.
          setImmediate(() => report({ type: 'wrote', i: m.i, at }))
        } else {
          await device?.close()
          report({ type: 'closed' })
          process.disconnect()
        }
      } catch (error) {
        report({ type: 'error', message: error instanceof Error ? error.message : String(error) })
      }
    })()
  })
}

// ── parent ───────────────────────────────────────────────────────────────────

class DeviceProcess {
  readonly child: ChildProcess
  private listeners = new Set<(r: Report) => void>()

  constructor(crypto: CryptoBackendChoice | undefined) {
    this.child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--import', 'tsx'],
      env: { ...process.env, [CHILD_ENV]: '1', ...(crypto ? { [CRYPTO_BACKEND_ENV]: crypto } : {}) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    this.child.on('message', (r: Report) => {
      for (const l of this.listeners) l(r)
    })
  }

  /** Resolve on the first report matching `accept`; reject on an error report or after `timeoutMs`. */
  next<T extends Report>(accept: (r: Report) => r is T, timeoutMs: number, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => done(() => reject(new Error(`device process: timed out waiting for ${what}`))), timeoutMs)
      const done = (f: () => void) => {
        clearTimeout(timer)
        this.listeners.delete(listener)
        f()
      }
      const listener = (r: Report) => {
        if (r.type === 'error') done(() => reject(new Error(`device process: ${r.message}`)))
        else if (accept(r)) done(() => resolve(r))
      }
      this.listeners.add(listener)
    })
  }

  send(command: Command): void {
    this.child.send(command)
  }
}

const isType =
  <K extends Report['type']>(type: K) =>
  (r: Report): r is Extract<Report, { type: K }> =>
    r.type === type

/**
 * `warmup + count` awaited single writes from a writer process to a receiver process through a
 * relay in this process; returns the latencies (ms) after the warm-up. `crypto` picks the
 * devices' libsodium build (default: the library's own choice, native on Node).
 */
export async function singleWritesAcrossProcesses(
  subject: Subject,
  warmup: number,
  count: number,
  crypto?: CryptoBackendChoice,
): Promise<number[]> {
  const server = await startRelay(subject === 'plain' ? 'none' : undefined)
  const recoveryCode = (await createAccount()).exportRecoveryCode()
  const room = `plain${randomBytes(8).toString('hex')}.memories`
  const writer = new DeviceProcess(crypto)
  const receiver = new DeviceProcess(crypto)
  try {
    for (const [p, role] of [[writer, 'writer'], [receiver, 'receiver']] as const) {
      const ready = p.next(isType('ready'), 60_000, `${role} to open`)
      p.send({ type: 'open', subject, role, url: server.relay.url, room, recoveryCode })
      await ready
    }
    const latencies: number[] = []
    let arrivedAt = new Map<number, bigint>()
    const onArrival = (r: Report) => {
      if (r.type === 'arrived') arrivedAt.set(r.count, BigInt(r.at))
    }
    receiver.child.on('message', onArrival)
    for (let i = 0; i < warmup + count; i++) {
      const target = i + 1
      const arrived = arrivedAt.has(target) ? Promise.resolve() : receiver.next((r): r is Report => r.type === 'arrived' && r.count >= target, 10_000, `write ${i} to arrive`)
      const wrote = writer.next(isType('wrote'), 10_000, `write ${i} to be issued`)
      writer.send({ type: 'write', i })
      const { at } = await wrote
      await arrived
      if (i >= warmup) latencies.push(Number(arrivedAt.get(target)! - BigInt(at)) / 1e6)
      arrivedAt = new Map([...arrivedAt].filter(([n]) => n > target))
    }
    receiver.child.off('message', onArrival)
    return latencies
  } finally {
    for (const p of [writer, receiver]) {
      if (p.child.connected) {
        const closed = p.next(isType('closed'), 30_000, 'device to close').catch(() => undefined)
        p.send({ type: 'close' })
        await closed
      }
      p.child.kill()
    }
    await server.close()
  }
}

if (process.env[CHILD_ENV] === '1') childMain()
