/**
 * Issue 12, the abusive mix: a relay process (the CLI, so its memory is its own) serves 2,000
 * honest device connections (20 accounts × 10 devices × 10 rooms, each device from its own
 * address) while, on 127.0.0.1 at the same time, someone floods pairing rooms, floods and
 * overwrites awareness from a member device, replays captured tokens, holds slowloris upgrades,
 * opens a connection flood from one address and mints accounts. Honest devices lose no message
 * and keep syncing; the relay's peak RSS stays under the bound the README documents.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import * as decoding from 'lib0/decoding'
import { createAccessToken, createDeviceKeys, issueRelayPass, ready } from '../../src/crypto/index.js'
import { websocketTransport } from '../../src/adapters/websocket.js'
import type { Transport, TransportAttachment } from '../../src/adapters/transport.js'
import { CloseCode } from '../../src/relay/index.js'
import {
  awarenessFrame,
  fakeEnvelope,
  makeAccount,
  rawClient,
  relayCliProcess,
  roomUrl,
  sealedLog,
  updateFrame,
  waitFor,
  wsFrom,
  type RawClient,
  type RelayProcess,
} from './helpers.js'

/** The documented bound (README.md, "The relay"): peak RSS of the relay process under this mix. */
const RSS_BOUND_MIB = 256

beforeAll(async () => {
  await ready()
})

const cleanups: Array<() => unknown> = []
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn()
})

function from(address: string, url: string): RawClient {
  const client = rawClient(url, { headers: { 'x-forwarded-for': address } })
  cleanups.push(() => client.ws.terminate())
  return client
}

async function outcome(client: RawClient): Promise<'admitted' | number> {
  return Promise.race([
    waitFor(() => client.messages.length > 0, 20_000, 'first frame').then(() => 'admitted' as const),
    client.closed.then(({ code }) => code),
  ])
}

/** Client ids and clocks of the awareness states a raw client was sent. */
function seenAwareness(client: RawClient): Map<number, number> {
  const seen = new Map<number, number>()
  for (const message of client.messages) {
    const decoder = decoding.createDecoder(message)
    if (decoding.readVarUint(decoder) !== 1) continue
    const update = decoding.createDecoder(decoding.readVarUint8Array(decoder))
    const count = decoding.readVarUint(update)
    for (let i = 0; i < count; i++) {
      const id = decoding.readVarUint(update)
      const clock = decoding.readVarUint(update)
      decoding.readVarString(update)
      seen.set(id, Math.max(clock, seen.get(id) ?? 0))
    }
  }
  return seen
}

/** The relay CLI as its own process, stopped after the test. */
async function relayProcess(args: string[]): Promise<RelayProcess> {
  const relay = await relayCliProcess(args)
  cleanups.push(() => relay.stop())
  return relay
}

/** Peak resident memory of a process, in MiB (Linux). */
function peakRssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) / 1024
}

async function limitHits(port: number): Promise<Record<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
  const hits: Record<string, number> = {}
  for (const [, name, value] of text.matchAll(/contextsync_relay_limit_hits_total\{limit="(\w+)"\} (\d+)/g)) hits[name!] = Number(value)
  return hits
}

const ACCOUNTS = 20
const DEVICES = 10
const ROOMS = 10

describe('relay under an abusive mix (issue 12)', () => {
  it('2,000 honest connections keep syncing, losing nothing, while the relay is attacked; memory stays bounded', async () => {
    const owners = Array.from({ length: ACCOUNTS }, () => makeAccount())
    const dir = mkdtempSync(join(tmpdir(), 'contextsync-mix-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const accountsFile = join(dir, 'accounts.txt')
    writeFileSync(accountsFile, owners.map((o) => o.account.accountId).join('\n') + '\n')
    const relay = await relayProcess([
      '--port', '0', '--data', ':memory:', '--log-level', 'error',
      '--client-address-header', 'x-forwarded-for', '--upgrade-timeout', '5s', '--accounts', accountsFile,
    ])

    type Member = { name: string; roomId: string; room: ReturnType<typeof sealedLog>; attachment: TransportAttachment }
    const members: Member[] = []
    const issued: Array<{ roomId: string; token: string }> = []
    const transports: Transport[] = []
    cleanups.push(() => Promise.all(transports.map((t) => t.close())))
    owners.forEach((owner, a) => {
      const rooms = Array.from({ length: ROOMS }, (_, r) => owner.roomId(`scope-${r}`))
      for (let d = 0; d < DEVICES; d++) {
        const device = createDeviceKeys()
        const relayPass = issueRelayPass(owner.account, device)
        const transport = websocketTransport({
          url: relay.url,
          token: (roomId) => {
            const token = createAccessToken({ rootPublicKey: owner.account.rootPublicKey, relayPass, device, roomId })
            if (issued.length < 200) issued.push({ roomId, token })
            return token
          },
          WebSocketPolyfill: wsFrom(`10.0.${a}.${d + 1}`),
        })
        transports.push(transport)
        for (const roomId of rooms) {
          const room = sealedLog(roomId)
          members.push({ name: `a${a}/d${d}`, roomId, room, attachment: transport.attach(room) })
        }
      }
    })
    expect(members).toHaveLength(2000)
    await waitFor(() => members.every((m) => m.attachment.status === 'synced'), 90_000, 'all 2,000 synced')

    // The attacks, all at once, while every honest member writes its first envelope.
    const attacks: Array<Promise<unknown>> = []
    // Pairing-room flood from one address.
    const pairing = Array.from({ length: 250 }, () => from('203.0.113.1', roomUrl(relay.url, `pair.${randomBytes(16).toString('base64url')}`)))
    attacks.push(Promise.all(pairing.map(outcome)).then((r) => expect(r.filter((x) => x === 'admitted').length).toBeLessThanOrEqual(8)))
    // Connection flood from one address.
    const victim = owners[1]!
    const flood = Array.from({ length: 400 }, () => from('203.0.113.2', roomUrl(relay.url, victim.roomId('scope-0'), victim.token(victim.roomId('scope-0')))))
    attacks.push(Promise.all(flood.map(outcome)).then((r) => expect(r.filter((x) => x === 'admitted').length).toBeLessThanOrEqual(256)))
    // Replayed tokens of honest devices.
    const replays = issued.slice(0, 100).map(({ roomId, token }, i) => from(`203.0.113.3${i % 10}`, roomUrl(relay.url, roomId, token)))
    attacks.push(Promise.all(replays.map(outcome)).then((r) => expect(r).toEqual(Array(replays.length).fill(CloseCode.TokenReplayed))))
    // Slowloris: upgrades that never finish.
    const slow: Socket[] = Array.from({ length: 200 }, () => {
      const socket = connect(relay.port, '127.0.0.1').on('error', () => {})
      socket.write('GET /x HTTP/1.1\r\nHost: relay\r\nUpgrade: websocket\r\n')
      cleanups.push(() => socket.destroy())
      return socket
    })
    attacks.push(Promise.all(slow.map((s) => new Promise((resolve) => s.once('close', resolve)))))
    // Self-minted accounts (not on the operator's list) trying to store data.
    const minted = Array.from({ length: 200 }, (_, i) => {
      const who = makeAccount()
      const client = from(`203.0.113.4${i % 10}`, roomUrl(relay.url, who.roomId(), who.token(who.roomId())))
      client.opened.then(() => {
        const doc = new Y.Doc()
        doc.getArray<Uint8Array>('log').push([fakeEnvelope(`minted-${i}`, 60_000)])
        client.send(updateFrame(Y.encodeStateAsUpdate(doc)))
      }, () => {})
      return client
    })
    attacks.push(Promise.all(minted.map(outcome)).then((r) => expect(r).toEqual(Array(minted.length).fill(CloseCode.Forbidden))))
    // A member device of account 0 overwrites, removes and floods awareness in its rooms.
    const insider = owners[0]!
    const insiderDevice = createDeviceKeys()
    const insiderPass = issueRelayPass(insider.account, insiderDevice)
    const insiderRooms = Array.from({ length: ROOMS }, (_, r) => insider.roomId(`scope-${r}`))
    const insiders = insiderRooms.map((roomId) =>
      from('203.0.113.5', roomUrl(relay.url, roomId, createAccessToken({ rootPublicKey: insider.account.rootPublicKey, relayPass: insiderPass, device: insiderDevice, roomId }))),
    )
    attacks.push(
      (async () => {
        await Promise.all(insiders.map((c) => waitFor(() => seenAwareness(c).size >= DEVICES, 20_000, 'insider sees states')))
        for (const client of insiders) {
          const seen = [...seenAwareness(client)]
          client.send(awarenessFrame(seen.map(([clientId, clock]) => ({ clientId, clock: clock + 100, state: { evil: true } }))))
          client.send(awarenessFrame(seen.map(([clientId, clock]) => ({ clientId, clock: clock + 200, state: null }))))
          client.send(awarenessFrame(Array.from({ length: 500 }, (_, i) => ({ clientId: 900_000 + i, clock: 1, state: { flood: i } }))))
        }
      })(),
    )
    for (const member of members) member.room.log.push([fakeEnvelope(`${member.name}@${member.roomId}#1`, 96)])
    await Promise.all(attacks)

    // Keep syncing: a second round after the attacks.
    await waitFor(() => members.every((m) => m.room.log.length === DEVICES), 60_000, 'round 1 delivered')
    for (const member of members) member.room.log.push([fakeEnvelope(`${member.name}@${member.roomId}#2`, 96)])
    await waitFor(() => members.every((m) => m.room.log.length === 2 * DEVICES), 60_000, 'round 2 delivered')
    const decoder = new TextDecoder()
    for (const m of members) {
      // Exactly the room's twenty writes, each once: none lost, none duplicated, none from elsewhere.
      const account = m.name.split('/')[0]!
      const want = Array.from({ length: DEVICES }, (_, d) => [1, 2].map((round) => `${account}/d${d}@${m.roomId}#${round}`)).flat()
      const got = m.room.log.toArray().map((entry) => want.find((w) => decoder.decode(entry).startsWith(w)))
      expect(got.sort(), m.name).toEqual(want.sort())
    }
    // No honest awareness state was overwritten or removed by the insider.
    for (const m of members.filter((x) => insiderRooms.includes(x.roomId))) {
      const states = [...m.room.awareness.getStates().values()]
      expect(states.some((s) => (s as { evil?: boolean }).evil)).toBe(false)
      expect(states.some((s) => (s as { flood?: number }).flood !== undefined)).toBe(false)
    }
    expect(members.every((m) => m.attachment.status === 'synced')).toBe(true)

    const hits = await limitHits(relay.port)
    expect(hits.pairingRoomsPerAddress).toBeGreaterThanOrEqual(242)
    expect(hits.connectionsPerAddress).toBeGreaterThanOrEqual(144)
    expect(hits.upgradeTimeout).toBeGreaterThanOrEqual(200)
    expect(hits.account).toBe(200)
    // Each overwrite and removal the insider sent; honest clients echoing states are not counted.
    expect(hits.awarenessForeign).toBe(2 * ROOMS * DEVICES)
    expect(hits.awarenessStates).toBe(ROOMS)
    const peak = peakRssMiB(relay.child.pid!)
    console.log(`abusive mix: relay peak RSS ${peak.toFixed(0)} MiB (bound ${RSS_BOUND_MIB} MiB); limit hits ${JSON.stringify(hits)}`)
    expect(peak).toBeLessThan(RSS_BOUND_MIB)
  }, 240_000)
})
