/**
 * The relay as a real process: `node --import tsx src/bin.ts relay …`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ready } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { parseAccountsFile, parseRelayArgs, relayEnvName } from '../../src/cli.js'
import { closeRelays, fakeEnvelope, makeAccount, NodeWebSocket, sealedLog, startRelay, waitFor } from './helpers.js'

beforeAll(async () => {
  await ready()
})

const children: ChildProcess[] = []
const dirs: string[] = []
afterEach(async () => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  await closeRelays()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

const ROOT = join(import.meta.dirname, '..', '..')

function cli(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/bin.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let stdout = ''
  let stderr = ''
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const firstLine = new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.once('line', resolve)
    child.once('exit', () => reject(new Error(`exited before printing a line; stderr: ${stderr}`)))
  })
  // Commands that exit without printing (usage errors) never await it.
  firstLine.catch(() => {})
  return { child, exited, firstLine, output: () => ({ stdout, stderr }) }
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-cli-'))
  dirs.push(dir)
  return dir
}

describe('contextsync relay (CLI process)', () => {
  it('prints its URL first, serves /healthz and /metrics, syncs, and exits 0 on SIGTERM with data persisted', async () => {
    const dataDir = tempDir()
    const proc = cli(['relay', '--port', '0', '--data', dataDir, '--log-level', 'info'])
    const line = await proc.firstLine
    const match = /^contextsync relay listening on (ws:\/\/127\.0\.0\.1:(\d+))$/.exec(line)
    expect(match, line).not.toBeNull()
    const url = match![1]!
    const port = Number(match![2])

    const health = await fetch(`http://127.0.0.1:${port}/healthz`)
    expect(health.status).toBe(200)
    expect(await health.json()).toEqual({ ok: true })

    const alice = makeAccount()
    const roomId = alice.roomId()
    const transport = websocketTransport({ url, token: alice.token, WebSocketPolyfill: NodeWebSocket })
    const phone = sealedLog(roomId)
    const attachment = transport.attach(phone)
    await waitFor(() => attachment.status === 'synced', 10_000, 'synced with the CLI relay')
    phone.log.push([fakeEnvelope('persist-me', 500)])

    // Poll /metrics until the write is stored.
    let metrics = ''
    const stored = /contextsync_relay_stored_bytes [1-9]/
    for (let i = 0; i < 200 && !stored.test(metrics); i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 50))
      metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
    }
    expect(metrics).toContain('# TYPE contextsync_relay_connections gauge')
    expect(metrics).toMatch(/contextsync_relay_connections 1\b/)
    expect(metrics).toMatch(/contextsync_relay_received_messages_total [1-9]/)
    expect(metrics).toMatch(/contextsync_relay_stored_bytes [1-9]/)
    // A room path over plain HTTP asks for an upgrade; anything else is not found.
    expect((await fetch(`http://127.0.0.1:${port}/some-room`)).status).toBe(426)
    expect((await fetch(`http://127.0.0.1:${port}/metrics`, { method: 'POST' })).status).toBe(404)

    proc.child.kill('SIGTERM')
    expect(await proc.exited).toBe(0)
    transport.close()
    const { stderr, stdout } = proc.output()
    expect(stdout.trim().split('\n')).toEqual([line])
    // Logs are JSON lines and never carry payload markers.
    const logs = stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string })
    expect(logs.map((l) => l.msg)).toContain('relay closed')
    expect(stderr).not.toContain('persist-me')

    const again = await startRelay({ dataDir })
    const car = await (async () => {
      const t = websocketTransport({ url: again.url, token: alice.token, WebSocketPolyfill: NodeWebSocket })
      const room = sealedLog(roomId)
      const a = t.attach(room)
      await waitFor(() => a.status === 'synced', 5000, 'car synced')
      t.close()
      return room
    })()
    expect(car.log.toArray()).toEqual([fakeEnvelope('persist-me', 500)])
  })

  it('explains every flag in --help and exits 0', async () => {
    const proc = cli(['relay', '--help'])
    expect(await proc.exited).toBe(0)
    const { stdout } = proc.output()
    const flags = ['host', 'port', 'data', 'max-message-bytes', 'rate', 'burst', 'max-rooms', 'max-stored-bytes', 'log-level']
    flags.push('max-connections-per-address', 'max-connections', 'upgrade-timeout', 'max-rooms-total', 'max-stored-bytes-total')
    flags.push('max-pairing-rooms-per-address', 'max-pairing-room-bytes', 'pairing-room-lifetime', 'max-awareness-states')
    flags.push('max-awareness-bytes', 'accounts', 'client-address-header')
    for (const flag of flags) {
      expect(stdout).toContain(`--${flag}`)
      expect(stdout).toContain(relayEnvName(flag))
    }
    expect(stdout).toContain('CONTEXTSYNC_CRYPTO=auto|native|wasm')
  })

  it('exits 2 with a clear message on a bad flag or value', async () => {
    const bogus = cli(['relay', '--bogus'])
    const badPort = cli(['relay', '--port', 'eighty'])
    const badEnv = cli(['relay'], { [relayEnvName('max-rooms')]: '-3' })
    const badCrypto = cli(['relay', '--port', '0'], { CONTEXTSYNC_CRYPTO: 'openssl' })
    const unknown = cli(['frobnicate'])
    expect(await bogus.exited).toBe(2)
    expect(bogus.output().stderr).toContain('unknown flag --bogus')
    expect(await badPort.exited).toBe(2)
    expect(badPort.output().stderr).toContain("invalid value for --port: 'eighty'")
    expect(await badEnv.exited).toBe(2)
    expect(badEnv.output().stderr).toContain('CONTEXTSYNC_RELAY_MAX_ROOMS')
    expect(await badCrypto.exited).toBe(2)
    expect(badCrypto.output().stderr).toContain("invalid value for CONTEXTSYNC_CRYPTO: 'openssl'")
    expect(await unknown.exited).toBe(2)
    expect(unknown.output().stderr).toContain("unknown command 'frobnicate'")
  })

  it('reads flags from the environment, with flags winning', () => {
    const env = { CONTEXTSYNC_RELAY_PORT: '9999', CONTEXTSYNC_RELAY_RATE: '50', CONTEXTSYNC_RELAY_MAX_STORED_BYTES: '2MiB' }
    expect(parseRelayArgs(['--port=0', '--data', ':memory:'], env)).toEqual({
      host: '127.0.0.1',
      port: 0,
      dataDir: undefined,
      limits: { messagesPerSecond: 50, maxStoredBytesPerAccount: 2 * 1024 * 1024 },
      logLevel: 'info',
    })
    expect(parseRelayArgs([], {})).toMatchObject({ port: 8787, dataDir: './relay-data' })
  })

  it('has a flag and a variable for every abuse limit, the account list and the proxy header', () => {
    const env = {
      [relayEnvName('max-connections-per-address')]: '32',
      [relayEnvName('upgrade-timeout')]: '5s',
      [relayEnvName('max-stored-bytes-total')]: '1GiB',
      [relayEnvName('pairing-room-lifetime')]: '2m',
    }
    const config = parseRelayArgs(
      [
        '--max-connections', '500',
        '--max-rooms-total', '1000',
        '--max-pairing-rooms-per-address', '2',
        '--max-pairing-room-bytes', '64KiB',
        '--max-awareness-states', '4',
        '--max-awareness-bytes', '16KiB',
        '--accounts', '/etc/contextsync/accounts',
        '--client-address-header', 'X-Forwarded-For',
      ],
      env,
    )
    expect(config).toMatchObject({
      limits: {
        maxConnectionsPerAddress: 32,
        maxConnections: 500,
        upgradeTimeoutMs: 5000,
        maxRooms: 1000,
        maxStoredBytes: 1024 ** 3,
        maxPairingRoomsPerAddress: 2,
        maxPairingRoomBytes: 64 * 1024,
        pairingRoomLifetimeMs: 120_000,
        maxAwarenessStatesPerConnection: 4,
        maxAwarenessBytesPerConnection: 16 * 1024,
      },
      accountsFile: '/etc/contextsync/accounts',
      clientAddressHeader: 'x-forwarded-for',
    })
    expect(() => parseRelayArgs(['--upgrade-timeout', 'soon'], {})).toThrow(/--upgrade-timeout/)
    expect(parseAccountsFile(`# ops\n${'a'.repeat(32)}\n\n${'b'.repeat(32)} # car fleet\n`, 'f')).toEqual(new Set(['a'.repeat(32), 'b'.repeat(32)]))
    expect(() => parseAccountsFile('not-an-id\n', 'accounts.txt')).toThrow(/accounts.txt:1/)
  })

  it('exits 2 when --accounts names a file it cannot read', async () => {
    const proc = cli(['relay', '--port', '0', '--data', ':memory:', '--accounts', join(tempDir(), 'missing.txt')])
    expect(await proc.exited).toBe(2)
    expect(proc.output().stderr).toContain('cannot read --accounts')
  })
})
