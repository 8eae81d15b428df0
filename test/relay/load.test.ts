/**
 * Load on loopback: 1,000 concurrent device connections (10 accounts × 10 devices × 10 rooms,
 * i.e. 100 rooms of 10 members), every member writes once, every write reaches every member.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ready } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import type { Transport, TransportAttachment } from '../../src/adapters/transport.js'
import { createAccessToken, createDeviceKeys, issueRelayPass } from '../../src/crypto/index.js'
import { closeRelays, fakeEnvelope, makeAccount, NodeWebSocket, sealedLog, startRelay, waitFor } from './helpers.js'

beforeAll(async () => {
  await ready()
})

const transports: Transport[] = []
afterEach(async () => {
  for (const t of transports.splice(0)) await t.close()
  await closeRelays()
})

const ACCOUNTS = 10
const DEVICES = 10
const ROOMS = 10

describe('relay load (loopback)', () => {
  it('holds 1,000 connections across 100 rooms and delivers every write to every member', async () => {
    const started = Date.now()
    const relay = await startRelay({ limits: { maxConnectionsPerAddress: 2000 } })
    type Member = { name: string; roomId: string; log: ReturnType<typeof sealedLog>['log']; attachment: TransportAttachment }
    const members: Member[] = []
    for (let a = 0; a < ACCOUNTS; a++) {
      const owner = makeAccount()
      const rooms = Array.from({ length: ROOMS }, (_, r) => owner.roomId(`scope-${r}`))
      for (let d = 0; d < DEVICES; d++) {
        const device = createDeviceKeys()
        const relayPass = issueRelayPass(owner.account, device)
        // One transport per device, carrying all of the account's rooms.
        const transport = websocketTransport({
          url: relay.url,
          token: (roomId) => createAccessToken({ rootPublicKey: owner.account.rootPublicKey, relayPass, device, roomId }),
          WebSocketPolyfill: NodeWebSocket,
        })
        transports.push(transport)
        for (const roomId of rooms) {
          const room = sealedLog(roomId)
          members.push({ name: `a${a}/d${d}`, roomId, log: room.log, attachment: transport.attach(room) })
        }
      }
    }
    expect(members).toHaveLength(1000)
    await waitFor(() => members.every((m) => m.attachment.status === 'synced'), 45_000, 'all 1,000 synced')
    const held = relay.metrics()
    expect(held.connections).toBe(1000)
    expect(held.rooms).toBe(100)
    const connectedAt = Date.now()

    for (const member of members) member.log.push([fakeEnvelope(`${member.name}@${member.roomId}`, 96)])
    const expected = new Map<string, string[]>()
    for (const m of members) {
      const list = expected.get(m.roomId) ?? []
      list.push(`${m.name}@${m.roomId}`)
      expected.set(m.roomId, list)
    }
    await waitFor(() => members.every((m) => m.log.length === DEVICES), 30_000, 'every write delivered')
    const decoder = new TextDecoder()
    for (const m of members) {
      // Exactly the room's ten writes, each once: none lost, none duplicated, none from elsewhere.
      const got = m.log
        .toArray()
        .map((entry) => expected.get(m.roomId)!.find((want) => decoder.decode(entry).startsWith(want)))
        .sort()
      expect(got, `${m.name} in ${m.roomId}`).toEqual([...expected.get(m.roomId)!].sort())
    }
    const done = relay.metrics()
    expect(done.rejections).toEqual({})
    expect(done.connections).toBe(1000)
    const elapsed = Date.now() - started
    console.log(
      `relay load: 1,000 connections synced in ${connectedAt - started} ms, 1,000 writes × 10 members delivered in ` +
        `${Date.now() - connectedAt} ms; ${done.messagesIn} frames in, ${done.messagesOut} out`,
    )
    expect(elapsed).toBeLessThan(60_000)
  }, 90_000)
})
