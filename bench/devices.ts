/**
 * Devices benchmark: revocation and pairing through an embedded relay on loopback, each
 * figure next to its baseline in the same run.
 *
 * Revocation — an account with the 6 built-in scopes (personal, health, payments, location, work
 * and the device-only `local`) and 10 devices: 2 owners (phone, PC) and 8 members paired with
 * `devices.invite` / `ContextSync.join` holding various scopes. The member phone (all 5 synced
 * scopes) is revoked, so 5 scope epochs and the registry's move on. Measured from the call to
 * `owner.devices.revoke(id)`:
 * - keys: every remaining device knows the new epoch of every affected scope it holds and can
 *   seal under it (its keyring's current epoch moved past the one before — read through a cast,
 *   the keyring is private — and `replica.canSeal()` is true);
 * - written: each remaining device, as soon as its keys are there, writes one memory into
 *   `personal`, and its own newest envelope in the sealed log is checked (`parseEnvelope`) to
 *   carry the new epoch — the time is when the last device's write resolved.
 * Baselines in the same account: (a) a no-op registry write — the owner re-grants `personal` to
 * a member that already holds it (one signed grant plus a reissued relay pass), until every other
 * device has ingested that grant; (b) the owner's plain `compactNow()` of the 5 affected scopes
 * (the local re-sealing that `revoke` also does).
 * Registry growth per rotation: `Y.encodeStateAsUpdate(owner.replica('@registry').outer)` after a
 * registry `compactNow()` before the revocation, vs right after it and after compacting again.
 *
 * Join — time from `owner.devices.invite()` until the first memory (written by the owner before)
 * is readable on the new member device, through the relay; baseline: `ContextSync.open` of a
 * second owner device of the same account (it needs no pairing) until it has the same memory.
 *
 * Every device and the relay share this one process (and its CPU), so work that real devices do
 * in parallel — each verifying the new registry statements — is serialised here: the
 * "all 9 remaining devices" times are an upper bound; the first device's time and the count of
 * Ed25519 verifications (libsodium's `crypto_sign_verify_detached`, counted with a wrapper over
 * all devices and the relay) show how the work divides.
 *
 * Env: BENCH_DEVICES_RUNS (7 revocation accounts), BENCH_DEVICES_JOINS (11),
 * BENCH_DEVICES_DEBUG=1 (per-device times and the revocation windows in monotonic µs, to cut a
 * `--cpu-prof` profile).
 */
import { cpus, loadavg } from 'node:os'
import libsodium from 'libsodium-wrappers'
import WebSocket from 'ws'
import * as Y from 'yjs'
import { memoryStorage } from '../src/adapters/memory-storage.js'
import type { Transport } from '../src/adapters/transport.js'
import { websocketTransport } from '../src/adapters/websocket.js'
import { grantKey } from '../src/crdt/registry.js'
import { sealedLog } from '../src/crdt/sealed-log.js'
import { EnvelopeType, parseEnvelope, type DeviceKeyring } from '../src/crypto/index.js'
import { createAccount } from '../src/facade/account.js'
import { ContextSync } from '../src/facade/context-sync.js'
import type { DeviceKind } from '../src/facade/builtin-scopes.js'
import { createRelay, silentLogger, type Relay } from '../src/relay/index.js'
import { fmt, median, printTable } from './table.js'

const RUNS = Number(process.env.BENCH_DEVICES_RUNS ?? 7)
const JOINS = Number(process.env.BENCH_DEVICES_JOINS ?? 11)
const WS = WebSocket as unknown as typeof globalThis.WebSocket
const SYNCED_SCOPES = ['personal', 'health', 'payments', 'location', 'work'] as const

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

async function until(predicate: () => boolean, timeoutMs: number, what: string, everyMs = 2): Promise<void> {
  const start = performance.now()
  while (!predicate()) {
    if (performance.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** Ed25519 verifications so far in this process (see {@link countVerifications}). */
let verifications = 0

/** Wrap libsodium's detached verify with a counter; returns the restore function. */
function countVerifications(): () => void {
  const original = libsodium.crypto_sign_verify_detached
  libsodium.crypto_sign_verify_detached = ((...args: Parameters<typeof original>) => {
    verifications++
    return original(...args)
  }) as typeof original
  return () => {
    libsodium.crypto_sign_verify_detached = original
  }
}

/** The device's keyring (private in ContextSync; read-only use here). */
function keyringOf(dev: ContextSync): DeviceKeyring {
  return (dev as unknown as { keyring: DeviceKeyring }).keyring
}

class Fleet {
  readonly transports: Transport[] = []
  readonly devices: ContextSync[] = []
  constructor(readonly relay: Relay) {}

  transport(): Transport {
    const t = websocketTransport({ url: this.relay.url, WebSocketPolyfill: WS, maxBackoffTime: 250 })
    this.transports.push(t)
    return t
  }

  track(dev: ContextSync): ContextSync {
    this.devices.push(dev)
    return dev
  }

  async close(): Promise<void> {
    await Promise.all(this.devices.map((d) => d.close().catch(() => undefined)))
    for (const t of this.transports) t.close()
    this.devices.length = 0
    this.transports.length = 0
  }
}

/** Members paired into each revocation account: kind + extra scopes beyond the kind's defaults. */
const MEMBERS: Array<{ kind: DeviceKind; scopes: string[] }> = [
  { kind: 'phone', scopes: [] }, // personal, health, payments, location, work — the one revoked
  { kind: 'glasses', scopes: [] }, // personal, health, location
  { kind: 'glasses', scopes: ['work'] },
  { kind: 'car', scopes: [] }, // personal, location
  { kind: 'car', scopes: ['work'] },
  { kind: 'pc', scopes: [] }, // personal, work
  { kind: 'pc', scopes: ['location'] },
  { kind: 'other', scopes: ['payments'] }, // personal, payments
]

interface RevocationResult {
  setupMs: number
  noopWriteMs: number
  noopVerifies: number
  revokeVerifies: number
  firstMemberKeysMs: number
  compactMs: number
  revokeCallMs: number
  keysMs: number
  writtenMs: number
  registryBefore: number
  registryRaw: number
  registryCompacted: number
  rotatedScopes: number
  lockboxesExpected: number
}

async function revocationRun(fleet: Fleet): Promise<RevocationResult> {
  const setupStart = performance.now()
  const account = await createAccount()
  const owner = fleet.track(await ContextSync.open({ account, device: { kind: 'phone', name: 'Owner phone' }, storage: memoryStorage(), transports: [fleet.transport()] }))
  fleet.track(await ContextSync.open({ account, device: { kind: 'pc', name: 'Owner PC' }, storage: memoryStorage(), transports: [fleet.transport()] }))
  const members: ContextSync[] = []
  for (const [i, spec] of MEMBERS.entries()) {
    const invite = await owner.devices.invite({ kind: spec.kind, name: `Member ${i}` })
    const member = fleet.track(
      await ContextSync.join({ invite: invite.code, device: { kind: spec.kind, name: `Member ${i}` }, storage: memoryStorage(), transports: [fleet.transport()], timeoutMs: 30_000 }),
    )
    // Scopes beyond the kind's policy are granted to the one device (an invite names only the policy's).
    for (const scope of spec.scopes) await owner.scopes.grant(scope, member.deviceId)
    members.push(member)
  }
  const all = [...fleet.devices]
  // Some content in every synced scope, and every device in step before measuring.
  const seeded = await Promise.all(SYNCED_SCOPES.map((scope) => owner.memory.remember({ text: `seed in ${scope}`, scope })))
  await until(
    () =>
      all.every((d) => d.devices.list().length === all.length) &&
      all.every((d) => seeded.every((m) => !d.scopes.available().includes(m.scope) || d.memory.get(m.id) !== undefined)),
    30_000,
    'every device to see all devices and the seed memories',
  )
  const setupMs = performance.now() - setupStart
  const target = members[0]!
  const remaining = all.filter((d) => d !== target)
  const affected = SYNCED_SCOPES.filter((s) => target.scopes.available().includes(s))

  // Baseline (a): a no-op registry write (re-grant of a held scope) until every other device ingested it.
  const regrantee = members[1]!
  const key = grantKey('personal', regrantee.deviceId)
  const seen = new Set<ContextSync>()
  const offs = all
    .filter((d) => d !== owner)
    .map((d) => d.registry.events.on('change', (e) => e.keys.includes(key) && seen.add(d)))
  let verifies0 = verifications
  let start = performance.now()
  await owner.scopes.grant('personal', regrantee.deviceId)
  await until(() => seen.size === all.length - 1, 15_000, 'the re-grant to reach every device', 1)
  const noopWriteMs = performance.now() - start
  const noopVerifies = verifications - verifies0
  offs.forEach((off) => off())

  // Baseline (b): the owner compacting the affected scopes (no rotation).
  start = performance.now()
  for (const scope of affected) await owner.replica(scope)!.compactNow()
  const compactMs = performance.now() - start

  // Registry size before, compacted.
  const registry = owner.replica('@registry')!
  await registry.compactNow()
  await sleep(50)
  const registryBefore = Y.encodeStateAsUpdate(registry.outer).length

  // Subject: revoke, until every remaining device holds the new keys, then writes under them.
  const before = new Map(remaining.map((d) => [d, new Map(affected.map((s) => [s, keyringOf(d).currentEpoch(s)]))]))
  const held = (d: ContextSync) => affected.filter((s) => d.scopes.available().includes(s))
  const keysReady = (d: ContextSync) =>
    held(d).every((s) => keyringOf(d).currentEpoch(s) > before.get(d)!.get(s)! && d.replica(s)?.canSeal() === true)
  const keysAt = new Map<ContextSync, number>()
  const writtenAt = new Map<ContextSync, number>()
  const failures: string[] = []
  const personalEpochBefore = new Map(remaining.map((d) => [d, before.get(d)!.get('personal')!]))
  const writeUnderNewEpoch = async (d: ContextSync) => {
    await d.memory.remember({ text: 'written after the revocation', scope: 'personal' })
    writtenAt.set(d, performance.now())
    const log = sealedLog(d.replica('personal')!.outer).toArray()
    for (let i = log.length - 1; i >= 0; i--) {
      const parsed = parseEnvelope(log[i])
      if (!parsed.ok || parsed.value.senderId !== d.deviceId || parsed.value.type !== EnvelopeType.Update) continue
      if (parsed.value.epoch <= personalEpochBefore.get(d)!) failures.push(`${d.name} wrote under epoch ${parsed.value.epoch}`)
      return
    }
    failures.push(`${d.name}: own envelope not found`)
  }
  const check = () => {
    for (const d of remaining) {
      if (keysAt.has(d) || !keysReady(d)) continue
      keysAt.set(d, performance.now())
      void writeUnderNewEpoch(d).catch((error: unknown) => failures.push(`${d.name}: ${error instanceof Error ? error.message : String(error)}`))
    }
  }
  const offChange = remaining.map((d) => d.registry.events.on('change', () => queueMicrotask(check)))
  verifies0 = verifications
  start = performance.now()
  const windowStart = process.hrtime.bigint() / 1000n
  const revoking = owner.devices.revoke(target.deviceId)
  check()
  await revoking
  const revokeCallMs = performance.now() - start
  check()
  await until(
    () => {
      check()
      return writtenAt.size === remaining.length || failures.length > 0
    },
    30_000,
    'every remaining device to write under the new epoch',
    1,
  )
  const revokeVerifies = verifications - verifies0
  offChange.forEach((off) => off())
  if (failures.length > 0) throw new Error(`revocation bench: ${failures.join('; ')}`)
  if (process.env.BENCH_DEVICES_DEBUG) {
    // Monotonic µs, comparable with the timestamps of a --cpu-prof profile.
    console.log(`  revocation window (µs): ${windowStart} ${process.hrtime.bigint() / 1000n}`)
    const rejected = remaining.map((d) => JSON.stringify(d.rejectionCounts())).filter((r) => r !== '{}')
    console.log(`  rejections on remaining devices: ${rejected.length ? rejected.join(' ') : 'none'}`)
    for (const d of remaining) {
      console.log(`  ${d.name.padEnd(12)} keys +${fmt(keysAt.get(d)! - start, 'ms')}  written +${fmt(writtenAt.get(d)! - start, 'ms')}`)
    }
  }
  const keysMs = Math.max(...keysAt.values()) - start
  const firstMemberKeysMs = Math.min(...members.filter((m) => m !== target).map((m) => keysAt.get(m)!)) - start
  const writtenMs = Math.max(...writtenAt.values()) - start

  const registryRaw = Y.encodeStateAsUpdate(registry.outer).length
  await registry.compactNow()
  const registryCompacted = Y.encodeStateAsUpdate(registry.outer).length
  // Lockboxes the rotation needs: per affected room (and the registry), one per remaining member holding it.
  const remainingMembers = members.filter((m) => m !== target)
  const lockboxesExpected =
    remainingMembers.length + affected.reduce((n, s) => n + remainingMembers.filter((m) => m.scopes.available().includes(s)).length, 0)
  await fleet.close()
  return {
    setupMs,
    noopWriteMs,
    noopVerifies,
    revokeVerifies,
    firstMemberKeysMs,
    compactMs,
    revokeCallMs,
    keysMs,
    writtenMs,
    registryBefore,
    registryRaw,
    registryCompacted,
    rotatedScopes: affected.length,
    lockboxesExpected,
  }
}

interface JoinResult {
  openMs: number
  inviteMs: number
  joinedMs: number
  firstMemoryMs: number
}

async function hasMemory(dev: ContextSync, id: string, timeoutMs: number): Promise<void> {
  if (dev.memory.get(id)) return
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`timed out after ${timeoutMs} ms waiting for the first memory`))
    }, timeoutMs)
    const off = dev.memory.on('change', () => {
      if (!dev.memory.get(id)) return
      clearTimeout(timer)
      off()
      resolve()
    })
  })
}

async function joinRun(fleet: Fleet, run: number): Promise<JoinResult> {
  const account = await createAccount()
  const owner = fleet.track(await ContextSync.open({ account, device: { kind: 'phone', name: 'Owner phone' }, storage: memoryStorage(), transports: [fleet.transport()] }))
  const first = await owner.memory.remember({ text: 'the first memory', kind: 'fact' })
  await owner.flush()
  await sleep(50)

  const baseline = async () => {
    const start = performance.now()
    const second = fleet.track(await ContextSync.open({ account, device: { kind: 'pc', name: 'Second owner' }, storage: memoryStorage(), transports: [fleet.transport()] }))
    await hasMemory(second, first.id, 20_000)
    return performance.now() - start
  }
  const subject = async () => {
    const start = performance.now()
    const invite = await owner.devices.invite({ kind: 'car', name: 'New car' })
    const inviteMs = performance.now() - start
    const car = fleet.track(await ContextSync.join({ invite: invite.code, device: { kind: 'car', name: 'New car' }, storage: memoryStorage(), transports: [fleet.transport()], timeoutMs: 20_000 }))
    const joinedMs = performance.now() - start
    await hasMemory(car, first.id, 20_000)
    return { inviteMs, joinedMs, firstMemoryMs: performance.now() - start }
  }
  // Alternate the order run by run so neither side always runs on a warmer account.
  let openMs: number
  let joined: Awaited<ReturnType<typeof subject>>
  if (run % 2 === 0) {
    openMs = await baseline()
    joined = await subject()
  } else {
    joined = await subject()
    openMs = await baseline()
  }
  await fleet.close()
  return { openMs, ...joined }
}

/** Run the devices benchmark and print its tables. */
export async function benchDevices(): Promise<void> {
  console.log(`\ndevices suite: load average ${loadavg()[0]!.toFixed(2)} on ${cpus().length} cores at start; all 10 devices and the relay share this one process`)
  const relay = await createRelay({ host: '127.0.0.1', port: 0, logger: silentLogger, persistence: { mergeIntervalMs: 100 } })
  const fleet = new Fleet(relay)
  const restore = countVerifications()
  try {
    const revocations: RevocationResult[] = []
    for (let r = 0; r < RUNS; r++) revocations.push(await revocationRun(fleet))
    const m = (f: (x: RevocationResult) => number) => median(revocations.map(f))
    const runs = (f: (x: RevocationResult) => number) => revocations.map((x) => fmt(f(x), 'ms')).join(' / ')
    const base = m((x) => x.noopWriteMs)
    const row = (name: string, f: (x: RevocationResult) => number, verifies = ''): string[] => [name, fmt(m(f), 'ms'), runs(f), fmt(m(f) / base, '×'), verifies]
    const x0 = revocations[0]!
    printTable(
      `Revocation of a member holding ${x0.rotatedScopes} scopes in an account of 10 devices (2 owners, 8 members; 6 scopes incl. local) through the relay — median of ${RUNS} accounts (setup ${fmt(m((x) => x.setupMs) / 1000, 's')} each)`,
      ['measure', 'median', 'runs', 'vs no-op registry write', 'Ed25519 verifies (all devices)'],
      [
        row('baseline: no-op registry write (re-grant) → all 9 other devices have it', (x) => x.noopWriteMs, String(m((x) => x.noopVerifies))),
        row(`baseline: owner compactNow() of the ${x0.rotatedScopes} scopes`, (x) => x.compactMs),
        row('revoke() call on the owner (sign, lockboxes, re-seal)', (x) => x.revokeCallMs),
        row('revoke → first remaining member holds the new epoch keys', (x) => x.firstMemberKeysMs),
        row('revoke → all 9 remaining devices hold the new epoch keys', (x) => x.keysMs),
        row('revoke → all 9 remaining devices wrote under the new epoch', (x) => x.writtenMs, String(m((x) => x.revokeVerifies))),
      ],
    )
    printTable(
      `Registry growth per rotation (${x0.rotatedScopes} scopes + registry move to a new epoch → ${x0.lockboxesExpected} lockboxes for the 7 remaining members); encodeStateAsUpdate of the owner's registry outer doc (sealed log + public statements)`,
      ['measure', 'median', 'runs', 'vs before'],
      [
        ['registry before (compacted)', fmt(m((x) => x.registryBefore) / 1024, 'KiB'), revocations.map((x) => fmt(x.registryBefore / 1024, 'KiB')).join(' / '), '1.00 ×'],
        [
          'growth right after revoke',
          `+${fmt(m((x) => x.registryRaw - x.registryBefore) / 1024, 'KiB')}`,
          revocations.map((x) => `+${fmt((x.registryRaw - x.registryBefore) / 1024, 'KiB')}`).join(' / '),
          fmt(m((x) => x.registryRaw / x.registryBefore), '×'),
        ],
        [
          'growth after compacting the registry',
          `+${fmt(m((x) => x.registryCompacted - x.registryBefore) / 1024, 'KiB')}`,
          revocations.map((x) => `+${fmt((x.registryCompacted - x.registryBefore) / 1024, 'KiB')}`).join(' / '),
          fmt(m((x) => x.registryCompacted / x.registryBefore), '×'),
        ],
        [
          `compacted growth ÷ ${x0.lockboxesExpected} lockboxes (also holds the revocation + epoch starts)`,
          fmt(m((x) => (x.registryCompacted - x.registryBefore) / x.lockboxesExpected), 'B'),
          '',
          '',
        ],
      ],
    )

    const joins: JoinResult[] = []
    for (let r = 0; r < JOINS; r++) joins.push(await joinRun(fleet, r))
    const j = (f: (x: JoinResult) => number) => median(joins.map(f))
    const jruns = (f: (x: JoinResult) => number) => joins.map((x) => fmt(f(x), '')).join(' / ')
    const jbase = j((x) => x.openMs)
    printTable(
      `Join through the relay: median of ${JOINS} (fresh account each; runs in ms)`,
      ['measure', 'median', 'runs', 'vs owner open'],
      [
        ['baseline: ContextSync.open of a 2nd owner → has the memory', fmt(jbase, 'ms'), jruns((x) => x.openMs), '1.00 ×'],
        ['invite() resolved', fmt(j((x) => x.inviteMs), 'ms'), jruns((x) => x.inviteMs), fmt(j((x) => x.inviteMs) / jbase, '×')],
        ['invite → ContextSync.join resolved', fmt(j((x) => x.joinedMs), 'ms'), jruns((x) => x.joinedMs), fmt(j((x) => x.joinedMs) / jbase, '×')],
        ['invite → first memory on the new device', fmt(j((x) => x.firstMemoryMs), 'ms'), jruns((x) => x.firstMemoryMs), fmt(j((x) => x.firstMemoryMs) / jbase, '×')],
      ],
    )
  } finally {
    restore()
    await fleet.close()
    await relay.close()
  }
}
