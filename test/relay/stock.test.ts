/**
 * Interoperability with stock y-websocket parts, both ways: our transport against a stock
 * `@y/websocket-server` (no auth), and a stock `y-websocket` client through our relay. The sealed
 * log is opaque to the stock parts: they carry real envelopes without any key.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { WebSocketServer } from 'ws'
import * as Y from 'yjs'
import { WebsocketProvider } from 'y-websocket'
import { docs as stockDocs, setupWSConnection } from '@y/websocket-server/utils'
import { EnvelopeType, openEnvelope, parseEnvelope, ready, sealEnvelope } from '../../src/crypto/index.js'
import { ownerKeyring } from '../../src/crypto/keyring.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import type { Transport } from '../../src/adapters/transport.js'
import { fromUtf8, utf8 } from '../../src/util/bytes.js'
import {
  closeRelays,
  containsBytes,
  makeAccount,
  NodeWebSocket,
  sealedLog,
  startRelay,
  waitFor,
  type TestAccount,
} from './helpers.js'

beforeAll(async () => {
  await ready()
})

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await closeRelays()
})

/** A stock y-websocket server: `setupWSConnection` on a plain ws server, no auth. */
async function stockServer(): Promise<{ url: string }> {
  const http: Server = createServer((_req, res) => res.end('ok'))
  const wss = new WebSocketServer({ server: http })
  wss.on('connection', (conn, req) => setupWSConnection(conn, req))
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  cleanups.push(async () => {
    for (const client of wss.clients) client.terminate()
    wss.close()
    await new Promise<void>((resolve) => http.close(() => resolve()))
  })
  return { url: `ws://127.0.0.1:${(http.address() as AddressInfo).port}` }
}

/** Seal a real envelope of `text` for `roomId` with the account's epoch-0 key. */
function seal(who: TestAccount, roomId: string, text: string, seq: number): Uint8Array {
  const key = ownerKeyring(who.account).epochKey('personal', 0)!
  return sealEnvelope({
    roomId,
    type: EnvelopeType.Update,
    epoch: 0,
    seq,
    sender: who.device.deviceIdBytes,
    signSecretKey: who.device.signSecretKey,
    key,
    plaintext: utf8(text),
  })
}

function open(who: TestAccount, roomId: string, bytes: Uint8Array): string {
  const parsed = parseEnvelope(bytes)
  if (!parsed.ok) throw new Error('unparseable envelope')
  const opened = openEnvelope(parsed.value, roomId, who.device.signPublicKey, ownerKeyring(who.account).epochKey('personal', 0)!)
  if (!opened.ok) throw new Error(`envelope refused: ${opened.reason}`)
  return fromUtf8(opened.value)
}

describe('stock y-websocket interoperability', () => {
  it('our websocket transport syncs a sealed log through a stock @y/websocket-server', async () => {
    const server = await stockServer()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const transports: Transport[] = []
    const make = () => {
      const t = websocketTransport({ url: server.url, WebSocketPolyfill: NodeWebSocket, maxBackoffTime: 200 })
      transports.push(t)
      return t
    }
    cleanups.push(() => transports.forEach((t) => t.close()))
    const phone = sealedLog(roomId)
    const car = sealedLog(roomId)
    const tp = make().attach(phone)
    const tc = make().attach(car)
    await waitFor(() => tp.status === 'synced' && tc.status === 'synced', 5000, 'synced with the stock server')

    const secret = 'blood pressure 120/80 (stock server must not see this)'
    phone.log.push([seal(alice, roomId, secret, 1)])
    car.log.push([seal(alice, roomId, 'car says hi', 2)])
    await waitFor(() => phone.log.length === 2 && car.log.length === 2, 5000, 'both entries on both devices')
    expect(car.log.toArray().map((e) => open(alice, roomId, e)).sort()).toEqual(['blood pressure 120/80 (stock server must not see this)', 'car says hi'].sort())

    // The stock server merged the sealed log without keys and holds only ciphertext.
    const held = stockDocs.get(roomId)
    expect(held).toBeDefined()
    const state = Y.encodeStateAsUpdate(held!)
    expect(held!.getArray<Uint8Array>('log').length).toBe(2)
    expect(containsBytes(state, utf8('blood pressure'))).toBe(false)
    // A late device gets the full history from the stock server.
    const pc = sealedLog(roomId)
    const tpc = make().attach(pc)
    await waitFor(() => tpc.status === 'synced' && pc.log.length === 2, 5000, 'late joiner')
  })

  it('a stock y-websocket WebsocketProvider with a valid token syncs a sealed log through our relay', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const roomId = alice.roomId()
    const transport = websocketTransport({ url: relay.url, token: alice.token, WebSocketPolyfill: NodeWebSocket })
    cleanups.push(() => transport.close())
    const phone = sealedLog(roomId)
    const attachment = transport.attach(phone)
    await waitFor(() => attachment.status === 'synced', 5000, 'phone synced')
    const secret = 'my PIN is 4711 (the stock client must not see this)'
    phone.log.push([seal(alice, roomId, secret, 1)])

    const doc = new Y.Doc()
    const provider = new WebsocketProvider(relay.url, roomId, doc, {
      params: { token: alice.token(roomId) },
      WebSocketPolyfill: NodeWebSocket,
      disableBc: true,
    })
    cleanups.push(() => provider.destroy())
    const log = doc.getArray<Uint8Array>('log')
    await waitFor(() => provider.synced && log.length === 1, 5000, 'stock client synced')
    // It holds the envelope bytes, not the plaintext.
    expect(log.get(0)).toEqual(phone.log.get(0))
    expect(containsBytes(Y.encodeStateAsUpdate(doc), utf8('PIN'))).toBe(false)
    expect(open(alice, roomId, log.get(0))).toBe(secret)

    // It can also write (a sealed envelope made elsewhere) and our device receives it.
    log.push([seal(alice, roomId, 'relayed by a stock client', 2)])
    await waitFor(() => phone.log.length === 2, 5000, 'entry from the stock client')
    expect(phone.log.toArray().map((e) => open(alice, roomId, e))).toEqual([secret, 'relayed by a stock client'])
    expect(relay.metrics().rejections).toEqual({})
  })

  it('a stock client without a token is refused by our relay and stops reconnecting', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const doc = new Y.Doc()
    const closes: number[] = []
    const provider = new WebsocketProvider(relay.url, alice.roomId(), doc, {
      WebSocketPolyfill: NodeWebSocket,
      disableBc: true,
    })
    cleanups.push(() => provider.destroy())
    provider.on('closed', ({ code }) => closes.push(code))
    await waitFor(() => closes.length > 0, 5000, 'refused')
    expect(closes).toEqual([4401])
    expect(provider.synced).toBe(false)
  })
})
