/**
 * Test fixtures for the head unit: a relay on 127.0.0.1, owner phones on it, a temporary data
 * folder, and a car opened on them. Every fixture registers its own teardown.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ContextSync, createAccount, memoryStorage, plainKeys, type Account, type DeviceKind } from '../../src/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { createRelay, silentLogger, type Relay, type RelayOptions } from '../../src/relay/index.js'
import { openCar, type Car, type CarOptions } from '../../adapters/car/index.js'
import { NodeWebSocket } from '../relay/helpers.js'

const cleanups: Array<() => unknown> = []

/** Run every teardown registered so far, newest first (call from afterEach). */
export async function teardown(): Promise<void> {
  for (const fn of cleanups.splice(0).reverse()) await fn()
}

export async function relayOn(options: RelayOptions = {}): Promise<Relay> {
  const relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger, ...options })
  cleanups.push(() => relay.close())
  return relay
}

export function tempDir(prefix = 'contextsync-car-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A device of `account` (owner) on the relay, in memory. */
export async function ownerDevice(url: string, kind: DeviceKind = 'phone', account?: Account): Promise<{ dev: ContextSync; account: Account }> {
  const acc = account ?? (await createAccount())
  const transport = websocketTransport({ url, WebSocketPolyfill: NodeWebSocket, maxBackoffTime: 200 })
  const dev = await ContextSync.open({ account: acc, device: { kind, name: `Test ${kind}` }, storage: memoryStorage(), transports: [transport] })
  cleanups.push(async () => {
    await dev.close()
    await transport.close()
  })
  return { dev, account: acc }
}

/** A member device of `owner`'s account (not a car) on the relay, in memory. */
export async function memberDevice(owner: ContextSync, url: string, kind: 'glasses' | 'pc'): Promise<ContextSync> {
  const invite = await owner.devices.invite({ kind, name: `Test ${kind}` })
  const transport = websocketTransport({ url, WebSocketPolyfill: NodeWebSocket, maxBackoffTime: 200 })
  const dev = await ContextSync.join({ invite: invite.code, device: { kind, name: `Test ${kind}` }, storage: memoryStorage(), transports: [transport], timeoutMs: 20_000 })
  cleanups.push(async () => {
    await dev.close()
    await transport.close()
  })
  return dev
}

/** A head unit on `dataDir` with test keys and a short backoff. */
export async function testCar(options: Partial<CarOptions> & { dataDir: string }): Promise<Car> {
  const car = await openCar({ keys: plainKeys(), maxBackoffTime: 300, ...options })
  cleanups.push(() => car.close())
  return car
}

/** Every file under `dir`, with its bytes. */
export function filesUnder(dir: string): Array<{ path: string; bytes: Buffer }> {
  const out: Array<{ path: string; bytes: Buffer }> = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...filesUnder(path))
    else out.push({ path, bytes: readFileSync(path) })
  }
  return out
}

export async function waitUntil(predicate: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now()
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}
