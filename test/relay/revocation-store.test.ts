/**
 * Issue 12, finding 6: the relay keeps the revocations it verified in its own store. A member
 * deleting `revoke/<id>` from the registry room's public map — or a relay restart after that —
 * does not let the revoked device back in.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createAccessToken, createDeviceKeys, issueRelayPass, ready, signRevocation } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import type { Transport } from '../../src/adapters/transport.js'
import { PUBLIC_STATEMENTS_KEY, revocationKey } from '../../src/crdt/registry.js'
import { CloseCode, memoryBackend, sqliteBackend } from '../../src/relay/index.js'
import { RelayStorage } from '../../src/relay/accounting.js'
import { memoryStore } from '../../src/relay/persistence.js'
import { MAX_CACHED_ACCOUNTS, RegistryGuard } from '../../src/relay/registry-guard.js'
import { createAccountKeys } from '../../src/crypto/index.js'
import {
  closeRelays,
  containsBytes,
  makeAccount,
  NodeWebSocket,
  rawClient,
  roomUrl,
  sealedLog,
  startRelay,
  waitFor,
  type RawClient,
  type TestAccount,
} from './helpers.js'

beforeAll(async () => {
  await ready()
})

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
  await closeRelays()
})

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'contextsync-revocations-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** Another device of `who`'s account. */
function otherDevice(who: TestAccount) {
  const device = createDeviceKeys()
  const relayPass = issueRelayPass(who.account, device)
  return {
    device,
    token: (roomId: string) => createAccessToken({ rootPublicKey: who.account.rootPublicKey, relayPass, device, roomId }),
  }
}

/** `'admitted'` once the relay sent a frame, else the close code. */
async function outcome(client: RawClient): Promise<'admitted' | number> {
  cleanups.push(() => client.ws.terminate())
  return Promise.race([
    waitFor(() => client.messages.length > 0 && client.ws.readyState === client.ws.OPEN, 10_000, 'admitted').then(
      () => new Promise<'admitted' | number>((resolve) => {
        // A refusal may follow a notice frame: give the close a moment to arrive.
        const timer = setTimeout(() => resolve('admitted'), 200)
        void client.closed.then(({ code }) => {
          clearTimeout(timer)
          resolve(code)
        })
      }),
    ),
    client.closed.then(({ code }) => code),
  ])
}

describe('finding 6: relay-side revocations are kept in the relay’s own store', () => {
  it('a revoked device stays refused after its revocation is deleted from the public map and the relay restarts', async () => {
    const dataDir = tempDir()
    const relay = await startRelay({ dataDir, persistence: { mergeIntervalMs: 100 } })
    const alice = makeAccount()
    const car = otherDevice(alice)
    const member = otherDevice(alice)
    const registry = `${alice.account.accountId}.registry`
    const personal = alice.roomId()

    const carLive = rawClient(roomUrl(relay, personal, car.token(personal)))
    expect(await outcome(carLive)).toBe('admitted')

    // The owner publishes the root-signed revocation in the registry room's public map.
    const transports: Transport[] = []
    const attach = (token: (roomId: string) => string) => {
      const transport = websocketTransport({ url: relay.url, token, WebSocketPolyfill: NodeWebSocket })
      transports.push(transport)
      const room = sealedLog(registry)
      const attachment = transport.attach(room)
      return { room, attachment }
    }
    cleanups.push(() => Promise.all(transports.map((t) => t.close())))
    const owner = attach(alice.token)
    await waitFor(() => owner.attachment.status === 'synced', 5000, 'owner synced')
    const statement = signRevocation(alice.account, { deviceId: car.device.deviceId, revokedAt: Date.now(), cutoffs: new Map() })
    owner.room.doc.getMap<Uint8Array>(PUBLIC_STATEMENTS_KEY).set(revocationKey(car.device.deviceId), statement)
    expect((await carLive.closed).code).toBe(CloseCode.Forbidden)

    // A member deletes it from the public map; the owner's replica sees the deletion arrive.
    const deleter = attach(member.token)
    await waitFor(() => deleter.attachment.status === 'synced', 5000, 'member synced')
    await waitFor(() => deleter.room.doc.getMap(PUBLIC_STATEMENTS_KEY).has(revocationKey(car.device.deviceId)), 5000, 'member sees it')
    deleter.room.doc.getMap(PUBLIC_STATEMENTS_KEY).delete(revocationKey(car.device.deviceId))
    await waitFor(() => !owner.room.doc.getMap(PUBLIC_STATEMENTS_KEY).has(revocationKey(car.device.deviceId)), 5000, 'deletion relayed')
    expect(await outcome(rawClient(roomUrl(relay, personal, car.token(personal))))).toBe(CloseCode.Forbidden)

    // Restart from the same data folder: the registry room no longer holds the revocation.
    for (const t of transports.splice(0)) t.close()
    await relay.close()
    const again = await startRelay({ dataDir })
    expect(await outcome(rawClient(roomUrl(again, personal, car.token(personal))))).toBe(CloseCode.Forbidden)
    // On its registry connection the device is first handed the statement, so it learns why.
    const back = rawClient(roomUrl(again, registry, car.token(registry)))
    expect(await outcome(back)).toBe(CloseCode.Forbidden)
    expect(back.messages.some((m) => containsBytes(m, statement))).toBe(true)
    // The registry room itself no longer has it: only the relay's own store does.
    const fresh = rawClient(roomUrl(again, registry, member.token(registry)))
    expect(await outcome(fresh)).toBe('admitted')
    expect(fresh.messages.some((m) => containsBytes(m, statement))).toBe(false)
    // Others of the account are still admitted.
    expect(await outcome(rawClient(roomUrl(again, personal, member.token(personal))))).toBe('admitted')
  })

  it('both backends keep revocations; SQLite across a reopen, and a forged row is ignored', async () => {
    const alice = makeAccount()
    const statement = signRevocation(alice.account, { deviceId: 'ab'.repeat(16), revokedAt: 1, cutoffs: new Map() })
    const row = { accountId: alice.account.accountId, deviceId: 'ab'.repeat(16), rootPublicKey: alice.account.rootPublicKey, statement }
    const memory = memoryBackend()
    memory.saveRevocation(row)
    memory.saveRevocation(row)
    expect([...memory.revocations()]).toHaveLength(1)

    const dir = tempDir()
    const first = sqliteBackend(dir)
    first.saveRevocation(row)
    // A row naming another account under this root proves nothing; the relay skips it on load.
    const mallory = makeAccount()
    first.saveRevocation({ ...row, accountId: mallory.account.accountId, deviceId: mallory.device.deviceId })
    first.close()
    const second = sqliteBackend(dir)
    const kept = [...second.revocations()]
    second.close()
    expect(kept.map((r) => r.accountId).sort()).toEqual([alice.account.accountId, mallory.account.accountId].sort())
    expect(Buffer.from(kept.find((r) => r.accountId === alice.account.accountId)!.statement)).toEqual(Buffer.from(statement))

    const relay = await startRelay({ dataDir: dir })
    expect(await outcome(rawClient(roomUrl(relay, mallory.roomId(), mallory.token(mallory.roomId()))))).toBe('admitted')
  })

  it('holds a bounded number of accounts without revocations, and never drops a revoked one', async () => {
    const alice = makeAccount()
    const storage = await RelayStorage.open(memoryStore())
    const statement = signRevocation(alice.account, { deviceId: alice.device.deviceId, revokedAt: 1, cutoffs: new Map() })
    await storage.saveRevocation({ accountId: alice.account.accountId, deviceId: alice.device.deviceId, rootPublicKey: alice.account.rootPublicKey, statement })
    // Kept revocations count against the account's stored bytes.
    expect(storage.sizeOfAccount(alice.account.accountId)).toBeGreaterThanOrEqual(statement.length)
    const guard = new RegistryGuard(storage, () => {})
    const grant = (root: Uint8Array, accountId: string, deviceId: string) => ({ accountId, deviceId, roomId: `${accountId}.personal`, passIssuedAt: 1, rootPublicKey: root })
    for (let i = 0; i < MAX_CACHED_ACCOUNTS + 500; i++) {
      const minted = createAccountKeys()
      await guard.check(grant(minted.rootPublicKey, minted.accountId, 'cd'.repeat(16)))
    }
    expect(guard.accountCount).toBeLessThanOrEqual(MAX_CACHED_ACCOUNTS + 1)
    await expect(guard.check(grant(alice.account.rootPublicKey, alice.account.accountId, alice.device.deviceId))).rejects.toThrow(/revoked/)
  })
})
