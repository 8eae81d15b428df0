/**
 * The relay and temporary access (THREAT_MODEL "A device whose temporary access ended"): the end
 * of a rental car's membership, or of one temporary grant, rides root-signed in its relay pass.
 * The relay admits the device before it, closes its live connections at it and refuses every
 * token afterwards — one minted earlier, one with a long lifetime, one with an older pass —
 * and the end cannot be stripped from the pass.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAccessToken, createDeviceKeys, issueRelayPass, ready, RejectCode, verifyAccessToken, verifyRelayPass } from '../../src/crypto/index.js'
import { CloseCode } from '../../src/relay/index.js'
import { closeRelays, makeAccount, rawClient, roomUrl, sleep, startRelay, waitFor, type RawClient } from './helpers.js'

beforeAll(async () => {
  await ready()
})

const clients: RawClient[] = []
afterEach(async () => {
  for (const client of clients.splice(0)) client.ws.terminate()
  await closeRelays()
})

/** `'admitted'` once the relay sent a frame, else the close code. */
async function outcome(client: RawClient): Promise<'admitted' | number> {
  clients.push(client)
  return Promise.race([
    waitFor(() => client.messages.length > 0 && client.ws.readyState === client.ws.OPEN, 10_000, 'admitted')
      .then(() => sleep(100))
      .then((): Promise<'admitted' | number> => (client.ws.readyState === client.ws.OPEN ? Promise.resolve('admitted') : client.closed.then(({ code }) => code))),
    client.closed.then(({ code }) => code),
  ])
}

describe('the relay refuses a device once its temporary access ended', () => {
  it('a rental car (pass until T): admitted before T, its live connection closed at T, every token refused afterwards', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const car = createDeviceKeys()
    const personal = alice.roomId()
    const registry = `${alice.account.accountId}.registry`
    const T = Date.now() + 1_200
    const pass = issueRelayPass(alice.account, car, { rooms: [registry, personal], until: T })
    const token = (roomId: string, lifetimeSeconds = 300) => createAccessToken({ rootPublicKey: alice.account.rootPublicKey, relayPass: pass, device: car, roomId, lifetimeSeconds })
    // Minted before T, used after it.
    const early = token(personal, 600)

    const live = rawClient(roomUrl(relay, personal, token(personal)))
    expect(await outcome(live)).toBe('admitted')
    const closed = await live.closed
    expect(closed.code).toBe(CloseCode.Forbidden)
    expect(Date.now()).toBeGreaterThanOrEqual(T)

    expect(await outcome(rawClient(roomUrl(relay, personal, early)))).toBe(CloseCode.Forbidden)
    expect(await outcome(rawClient(roomUrl(relay, registry, token(registry))))).toBe(CloseCode.Forbidden)
    // Other devices of the account carry on.
    expect(await outcome(rawClient(roomUrl(relay, personal, alice.token(personal))))).toBe('admitted')
  })

  it('a temporary grant ends one room only: the others stay open', async () => {
    const relay = await startRelay()
    const alice = makeAccount()
    const pc = createDeviceKeys()
    const work = alice.roomId('work')
    const health = alice.roomId('health')
    const T = Date.now() + 800
    const pass = issueRelayPass(alice.account, pc, { rooms: [work, health], roomsUntil: { [health]: T } })
    const token = (roomId: string) => createAccessToken({ rootPublicKey: alice.account.rootPublicKey, relayPass: pass, device: pc, roomId })
    const healthLive = rawClient(roomUrl(relay, health, token(health)))
    const workLive = rawClient(roomUrl(relay, work, token(work)))
    expect(await outcome(healthLive)).toBe('admitted')
    expect(await outcome(workLive)).toBe('admitted')
    expect((await healthLive.closed).code).toBe(CloseCode.Forbidden)
    await sleep(100)
    expect(workLive.ws.readyState).toBe(workLive.ws.OPEN)
    expect(await outcome(rawClient(roomUrl(relay, health, token(health))))).toBe(CloseCode.Forbidden)
    expect(await outcome(rawClient(roomUrl(relay, work, token(work))))).toBe('admitted')
  })

  it('the end cannot be stripped: a pass re-encoded without it, or with a later one, fails its root signature', () => {
    const alice = makeAccount()
    const car = createDeviceKeys()
    const room = alice.roomId()
    const now = Date.now()
    const pass = issueRelayPass(alice.account, car, { rooms: [room], until: now - 1 })
    expect(verifyRelayPass(alice.account, pass)).toMatchObject({ ok: true, value: { until: now - 1 } })
    const token = createAccessToken({ rootPublicKey: alice.account.rootPublicKey, relayPass: pass, device: car, roomId: room, now })
    expect(verifyAccessToken(token, { roomId: room, now })).toMatchObject({ ok: false, code: RejectCode.NotGranted })
    // The car re-signs nothing the root signed: any edit of the body breaks the statement.
    const unsigned = issueRelayPass(makeAccount().account, car, { rooms: [room] })
    const spliced = new Uint8Array([...pass.subarray(0, 3), ...unsigned.subarray(3)])
    expect(verifyRelayPass(alice.account, spliced).ok).toBe(false)
    // Flip a bit of the until varuint (version, type, body length, 16B id, 32B key, issuedAt before it).
    const later = pass.slice()
    const at = 3 + 16 + 32 + 6
    later[at] = (later[at] ?? 0) ^ 1
    expect(verifyRelayPass(alice.account, later).ok).toBe(false)
  })
})
