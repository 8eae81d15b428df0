/**
 * The checks run after every campaign run (after heal, settle and waiting for repairs). What
 * each requires is defined in `model.ts`; each failure names its check, and the runner adds the
 * seed.
 *
 * 1. `converge` — honest (never revoked) devices hold equal inner state in every scope they both
 *    hold (and equal registry statements), and an open replica for every scope they hold.
 * 2. `acknowledged` — every required write is present on every honest device holding its scope.
 * 3. `forgotten` — no forgotten marker is in any honest device's inner docs, live sealed logs or
 *    store (decrypted sealed-log chunks, opened checkpoints, raw bytes), nor in the relay's docs.
 *    Revoked devices are left out: they keep what they already had (THREAT_MODEL.md).
 * 4. `revoked-decrypts` — no removed device can open, with any key it ever held, an envelope
 *    its sender sealed after knowing of the removal, nor any envelope carrying a marker written
 *    after the removal (model "Post-removal"); nor has it applied such a marker.
 *
 * Plus `stalled-write` (a write of an honest device never settled after the heal) and `error`
 * (the run itself broke: a device did not reopen, an owner action hung).
 *
 * @module
 */
import * as Y from 'yjs'
import type { Replica } from '../../src/sync/replica.js'
import { memoriesMap } from '../../src/crdt/memory.js'
import { statementsMap } from '../../src/crdt/registry.js'
import { REGISTRY_SCOPE } from '../../src/crypto/index.js'
import { innerState } from '../helpers/devices.js'
import { contentOf, describe, envelopesInDoc, readStore, type FoundEnvelope, type KeySource } from './inspect.js'
import { integrated, markersIn, REGISTRY, type Removal } from './model.js'
import { signature } from './relay-adversary.js'
import { keyringOf, SYNCED_SCOPES, type SimDevice, type World } from './world.js'

/** The name of a check. */
export type CheckName = 'converge' | 'acknowledged' | 'forgotten' | 'revoked-decrypts' | 'stalled-write' | 'error'

/** One failed check. */
export interface Failure {
  check: CheckName
  message: string
}

/** At most this many messages per check and seed; the rest are counted. */
const MAX_MESSAGES = 6

type Running = SimDevice & { dev: NonNullable<SimDevice['dev']> }

function honestRunning(world: World): Running[] {
  return world.running().filter((d) => !world.model.revoked(d.name))
}

/** Synced scopes a device holds now (its registry's view). */
function heldSynced(device: Running): string[] {
  const held = device.dev.scopes.available()
  return SYNCED_SCOPES.filter((s) => held.includes(s))
}

/** JSON with object keys sorted, so equal states print equal whatever the map insertion order. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v instanceof Uint8Array) return Buffer.from(v).toString('hex')
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
    }
    return v
  })
}

/** The first path where two JSON-like values differ (for readable failure messages). */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (canonical(a) === canonical(b)) return undefined
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()
    for (const key of keys) {
      const inner = firstDifference((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], `${path}/${key}`)
      if (inner !== undefined) return inner
    }
  }
  const show = (v: unknown) => (v === undefined ? 'absent' : canonical(v).slice(0, 120))
  return `${path || '/'}: ${show(a)} vs ${show(b)}`
}

function capped(check: CheckName, messages: string[]): Failure[] {
  const out = messages.slice(0, MAX_MESSAGES).map((message) => ({ check, message }))
  if (messages.length > MAX_MESSAGES) out.push({ check, message: `… and ${messages.length - MAX_MESSAGES} more` })
  return out
}

/** Check 1: honest devices converge. */
export function checkConvergence(world: World): Failure[] {
  const messages: string[] = []
  const devices = honestRunning(world)
  for (const device of devices) {
    for (const scope of heldSynced(device)) {
      if (!device.dev.replica(scope)) messages.push(`${device.name} holds ${scope} but has no open replica of it (its keys never arrived?)`)
    }
  }
  for (let i = 0; i < devices.length; i++) {
    for (let j = i + 1; j < devices.length; j++) {
      const a = devices[i]!
      const b = devices[j]!
      const shared = heldSynced(a).filter((s) => heldSynced(b).includes(s) && a.dev.replica(s) && b.dev.replica(s))
      for (const scope of shared) {
        const diff = firstDifference(innerState(a.dev, [scope]), innerState(b.dev, [scope]))
        if (diff) messages.push(`${a.name} and ${b.name} differ in ${scope}: ${diff} — ${a.name}${diagnose(a.dev.replica(scope)!)}, ${b.name}${diagnose(b.dev.replica(scope)!)}`)
      }
      const diff = firstDifference(registryState(a), registryState(b))
      if (diff) messages.push(`${a.name} and ${b.name} differ in the registry: ${diff}`)
    }
  }
  return capped('converge', messages)
}

function registryState(device: Running): Record<string, string> {
  const replica = device.dev.replica(REGISTRY_SCOPE)
  const out: Record<string, string> = {}
  if (!replica) return out
  for (const [key, bytes] of statementsMap(replica.inner).entries()) out[key] = bytes instanceof Uint8Array ? Buffer.from(bytes).toString('hex') : String(bytes)
  return out
}

/** Check 2: every required write is present on every honest device holding its scope. */
export function checkAcknowledged(world: World): Failure[] {
  const { model } = world
  const messages: string[] = []
  const devices = honestRunning(world)
  const holders = (scope: string, writer: string) =>
    devices.filter((d) => (scope === 'local' ? d.name === writer : heldSynced(d).includes(scope)) && d.dev.replica(scope))
  const checkedMemories = new Set<string>()
  for (const write of model.writes) {
    if (!model.required(write)) continue
    if (write.memoryId !== undefined && write.kind !== 'update') {
      // A memory: it must be there, showing a text that no required write was issued after seeing.
      const id = write.memoryId
      if (checkedMemories.has(id)) continue
      checkedMemories.add(id)
      const texts = model.textWritesOf(id)
      for (const device of holders(write.scope, write.device)) {
        const item = memoriesMap(device.dev.replica(write.scope)!.inner).get(id)
        if (!item) {
          messages.push(`${device.name} lacks memory ${write.marker} (${write.kind} by ${write.device} at step ${write.step}, acknowledged)${diagnose(device.dev.replica(write.scope)!)}`)
          continue
        }
        const value = item.get('text')
        const shown = typeof value === 'string' ? markersIn(Buffer.from(value, 'latin1'))[0] : undefined
        const winner = shown === undefined ? undefined : texts.find((w) => w.marker === shown)
        if (!winner) {
          messages.push(`${device.name} shows memory ${write.marker} with a text never written to it: ${JSON.stringify(value)}`)
          continue
        }
        const later = texts.find((w) => w !== winner && model.required(w) && integrated(w.before, winner.mark))
        if (later) {
          messages.push(
            `${device.name} shows memory ${write.marker} as ${winner.marker}, but ${later.marker} (${later.kind} by ${later.device} at step ${later.step}, acknowledged) was written after seeing it`,
          )
        }
      }
      continue
    }
    if (write.kind === 'update') continue
    for (const device of holders(write.scope, write.device)) {
      const json = JSON.stringify(device.dev.replica(write.scope)!.inner.getMap('sessions').toJSON())
      if (!json.includes(write.marker)) {
        messages.push(`${device.name} lacks ${write.kind} ${write.marker} (by ${write.device} in ${write.scope} at step ${write.step}, acknowledged)`)
      }
    }
  }
  return capped('acknowledged', messages)
}

/** Writes of honest devices that never settled after the heal. */
export function checkStalled(world: World): Failure[] {
  const messages: string[] = []
  for (const write of world.model.writes) {
    if (write.settled || world.model.revoked(write.device) || !world.get(write.device).dev) continue
    messages.push(`${write.kind} ${write.marker} by ${write.device} in ${write.scope} (step ${write.step}) never settled`)
  }
  for (const forget of world.model.forgets) {
    if (forget.settled || world.model.revoked(forget.device) || !world.get(forget.device).dev) continue
    messages.push(`forget #${forget.n} by ${forget.device} in ${forget.scope} (step ${forget.step}) never settled`)
  }
  return capped('stalled-write', messages)
}

/**
 * Every key anyone honest can open envelopes with: the owner derivation (the model's account
 * root) and every key every honest running device's keyring holds (epochs may have several).
 */
function honestKeys(world: World): KeySource {
  return (roomId, epoch) => {
    const scope = world.scopeOfRoom.get(roomId)
    if (scope === undefined) return []
    const keys: Uint8Array[] = []
    for (const device of honestRunning(world)) {
      const keyring = keyringOf(device.dev)
      if (keyring.knowsRoom(scope)) keys.push(...keyring.openingKeys(scope, epoch))
    }
    return keys
  }
}

/** Every envelope the relay's docs, and honest devices' live logs and stores hold, in the given rooms. */
async function everyEnvelope(world: World, rooms: Set<string>): Promise<FoundEnvelope[]> {
  const out: FoundEnvelope[] = []
  for (const roomId of rooms) {
    const doc = world.net.relayDoc(roomId)
    if (doc) out.push(...envelopesInDoc(roomId, doc, 'relay'))
  }
  for (const device of world.honest()) {
    if (device.dev) {
      for (const roomId of rooms) {
        const scope = world.scopeOfRoom.get(roomId)
        const replica = scope === undefined ? undefined : device.dev.replica(scope)
        if (replica) out.push(...envelopesInDoc(roomId, replica.outer, `${device.name} log`))
      }
    }
    const store = await readStore(device.storage, `${device.name} store`)
    out.push(...store.envelopes.filter((e) => rooms.has(e.roomId)))
  }
  return out
}

/** Check 3: nothing forgotten is present anywhere. */
export async function checkForgotten(world: World): Promise<Failure[]> {
  const forgotten = world.model.forgottenMarkers()
  if (forgotten.size === 0) return []
  const messages: string[] = []
  const found = (marker: string, where: string, envelope?: FoundEnvelope) => {
    const forget = forgotten.get(marker)!
    let origin = ''
    if (envelope) {
      // When the relay first held it tells a replay (or an envelope the forgetter never applied)
      // from one sealed concurrently with the forget by a device that had not seen it yet.
      const id = signatureOf(envelope)
      const replayed = world.relayReinserted.get(id)
      const seen = world.relaySeen.get(id)
      origin =
        replayed !== undefined && replayed > forget.step
          ? ` — re-inserted by the relay (replay, reorder or move) at step ${replayed}`
          : seen !== undefined && seen <= forget.step
            ? ` — the relay held it before the forget (step ${seen}) and the forgetter had not applied it`
            : ` — sealed concurrently with the forget (${seen === undefined ? 'the relay never held it' : `the relay first held it at step ${seen}`})`
    }
    messages.push(`forgotten ${marker} (forget #${forget.n} by ${forget.device} at step ${forget.step}) is in ${where}${origin}`)
  }
  const scan = (bytes: Uint8Array, where: string, envelope?: FoundEnvelope) => {
    for (const marker of new Set(markersIn(bytes))) if (forgotten.has(marker)) found(marker, where, envelope)
  }
  const rooms = new Set([...world.scopeOfRoom.keys()].filter((r) => world.scopeOfRoom.get(r) !== REGISTRY_SCOPE))
  for (const device of honestRunning(world)) {
    for (const scope of [...SYNCED_SCOPES, 'local']) {
      const replica = device.dev.replica(scope)
      if (replica) scan(Y.encodeStateAsUpdate(replica.inner), `${device.name}'s inner doc of ${scope}`)
    }
  }
  const keys = honestKeys(world)
  for (const envelope of await everyEnvelope(world, rooms)) {
    const content = contentOf(envelope, keys(envelope.roomId, envelope.envelope.epoch))
    if (content) scan(content, describe(envelope, (id) => world.nameOf(id)), envelope)
  }
  for (const device of world.honest()) {
    const store = await readStore(device.storage, `${device.name} store`)
    for (const { roomId, state } of store.checkpointStates) scan(state, `${device.name}'s checkpoint of ${world.scopeOfRoom.get(roomId) ?? roomId}`)
    scan(store.raw, `${device.name}'s store as plaintext`)
    for (const key of store.unopenedCheckpoints) messages.push(`${device.name}'s checkpoint ${key} does not open with its at-rest key, so it could not be searched`)
    // The `local` scope's room is the device's own; its envelopes open only with its keyring.
    const local = device.dev?.replica('local')
    if (local && device.dev) {
      const localKeys = (epoch: number) => keyringOf(device.dev!).openingKeys('local', epoch)
      for (const envelope of store.envelopes.filter((e) => e.roomId === local.roomId)) {
        const content = contentOf(envelope, localKeys(envelope.envelope.epoch))
        if (content) scan(content, describe(envelope, (id) => world.nameOf(id)), envelope)
      }
    }
  }
  return capped('forgotten', [...new Set(messages)])
}

/** An envelope's identity, as the relay's captures are keyed. */
function signatureOf(found: FoundEnvelope): string {
  return signature(found.bytes)
}

/** True when the removal stands at the end, as the honest owners see it. */
function effective(world: World, removal: Removal): boolean {
  return honestRunning(world)
    .filter((d) => d.owner)
    .some((d) => world.knows(d.dev.registry, removal))
}

/** Check 4: no removed device can read anything sealed after its removal. */
export async function checkRevoked(world: World): Promise<Failure[]> {
  const messages: string[] = []
  for (const removal of world.model.removals) {
    if (!effective(world, removal)) continue
    const target = world.get(removal.target)
    const keys = world.keysOf(target)
    const post = world.model.postRemovalMarkers(removal)
    const what = `${removal.target} (${removal.kind === 'revoke' ? 'revoked' : `narrowed out of ${removal.scopes[0]}`} by ${removal.by} at step ${removal.step})`
    const rooms = new Set(removal.scopes.map((s) => world.roomId(s)))
    const seen = new Set<string>()
    for (const envelope of await everyEnvelope(world, rooms)) {
      if (envelope.envelope.senderId === removal.targetId) continue
      const id = signatureOf(envelope)
      if (seen.has(id)) continue
      seen.add(id)
      const content = contentOf(envelope, keys.get(`${envelope.roomId}/${envelope.envelope.epoch}`) ?? [])
      if (!content) continue
      const sender = world.nameOf(envelope.envelope.senderId)
      const senderDevice = world.deviceNamed(envelope.envelope.senderId)
      const knewAt = senderDevice && removal.knownAt.get(senderDevice)?.get(envelope.roomId)
      const knowing = knewAt !== undefined && envelope.envelope.seq > knewAt
      const leaked = [...new Set(markersIn(content))].filter((m) => post.has(m))
      if (!knowing && leaked.length === 0) continue
      const scope = world.scopeOfRoom.get(envelope.roomId) ?? envelope.roomId
      messages.push(
        `${what} can decrypt ${describe(envelope, (d) => world.nameOf(d))} (${scope === REGISTRY_SCOPE ? REGISTRY : scope})` +
          (knowing ? `, sealed after ${sender} knew of the removal` : '') +
          (leaked.length > 0 ? `, holding ${leaked.length} marker(s) written after it (${leaked.slice(0, 3).join(', ')})` : ''),
      )
    }
    const dev = target.dev
    if (dev) {
      for (const scope of removal.scopes) {
        const replica = dev.replica(scope === REGISTRY ? REGISTRY_SCOPE : scope)
        if (!replica) continue
        const applied = [...new Set(markersIn(Y.encodeStateAsUpdate(replica.inner)))].filter((m) => post.has(m))
        if (applied.length > 0) messages.push(`${what} applied ${applied.length} marker(s) written after it in ${scope} (${applied.slice(0, 3).join(', ')})`)
      }
    }
  }
  return capped('revoked-decrypts', messages)
}

/** What a replica holds back, for failure messages: held envelopes, refusals, pending Yjs updates. */
function diagnose(replica: Replica): string {
  const counts = [...replica.rejections].map(([code, n]) => `${code}×${n}`).join(' ')
  const held = replica
    .heldEnvelopes()
    .map((h) => `${h.senderId.slice(0, 6)} e${h.epoch} s${h.seq} (${h.code})`)
    .join(', ')
  return ` [held ${replica.heldCount}${held && `: ${held}`}, refused ${counts || 'none'} (presence included), pending Yjs ${replica.hasPendingUpdates()}]`
}
