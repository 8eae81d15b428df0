/**
 * Fixtures of the PC tests: a relay on 127.0.0.1, a phone (owner) of a new account, a PC paired to
 * it in a fresh per-user home (HOME, XDG_DATA_HOME, XDG_CONFIG_HOME under a temp folder), and the
 * real `contextsync` process started in that home — as the MCP SDK's own client spawns it, or as
 * a plain command. Each fixture registers its own teardown with `onTestFinished`.
 */
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import WebSocket from 'ws'
import { onTestFinished } from 'vitest'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { ContextSync, createAccount, memoryStorage, plainKeys } from '../../src/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import type { Transport } from '../../src/adapters/transport.js'
import { joinPc } from '../../adapters/pc/index.js'
import type { Relay, RelayOptions } from '../../src/relay/index.js'
import { closeRelays, startRelay } from '../relay/helpers.js'

/** The repository root (the spawned CLI runs from here). */
export const ROOT = resolve(import.meta.dirname, '../..')
/** How the tests start the real CLI: the TypeScript sources through tsx, as `npm run relay` does. */
export const CLI = ['--import', 'tsx', join(ROOT, 'src/bin.ts')]

/** A fresh per-user home; its folders are where env-paths puts the PC's data and key file on Linux. */
export interface PcHome {
  root: string
  env: Record<string, string>
  /** `$XDG_DATA_HOME/contextsync` */
  dataDir: string
  /** `$XDG_CONFIG_HOME/contextsync/device.key` */
  keyFile: string
}

/** Make a fresh home, removed after the test. */
export function pcHome(): PcHome {
  const root = mkdtempSync(join(tmpdir(), 'contextsync-pc-'))
  onTestFinished(() => rmSync(root, { recursive: true, force: true }))
  const env = {
    HOME: root,
    XDG_DATA_HOME: join(root, 'data'),
    XDG_CONFIG_HOME: join(root, 'config'),
    PATH: process.env.PATH ?? '',
  }
  return { root, env, dataDir: join(root, 'data', 'contextsync'), keyFile: join(root, 'config', 'contextsync', 'device.key') }
}

/** A relay, a phone owning a new account, and a PC paired to it in a fresh home (closed again). */
export interface PcWorld {
  relayUrl: string
  /** The relay (closed at the end of the test; closing it earlier is fine). */
  relay: Relay
  phone: ContextSync
  home: PcHome
  pcDeviceId: string
}

function transport(url: string, list: Transport[]): Transport {
  const t = websocketTransport({ url, WebSocketPolyfill: WebSocket, maxBackoffTime: 300 })
  list.push(t)
  return t
}

/** Start the relay and the phone, pair the PC in a fresh home, close the PC (its process will reopen it). */
export async function pcWorld(options: { relay?: RelayOptions } = {}): Promise<PcWorld> {
  const relay = await startRelay(options.relay)
  const transports: Transport[] = []
  const account = await createAccount()
  const phone = await ContextSync.open({ account, device: { kind: 'phone', name: 'Phone' }, storage: memoryStorage(), transports: [transport(relay.url, transports)], keys: plainKeys() })
  onTestFinished(async () => {
    await phone.close()
    for (const t of transports) await t.close()
    await closeRelays()
  })
  const home = pcHome()
  const invite = await phone.devices.invite({ kind: 'pc', name: 'Desk PC' })
  const pc = await joinPc({ invite: invite.code, relayUrl: relay.url, dataDir: home.dataDir, keyFile: home.keyFile, env: {}, maxBackoffTime: 300 })
  const pcDeviceId = pc.sync.deviceId
  await pc.close()
  return { relayUrl: relay.url, relay, phone, home, pcDeviceId }
}

/** Connect the MCP SDK's own client to a spawned `contextsync mcp` in `home`; stderr is collected. */
export async function mcpClient(home: PcHome, args: string[] = []): Promise<{ client: Client; stderr: () => string }> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [...CLI, 'mcp', ...args], env: home.env, cwd: ROOT, stderr: 'pipe' })
  let stderr = ''
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  const client = new Client({ name: 'contextsync-test', version: '1.0.0' })
  await client.connect(transport)
  onTestFinished(() => client.close())
  return { client, stderr: () => stderr }
}

/** Run the CLI in `home` to completion. */
export function runCli(home: PcHome, args: string[], options: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise) => {
    execFile(process.execPath, [...CLI, ...args], { cwd: ROOT, env: { ...home.env, ...options.env }, timeout: options.timeoutMs ?? 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0
      resolvePromise({ code, stdout, stderr })
    })
  })
}

/** Poll `check` until it returns a value other than undefined/false, or fail after `timeoutMs`. */
export async function until<T>(check: () => T | undefined | false | Promise<T | undefined | false>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A `contextsync mcp --http` process in `home`, with the URL and token it printed on stderr. */
export async function mcpHttpProcess(home: PcHome, args: string[] = []): Promise<{ url: string; token: string; stderr: () => string }> {
  const child = spawn(process.execPath, [...CLI, 'mcp', '--http', ...args], { cwd: ROOT, env: home.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  let stdout = ''
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
  const exited = new Promise<number | null>((resolvePromise) => child.once('exit', (code) => resolvePromise(code)))
  onTestFinished(async () => {
    if (child.exitCode === null) child.kill('SIGTERM')
    const code = await exited
    if (code !== 0 && code !== null) throw new Error(`contextsync mcp --http exited ${code}: ${stderr}`)
    if (stdout !== '') throw new Error(`contextsync mcp --http wrote to stdout: ${stdout}`)
  })
  const started = await new Promise<{ url: string; token: string }>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`no URL and token on stderr within 30 s: ${stderr}`)), 30_000)
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8')
      const url = /listening on (http:\/\/\S+)/.exec(stderr)?.[1]
      const token = /bearer token: (\S+)/.exec(stderr)?.[1]
      if (url && token) {
        clearTimeout(timer)
        resolvePromise({ url, token })
      }
    })
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${stderr}`)))
  })
  return { ...started, stderr: () => stderr }
}

/** A long-running CLI process whose stdout is collected; stopped with SIGTERM at the end of the test. */
export function background(home: PcHome, args: string[]): { stdout: () => string; stderr: () => string; stop: () => Promise<number | null>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, env: home.env, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')))
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const stop = async (): Promise<number | null> => {
    if (child.exitCode === null) child.kill('SIGTERM')
    return exited
  }
  onTestFinished(async () => void (await stop()))
  return { stdout: () => stdout, stderr: () => stderr, stop, exited }
}
