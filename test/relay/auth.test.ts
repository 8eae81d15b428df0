import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ready, tokenAudience } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import { CloseCode, tokenAuth, type LogFields } from '../../src/relay/index.js'
import {
  closeRelays,
  fakeEnvelope,
  makeAccount,
  NodeWebSocket,
  rawClient,
  roomUrl,
  sealedLog,
  startRelay,
  waitFor,
} from './helpers.js'

beforeAll(async () => {
  await ready()
})
afterEach(async () => {
  await closeRelays()
})

/** Connect, wait for the close, and return its code plus every frame received before it. */
async function refusedWith(url: string): Promise<{ code: number; messages: number }> {
  const client = rawClient(url)
  const { code } = await client.closed
  return { code, messages: client.messages.length }
}

describe('token audience', () => {
  it('a relay with an audience admits tokens naming it and refuses one a device sent to another relay, or one naming none', async () => {
    // A free port first, so the relay can be told the host[:port] devices will name.
    const probe = await startRelay()
    const port = Number(new URL(probe.url).port)
    await closeRelays()
    const relay = await startRelay({ port, audience: `127.0.0.1:${port}` })
    const alice = makeAccount()
    const roomId = alice.roomId()
    expect(tokenAudience(relay.url)).toBe(`127.0.0.1:${port}`)

    // A transport names the relay it connects to by itself.
    const seen: string[] = []
    const transport = websocketTransport({
      url: relay.url,
      token: (room, { audience }) => (seen.push(audience), alice.token(room, { audience })),
      WebSocketPolyfill: NodeWebSocket,
    })
    const attached = transport.attach(sealedLog(roomId))
    await waitFor(() => attached.status === 'synced', 5000, 'synced with a token naming this relay')
    expect(seen[0]).toBe(`127.0.0.1:${port}`)
    transport.close()

    // A token a device minted for another relay (captured there, say) is refused here, as is one naming none.
    expect((await refusedWith(roomUrl(relay, roomId, alice.token(roomId, { audience: 'relay.other.example' })))).code).toBe(CloseCode.Forbidden)
    expect((await refusedWith(roomUrl(relay, roomId, alice.token(roomId)))).code).toBe(CloseCode.Forbidden)
    // Upper case in the token or the option makes no difference.
    const ok = rawClient(roomUrl(relay, roomId, alice.token(roomId, { audience: `127.0.0.1:${port}`.toUpperCase() })))
    await waitFor(() => ok.messages.length > 0, 5000, 'admitted')
    ok.ws.close()
  })

  it('a relay without an audience does not check it', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const client = rawClient(roomUrl(relay, roomId, alice.token(roomId, { audience: 'anything.example' })))
    await waitFor(() => client.messages.length > 0, 5000, 'admitted')
    client.ws.close()
  })
})

describe('where the token travels', () => {
  it('in a Sec-WebSocket-Protocol entry by default, never in the URL; in the query when asked; the relay reads both', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const opened: Array<{ url: string; protocols: string[] }> = []
    /** ws, recording what each connection asked for. */
    class Recording extends NodeWebSocket {
      constructor(url: string, protocols?: string | string[]) {
        super(url, protocols)
        opened.push({ url, protocols: protocols === undefined ? [] : ([] as string[]).concat(protocols) })
      }
    }
    const polyfill = Recording as unknown as typeof NodeWebSocket
    const header = websocketTransport({ url: relay.url, token: alice.token, WebSocketPolyfill: polyfill })
    const a = header.attach(sealedLog(roomId))
    await waitFor(() => a.status === 'synced', 5000, 'synced with the token in a header')
    expect(opened[0]!.url).not.toMatch(/token=/)
    expect(opened[0]!.protocols[0]).toBe('contextsync')
    expect(opened[0]!.protocols[1]).toMatch(/^contextsync\.token\.[A-Za-z0-9_-]+$/)
    header.close()

    const query = websocketTransport({ url: relay.url, token: alice.token, WebSocketPolyfill: polyfill, tokenIn: 'url' })
    const b = query.attach(sealedLog(roomId))
    await waitFor(() => b.status === 'synced', 5000, 'synced with the token in the query')
    expect(opened[1]!.url).toMatch(/token=/)
    expect(opened[1]!.protocols).toEqual([])
    query.close()
    expect(() => websocketTransport({ url: relay.url, tokenIn: 'cookie' as 'url', WebSocketPolyfill: polyfill })).toThrow(/tokenIn must be/)
  })
})

describe('token replay across a restart', () => {
  it('a token spent before the relay restarted stays spent after it (the nonce is kept in its store)', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'contextsync-relay-nonces-'))
    try {
      const alice = makeAccount()
      const roomId = alice.roomId()
      const first = await startRelay({ dataDir })
      const port = Number(new URL(first.url).port)
      const token = alice.token(roomId)
      const admitted = rawClient(roomUrl(first, roomId, token))
      await waitFor(() => admitted.messages.length > 0, 5000, 'admitted')
      admitted.ws.close()
      expect((await refusedWith(roomUrl(first, roomId, token))).code).toBe(CloseCode.TokenReplayed)
      await closeRelays()

      const second = await startRelay({ dataDir, port })
      expect((await refusedWith(roomUrl(second, roomId, token))).code).toBe(CloseCode.TokenReplayed)
      // A fresh token still gets in.
      const fresh = rawClient(roomUrl(second, roomId, alice.token(roomId)))
      await waitFor(() => fresh.messages.length > 0, 5000, 'a fresh token admitted')
      fresh.ws.close()
    } finally {
      await closeRelays()
      rmSync(dataDir, { recursive: true, force: true })
    }
  })
})

describe('relay auth on upgrade', () => {
  it('admits a valid token and syncs a sealed log between two devices of one account', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const raw = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    await waitFor(() => raw.messages.length > 0, 5000, 'sync step 1 from the relay')
    expect(raw.messages[0]?.[0]).toBe(0) // a y-websocket sync message
    raw.ws.close()

    const transport = websocketTransport({ url: relay.url, token: alice.token, WebSocketPolyfill: NodeWebSocket })
    const a = sealedLog(roomId)
    const b = sealedLog(roomId)
    const ta = transport.attach(a)
    const other = websocketTransport({ url: relay.url, token: alice.token, WebSocketPolyfill: NodeWebSocket })
    const tb = other.attach(b)
    await waitFor(() => ta.status === 'synced' && tb.status === 'synced', 5000, 'both synced')
    a.log.push([fakeEnvelope('hello-envelope')])
    await waitFor(() => b.log.length === 1, 5000, 'entry delivered')
    expect(b.log.get(0)).toEqual(fakeEnvelope('hello-envelope'))
    transport.close()
    other.close()
    expect(relay.metrics().rejections).toEqual({})
  })

  it('refuses missing, garbage, expired, forged, replayed, wrong-room and other-account tokens before any message', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const mallory = makeAccount()
    const roomId = alice.roomId()

    const cases: { name: string; url: string; code: number }[] = [
      { name: 'missing', url: roomUrl(relay, roomId), code: CloseCode.Unauthorized },
      { name: 'garbage', url: roomUrl(relay, roomId, 'not-a-token!!'), code: CloseCode.Unauthorized },
      { name: 'random base64url', url: roomUrl(relay, roomId, 'A'.repeat(300)), code: CloseCode.Unauthorized },
      {
        name: 'expired',
        url: roomUrl(relay, roomId, alice.token(roomId, { now: Date.now() - 2 * 3600_000, lifetimeSeconds: 300 })),
        code: CloseCode.TokenExpired,
      },
      {
        name: 'not yet valid',
        url: roomUrl(relay, roomId, alice.token(roomId, { now: Date.now() + 3600_000 })),
        code: CloseCode.TokenExpired,
      },
      {
        name: 'wrong room of the same account',
        url: roomUrl(relay, alice.roomId('health'), alice.token(roomId)),
        code: CloseCode.Forbidden,
      },
      {
        // Mallory signs a token naming Alice's room with Mallory's own valid chain.
        name: 'other account',
        url: roomUrl(relay, roomId, mallory.token(roomId)),
        code: CloseCode.Forbidden,
      },
      { name: 'bad room id encoding', url: `${relay.url}/%E0%A4%A?token=x`, code: CloseCode.Forbidden },
    ]
    // Forged: flip one bit of the device signature.
    const good = Buffer.from(alice.token(roomId), 'base64url')
    good[good.length - 1]! ^= 1
    cases.push({ name: 'forged signature', url: roomUrl(relay, roomId, good.toString('base64url')), code: CloseCode.Unauthorized })
    // Forged chain: a device the root never certified signs with a pass issued to another device.
    const intruder = makeAccount()
    const { createAccessToken } = await import('../../src/crypto/index.js')
    const forgedChain = createAccessToken({
      rootPublicKey: alice.account.rootPublicKey,
      relayPass: alice.relayPass,
      device: intruder.device,
      roomId,
    })
    cases.push({ name: 'forged chain', url: roomUrl(relay, roomId, forgedChain), code: CloseCode.Unauthorized })

    for (const c of cases) {
      const result = await refusedWith(c.url)
      expect({ name: c.name, ...result }).toEqual({ name: c.name, code: c.code, messages: 0 })
    }

    // Replay: the first use is admitted, the second refused.
    const token = alice.token(roomId)
    const first = rawClient(roomUrl(relay, roomId, token))
    await waitFor(() => first.messages.length > 0, 5000, 'first use admitted')
    expect(await refusedWith(roomUrl(relay, roomId, token))).toEqual({ code: CloseCode.TokenReplayed, messages: 0 })
    first.ws.close()

    const rejections = relay.metrics().rejections
    expect(rejections[CloseCode.Unauthorized]).toBe(5)
    expect(rejections[CloseCode.TokenExpired]).toBe(2)
    expect(rejections[CloseCode.Forbidden]).toBe(3)
    expect(rejections[CloseCode.TokenReplayed]).toBe(1)
    const text = await (await fetch(`http://127.0.0.1:${relay.port}/metrics`)).text()
    expect(text).toContain('contextsync_relay_rejections_total{code="4409",reason="TokenReplayed"} 1')
    expect(text).toContain('contextsync_relay_rejections_total{code="4401",reason="Unauthorized"} 5')
    // Refused connections never loaded a room or stored anything.
    expect(relay.metrics().storedBytes).toBe(0)
  })

  it('reports refusals to the transport as error events and backs off instead of hammering', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const mallory = makeAccount()
    const roomId = alice.roomId()
    let attempts = 0
    const transport = websocketTransport({
      url: relay.url,
      token: (room) => {
        attempts += 1
        return mallory.token(room)
      },
      WebSocketPolyfill: NodeWebSocket,
      refusedBackoffTime: 60_000,
    })
    const errors: string[] = []
    const attachment = transport.attach(sealedLog(roomId))
    attachment.on('error', ({ code }) => errors.push(code))
    await waitFor(() => errors.length > 0, 5000, 'refusal reported')
    await new Promise((resolve) => setTimeout(resolve, 500))
    expect(errors).toEqual(['4403'])
    expect(attempts).toBe(1)
    expect(attachment.status).toBe('disconnected')
    transport.close()
  })

  it('uses a fresh token for every reconnection', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const issued: string[] = []
    const transport = websocketTransport({
      url: relay.url,
      token: async (room) => {
        const token = alice.token(room)
        issued.push(token)
        return token
      },
      WebSocketPolyfill: NodeWebSocket,
      maxBackoffTime: 200,
    })
    const attachment = transport.attach(sealedLog(roomId))
    await waitFor(() => attachment.status === 'synced', 5000, 'synced')
    // Kick the device off; it must come back with a new token (the old one is spent).
    expect(relay.closeDevice(alice.account.accountId, alice.device.deviceId, CloseCode.GoingAway)).toBe(1)
    await waitFor(() => issued.length === 2 && attachment.status === 'synced', 5000, 'resynced with a new token')
    expect(new Set(issued).size).toBe(2)
    expect(relay.metrics().rejections[CloseCode.TokenReplayed]).toBeUndefined()
    transport.close()
  })

  it('closes live connections of a revoked device and refuses its new ones', async () => {
    const revoked = new Set<string>()
    const relay = await startRelay({ auth: tokenAuth({ revoked: ({ deviceId }) => revoked.has(deviceId) }) })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const live = rawClient(roomUrl(relay, roomId, alice.token(roomId)))
    await waitFor(() => live.messages.length > 0, 5000, 'admitted')
    revoked.add(alice.device.deviceId)
    expect(relay.closeDevice(alice.account.accountId, alice.device.deviceId)).toBe(1)
    expect((await live.closed).code).toBe(CloseCode.Forbidden)
    expect(await refusedWith(roomUrl(relay, roomId, alice.token(roomId)))).toEqual({
      code: CloseCode.Forbidden,
      messages: 0,
    })
  })

  it('logs a loud warning when auth is disabled, and never logs tokens', async () => {
    const lines: { level: string; msg: string; fields?: LogFields }[] = []
    const capture = (level: string) => (msg: string, fields?: LogFields) => lines.push({ level, msg, ...(fields ? { fields } : {}) })
    const logger = { debug: capture('debug'), info: capture('info'), warn: capture('warn'), error: capture('error') }
    const open = await startRelay({ auth: 'none', logger })
    expect(lines.some((l) => l.level === 'warn' && /AUTH DISABLED/.test(l.msg))).toBe(true)
    await open.close()

    lines.length = 0
    const relay = await startRelay({ logger })
    const alice = makeAccount()
    const roomId = alice.roomId()
    const token = alice.token(roomId)
    const ok = rawClient(roomUrl(relay, roomId, token))
    await waitFor(() => ok.messages.length > 0)
    await refusedWith(roomUrl(relay, roomId, token))
    ok.ws.close()
    await relay.close()
    const text = JSON.stringify(lines)
    expect(text).toContain('4409')
    expect(text).not.toContain(token)
    expect(text).not.toContain(token.slice(0, 40))
  })
})
