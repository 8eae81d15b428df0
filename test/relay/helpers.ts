/**
 * Shared helpers for the relay tests: accounts and tokens, raw WebSocket clients that record
 * every frame and the close code, sealed-log docs, and relays torn down after each test.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import WebSocket from 'ws'
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import { Awareness } from 'y-protocols/awareness'
import * as syncProtocol from 'y-protocols/sync'
import {
  createAccessToken,
  createAccountKeys,
  createDeviceKeys,
  issueRelayPass,
  ownerKeyring,
  ready,
  type AccountKeys,
  type DeviceKeys,
} from '../../src/crypto/index.js'
import { createRelay, silentLogger, type Relay, type RelayOptions } from '../../src/relay/index.js'

/** `ws` typed as the DOM WebSocket constructor the providers expect. */
export const NodeWebSocket = WebSocket as unknown as typeof globalThis.WebSocket

/** One account with one device and a token factory. */
export interface TestAccount {
  account: AccountKeys
  device: DeviceKeys
  relayPass: Uint8Array
  roomId(scope?: string): string
  token(roomId: string, options?: { lifetimeSeconds?: number; now?: number; audience?: string }): string
}

/** Create an account, a device and its relay pass. Call after `await ready()`. */
export function makeAccount(): TestAccount {
  const account = createAccountKeys()
  const device = createDeviceKeys()
  const relayPass = issueRelayPass(account, device)
  const keyring = ownerKeyring(account)
  return {
    account,
    device,
    relayPass,
    roomId: (scope = 'personal') => keyring.roomId(scope),
    token: (roomId, options = {}) =>
      createAccessToken({ rootPublicKey: account.rootPublicKey, relayPass, device, roomId, ...options }),
  }
}

/** Relays started through {@link startRelay}; close them with {@link closeRelays} in afterEach. */
const running: Relay[] = []

/** Start a relay on a free loopback port with a silent logger. */
export async function startRelay(options: RelayOptions = {}): Promise<Relay> {
  await ready()
  const relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger, ...options })
  running.push(relay)
  return relay
}

/** Close every relay started by {@link startRelay}. */
export async function closeRelays(): Promise<void> {
  await Promise.all(running.splice(0).map((relay) => relay.close()))
}

/** A raw client that records every frame it receives and how it was closed. */
export interface RawClient {
  ws: WebSocket
  messages: Uint8Array[]
  opened: Promise<void>
  closed: Promise<{ code: number; reason: string }>
  /** Send a frame if the socket is still open. */
  send(frame: Uint8Array): void
}

/** Connect a raw `ws` client to `url`, optionally with extra request headers (e.g. `x-forwarded-for`). */
export function rawClient(url: string, options: { headers?: Record<string, string> } = {}): RawClient {
  const ws = new WebSocket(url, options.headers ? { headers: options.headers } : undefined)
  const messages: Uint8Array[] = []
  ws.binaryType = 'arraybuffer'
  ws.on('message', (data: ArrayBuffer) => messages.push(new Uint8Array(data)))
  ws.on('error', () => {})
  const opened = new Promise<void>((resolve) => ws.once('open', () => resolve()))
  const closed = new Promise<{ code: number; reason: string }>((resolve) =>
    ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
  )
  return {
    ws,
    messages,
    opened,
    closed,
    send(frame) {
      if (ws.readyState === WebSocket.OPEN) ws.send(frame)
    },
  }
}

/** URL of a room on a relay, with an optional token. */
export function roomUrl(relay: Relay | string, roomId: string, token?: string): string {
  const base = typeof relay === 'string' ? relay : relay.url
  return `${base}/${encodeURIComponent(roomId)}${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`
}

/** A sealed-log room: an outer doc with its log array and awareness. */
export function sealedLog(roomId: string): { roomId: string; doc: Y.Doc; awareness: Awareness; log: Y.Array<Uint8Array> } {
  const doc = new Y.Doc()
  return { roomId, doc, awareness: new Awareness(doc), log: doc.getArray<Uint8Array>('log') }
}

/** Bytes standing in for an envelope, with a recognisable marker inside. */
export function fakeEnvelope(marker: string, size = 64): Uint8Array {
  const bytes = new Uint8Array(size)
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + 7) & 0xff
  bytes.set(new TextEncoder().encode(marker), 0)
  return bytes
}

/** A y-websocket sync frame carrying `update`. */
export function updateFrame(update: Uint8Array): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, 0)
  syncProtocol.writeUpdate(encoder, update)
  return encoding.toUint8Array(encoder)
}

/** A y-websocket sync step 1 frame for `doc`. */
export function step1Frame(doc: Y.Doc): Uint8Array {
  const encoder = encoding.createEncoder()
  encoding.writeVarUint(encoder, 0)
  syncProtocol.writeSyncStep1(encoder, doc)
  return encoding.toUint8Array(encoder)
}

/** Resolve when `predicate` holds, polling; reject after `timeoutMs`. */
export async function waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const start = Date.now()
  while (!predicate()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/** Sleep. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** True when `haystack` contains `needle`. */
export function containsBytes(haystack: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(haystack.buffer, haystack.byteOffset, haystack.byteLength).includes(Buffer.from(needle))
}

/** A y-websocket awareness frame with hand-written entries (what any client can send). */
export function awarenessFrame(entries: Array<{ clientId: number; clock: number; state: unknown }>): Uint8Array {
  const inner = encoding.createEncoder()
  encoding.writeVarUint(inner, entries.length)
  for (const { clientId, clock, state } of entries) {
    encoding.writeVarUint(inner, clientId)
    encoding.writeVarUint(inner, clock)
    encoding.writeVarString(inner, JSON.stringify(state))
  }
  const outer = encoding.createEncoder()
  encoding.writeVarUint(outer, 1)
  encoding.writeVarUint8Array(outer, encoding.toUint8Array(inner))
  return encoding.toUint8Array(outer)
}

/** `ws` connecting as if from `address` (for a relay started with `--client-address-header x-forwarded-for`). */
export function wsFrom(address: string): typeof globalThis.WebSocket {
  class FromAddress extends WebSocket {
    constructor(url: string | URL, protocols?: string | string[]) {
      super(url, protocols, { headers: { 'x-forwarded-for': address } })
    }
  }
  return FromAddress as unknown as typeof globalThis.WebSocket
}

/** A relay CLI running as its own process (its CPU and memory are its own). */
export interface RelayProcess {
  url: string
  port: number
  child: ChildProcess
  /** SIGTERM, and resolve once it exited. */
  stop(): Promise<void>
}

/** Start `contextsync relay …args` as a child process; resolves once it listens on 127.0.0.1. */
export async function relayCliProcess(args: string[]): Promise<RelayProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', 'relay', ...args], {
    cwd: join(import.meta.dirname, '..', '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    await exited
  }
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve)
    child.once('exit', () => reject(new Error(`relay exited: ${stderr}`)))
  })
  const match = /listening on (ws:\/\/127\.0\.0\.1:(\d+))$/.exec(line)
  if (!match) {
    await stop()
    throw new Error(`unexpected first line from the relay: ${line}`)
  }
  return { url: match[1]!, port: Number(match[2]), child, stop }
}
