/**
 * The relay keeps the newest relay pass of each device in its own store (THREAT_MODEL.md, a
 * device whose temporary access ended): the registry room's public map is writable by every
 * member, so a member deleting `pass/<id>` there — then a relay restart, or the account falling
 * out of the relay's bounded cache — must not let an older pass of that device in again.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAccessToken, createAccountKeys, createDeviceKeys, issueRelayPass, ready } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import type { Transport } from '../../src/adapters/transport.js'
import { passKey, PUBLIC_STATEMENTS_KEY } from '../../src/crdt/registry.js'
import { CloseCode } from '../../src/relay/index.js'
import { RelayStorage } from '../../src/relay/accounting.js'
import { memoryStore } from '../../src/relay/persistence.js'
import { MAX_CACHED_ACCOUNTS, RegistryGuard } from '../../src/relay/registry-guard.js'
import { closeRelays, makeAccount, NodeWebSocket, rawClient, roomUrl, sealedLog, sleep, startRelay, waitFor, type RawClient } from './helpers.js'

beforeAll(async () => {
  await ready()
})

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
  await closeRelays()
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-passes-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** `'admitted'` once the relay sent a frame and kept the socket open, else the close code. */
async function outcome(client: RawClient): Promise<'admitted' | number> {
  cleanups.push(() => client.ws.terminate())
  return Promise.race([
    waitFor(() => client.messages.length > 0 && client.ws.readyState === client.ws.OPEN, 10_000, 'admitted')
      .then(() => sleep(200))
      .then((): Promise<'admitted' | number> => (client.ws.readyState === client.ws.OPEN ? Promise.resolve('admitted') : client.closed.then(({ code }) => code))),
    client.closed.then(({ code }) => code),
  ])
}

describe('the relay keeps the newest pass of each device in its own store', () => {
  it('an ended temporary pass superseding an older one stays in force after its pass/<id> is deleted and the relay restarts', async () => {
    const dataDir = tempDir()
    const relay = await startRelay({ dataDir, persistence: { mergeIntervalMs: 100 } })
    const alice = makeAccount()
    const car = createDeviceKeys()
    const member = createDeviceKeys()
    const registry = `${alice.account.accountId}.registry`
    const personal = alice.roomId()
    const memberPass = issueRelayPass(alice.account, member)
    const memberToken = (roomId: string) => createAccessToken({ rootPublicKey: alice.account.rootPublicKey, relayPass: memberPass, device: member, roomId })
    // A rental granted for a week, then ended early by the owner: the newer pass ends now.
    const now = Date.now()
    const week = issueRelayPass(alice.account, car, { rooms: [registry, personal], issuedAt: now - 60_000, until: now + 7 * 86_400_000 })
    const ended = issueRelayPass(alice.account, car, { rooms: [registry, personal], issuedAt: now, until: now })
    const carToken = (roomId: string) => createAccessToken({ rootPublicKey: alice.account.rootPublicKey, relayPass: week, device: car, roomId })

    const transports: Transport[] = []
    cleanups.push(() => Promise.all(transports.map((t) => t.close())))
    const transport = websocketTransport({ url: relay.url, token: memberToken, WebSocketPolyfill: NodeWebSocket })
    transports.push(transport)
    const room = sealedLog(registry)
    const attachment = transport.attach(room)
    await waitFor(() => attachment.status === 'synced', 5000, 'member synced')
    const statements = room.doc.getMap<Uint8Array>(PUBLIC_STATEMENTS_KEY)
    statements.set(passKey(car.deviceId), ended)
    await sleep(300)
    expect(await outcome(rawClient(roomUrl(relay, personal, carToken(personal))))).toBe(CloseCode.Forbidden)

    // A member (the car itself, before its end) deletes the newer pass from the public map.
    statements.delete(passKey(car.deviceId))
    await sleep(500)
    for (const t of transports.splice(0)) await t.close()
    await relay.close()

    const again = await startRelay({ dataDir })
    expect(await outcome(rawClient(roomUrl(again, personal, carToken(personal))))).toBe(CloseCode.Forbidden)
    expect(await outcome(rawClient(roomUrl(again, registry, carToken(registry))))).toBe(CloseCode.Forbidden)
    // The member whose pass was never superseded is still admitted.
    expect(await outcome(rawClient(roomUrl(again, personal, memberToken(personal))))).toBe('admitted')
  })

  it('an account that fell out of the bounded cache still refuses a superseded pass', async () => {
    const alice = makeAccount()
    const car = createDeviceKeys()
    const storage = await RelayStorage.open(memoryStore())
    const guard = new RegistryGuard(storage, () => {})
    const newer = issueRelayPass(alice.account, car, { rooms: 'all', issuedAt: 2_000 })
    expect(guard.learnPass(alice.account.accountId, alice.account.rootPublicKey, newer)).toBe(true)
    const grant = { accountId: alice.account.accountId, deviceId: car.deviceId, roomId: alice.roomId(), rootPublicKey: alice.account.rootPublicKey }
    await expect(guard.check({ ...grant, passIssuedAt: 1_000 })).rejects.toThrow(/superseded/)
    // Other accounts push alice's out of the cache; nothing in her registry room holds the pass.
    for (let i = 0; i < MAX_CACHED_ACCOUNTS + 10; i++) {
      const minted = createAccountKeys()
      await guard.check({ accountId: minted.accountId, deviceId: 'cd'.repeat(16), roomId: `${minted.accountId}.personal`, passIssuedAt: 1, rootPublicKey: minted.rootPublicKey })
    }
    await expect(guard.check({ ...grant, passIssuedAt: 1_000 })).rejects.toThrow(/superseded/)
    await guard.check({ ...grant, passIssuedAt: 2_000 })
  })
})
