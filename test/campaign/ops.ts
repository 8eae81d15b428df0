/**
 * The operations of the campaign, drawn from one seeded PRNG (`lib0/prng`): what the person does
 * on their devices (remember, update, supersede, forget, sessions and streamed turns), what the
 * owners do (revoke a member — sometimes two owners at once while partitioned — and narrow a
 * scope), what happens to devices (restart from storage, partitions, going offline) and what the
 * relay does (`relay-adversary.ts`).
 *
 * Writes are not awaited: the run goes on while they seal and store, and the model marks them
 * acknowledged when their promise resolves. Each op draws from its own PRNG (seeded from the
 * run's, see `run.ts`), and lists it picks from are ordered by the model, not by timestamps or
 * random ids: which op runs at each step is a function of the seed, and what it picks depends only
 * on what the devices hold at that moment. An op that does not apply (no memory to update, no
 * member left to revoke) logs a skip.
 *
 * @module
 */
import * as prng from 'lib0/prng'
import type * as Y from 'yjs'
import { DEFAULT_SCOPE_KINDS, type ContextSync } from '../../src/index.js'
import { memoriesMap } from '../../src/crdt/memory.js'
import { markOf, REGISTRY, stateVector, type DeviceName, type WriteKind, type WriteRecord } from './model.js'
import { RELAY_OPS, type RelayAdversary, type RelayOp } from './relay-adversary.js'
import { SYNCED_SCOPES, type SimDevice, type World } from './world.js'

/** What an op works on. */
export interface OpContext {
  world: World
  relay: RelayAdversary
  gen: prng.PRNG
  step: number
}

type Running = SimDevice & { dev: ContextSync }
type Op = (ctx: OpContext) => Promise<string>

/** Scopes a narrowing may drop a member kind from (the built-in ones members hold by kind). */
const NARROWABLE = ['personal', 'location', 'health'] as const
const MEMBER_KINDS = ['car', 'glasses'] as const
/** Longest an owner action (revoke, define) may take before the run reports it as stuck. */
const OWNER_ACTION_MS = 10_000

/** Reject with a named error when `promise` takes longer than `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Sleep (real time: repairs, idle compaction and sweeps run on timers). */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

function pick<T>(ctx: OpContext, items: readonly T[]): T | undefined {
  return items.length === 0 ? undefined : items[prng.int32(ctx.gen, 0, items.length - 1)]
}

/** Scopes a device can write now: held, with an open replica that can seal (synced ones and `local`). */
function writableScopes(device: Running): string[] {
  const held = device.dev.scopes.available()
  return [...SYNCED_SCOPES, 'local'].filter((scope) => held.includes(scope) && device.dev.replica(scope)?.canSeal() === true)
}

/** A scope to write a new memory or session in: a synced one, `local` one time in ten. */
function newScope(ctx: OpContext, device: Running): string | undefined {
  const scopes = writableScopes(device)
  const local = prng.real53(ctx.gen) < 0.1
  return pick(
    ctx,
    scopes.filter((s) => (s === 'local') === local),
  )
}

function text(ctx: OpContext, marker: string): string {
  return `${marker} ${prng.word(ctx.gen, 3, 10)}`
}

/** The id of the memory whose text is `value` in `inner` (how a just-written memory is found). */
function memoryWithText(inner: Y.Doc, value: string): string | undefined {
  for (const [id, map] of memoriesMap(inner)) if (map.get('text') === value) return id
  return undefined
}

/**
 * Record a write just issued on `inner` (its synchronous part has run): nothing is recorded when
 * the doc did not change (the API refused it before writing). Its promise marks it acknowledged.
 */
function recordWrite(
  ctx: ActionContext,
  device: Running,
  input: { kind: WriteKind; scope: string; marker: string; inner: Y.Doc; before: Map<number, number>; memoryId?: string; sessionId?: string },
  promise: Promise<unknown> | undefined,
): WriteRecord | undefined {
  const mark = markOf(input.inner)
  if (mark.clock === (input.before.get(mark.client) ?? 0)) return undefined
  const write = ctx.world.model.addWrite(
    {
      marker: input.marker,
      kind: input.kind,
      device: device.name,
      scope: input.scope,
      step: ctx.step,
      mark,
      before: input.before,
      ...(input.memoryId !== undefined && { memoryId: input.memoryId }),
      ...(input.sessionId !== undefined && { sessionId: input.sessionId }),
    },
    ctx.world.knownRemovals(device, input.scope),
  )
  if (promise) ctx.world.track(device.name, promise, (ok) => settle([write], ok))
  return write
}

function settle(writes: WriteRecord[], ok: boolean): void {
  for (const write of writes) {
    write.settled = true
    write.acked = ok
  }
}

/** Memories a device can change, in a timing-independent order (by the marker that created them). */
function changeable(ctx: OpContext, device: Running): Array<{ id: string; scope: string }> {
  const scopes = writableScopes(device)
  const order = (id: string) => ctx.world.model.creationOf(id)?.n ?? Number.MAX_SAFE_INTEGER
  return device.dev.memory
    .list()
    .filter((m) => scopes.includes(m.scope))
    .map((m) => ({ id: m.id, scope: m.scope }))
    .sort((a, b) => order(a.id) - order(b.id) || (a.id < b.id ? -1 : 1))
}

function writer(ctx: OpContext): Running | undefined {
  return pick(ctx, ctx.world.running())
}

/** Where an action happens: the world and the step it is logged under. */
export type ActionContext = Pick<OpContext, 'world' | 'step'>

/** A running device (its instance is up). */
export type RunningDevice = Running

/** Remember `value` on a device, recorded in the model; resolves with the write once acknowledged (or not). */
export function rememberOn(ctx: ActionContext, device: Running, scope: string, value: string, marker: string): { write: WriteRecord | undefined; done: Promise<unknown> } {
  const replica = device.dev.replica(scope)!
  const before = stateVector(replica.inner)
  const promise = device.dev.memory.remember({ text: value, scope })
  const memoryId = memoryWithText(replica.inner, value)
  const write = recordWrite(ctx, device, { kind: 'remember', scope, marker, inner: replica.inner, before, ...(memoryId && { memoryId }) }, promise)
  return { write, done: promise.catch(() => undefined) }
}

const remember: Op = async (ctx) => {
  const device = writer(ctx)
  const scope = device && newScope(ctx, device)
  if (!device || !scope) return 'remember: skip'
  const marker = ctx.world.model.marker()
  const { write } = rememberOn(ctx, device, scope, text(ctx, marker), marker)
  return `${device.name} remember ${scope} ${marker}${write ? '' : ' (refused)'}`
}

const update: Op = async (ctx) => {
  const device = writer(ctx)
  const target = device && pick(ctx, changeable(ctx, device))
  if (!device || !target) return 'update: skip'
  const replica = device.dev.replica(target.scope)!
  const marker = ctx.world.model.marker()
  const before = stateVector(replica.inner)
  const promise = device.dev.memory.update(target.id, { text: text(ctx, marker) })
  const write = recordWrite(ctx, device, { kind: 'update', scope: target.scope, marker, inner: replica.inner, before, memoryId: target.id }, promise)
  return `${device.name} update ${target.scope} ${ctx.world.model.creationOf(target.id)?.marker ?? target.id} → ${marker}${write ? '' : ' (refused)'}`
}

const supersede: Op = async (ctx) => {
  const device = writer(ctx)
  const target = device && pick(ctx, changeable(ctx, device))
  if (!device || !target) return 'supersede: skip'
  const replica = device.dev.replica(target.scope)!
  const marker = ctx.world.model.marker()
  const value = text(ctx, marker)
  const before = stateVector(replica.inner)
  const promise = device.dev.memory.supersede(target.id, { text: value })
  const memoryId = memoryWithText(replica.inner, value)
  const write = recordWrite(ctx, device, { kind: 'supersede', scope: target.scope, marker, inner: replica.inner, before, ...(memoryId && { memoryId }) }, promise)
  return `${device.name} supersede ${target.scope} ${ctx.world.model.creationOf(target.id)?.marker ?? target.id} → ${marker}${write ? '' : ' (refused)'}`
}

/** Forget a memory (and its versions, with `history`) on a device, recorded in the model. */
export function forgetOn(ctx: ActionContext, device: Running, target: { id: string; scope: string }, history: boolean): Promise<unknown> {
  const ids = history ? [...new Set([target.id, ...device.dev.memory.history(target.id).map((m) => m.id)])] : [target.id]
  const replica = device.dev.replica(target.scope)!
  const before = stateVector(replica.inner)
  const promise = device.dev.memory.forget(target.id, { history })
  const record = ctx.world.model.addForget({ device: device.name, scope: target.scope, ids, step: ctx.step, before })
  ctx.world.track(device.name, promise, (ok) => {
    record.settled = true
    record.acked = ok
  })
  return promise.catch(() => undefined)
}

const forget: Op = async (ctx) => {
  const device = writer(ctx)
  const target = device && pick(ctx, changeable(ctx, device))
  if (!device || !target) return 'forget: skip'
  const history = prng.real53(ctx.gen) < 0.3
  const ids = history ? [...new Set([target.id, ...device.dev.memory.history(target.id).map((m) => m.id)])] : [target.id]
  void forgetOn(ctx, device, target, history)
  const named = ids.map((id) => ctx.world.model.creationOf(id)?.marker ?? id).join(', ')
  return `${device.name} forget${history ? ' (history)' : ''} ${target.scope} ${named}`
}

const startSession: Op = async (ctx) => {
  const device = writer(ctx)
  const scope = device && newScope(ctx, device)
  if (!device || !scope) return 'session: skip'
  const replica = device.dev.replica(scope)!
  const title = ctx.world.model.marker()
  const before = stateVector(replica.inner)
  const session = device.dev.sessions.start({ scope, title })
  const afterStart = stateVector(replica.inner)
  const titleMark = markOf(replica.inner)
  const turn = ctx.world.model.marker()
  const promise = session.append({ role: 'user', text: turn })
  const turnWrite = recordWrite(ctx, device, { kind: 'turn', scope, marker: turn, inner: replica.inner, before: afterStart, sessionId: session.id }, promise)
  const titleWrite = ctx.world.model.addWrite(
    { marker: title, kind: 'title', device: device.name, scope, sessionId: session.id, step: ctx.step, mark: titleMark, before },
    ctx.world.knownRemovals(device, scope),
  )
  ctx.world.track(device.name, promise, (ok) => settle([titleWrite], ok))
  return `${device.name} session ${scope} ${title} + turn ${turn}${turnWrite ? '' : ' (turn refused)'}`
}

/** Sessions a device can write to, in a timing-independent order (by title). */
function sessionsOf(device: Running): Array<{ id: string; scope: string; title: string }> {
  const scopes = writableScopes(device)
  return device.dev.sessions
    .list()
    .filter((s) => scopes.includes(s.scope))
    .map((s) => ({ id: s.id, scope: s.scope, title: s.title }))
    .sort((a, b) => (a.title < b.title ? -1 : a.title > b.title ? 1 : a.id < b.id ? -1 : 1))
}

const append: Op = async (ctx) => {
  const device = writer(ctx)
  const session = device && pick(ctx, sessionsOf(device))
  if (!device || !session) return 'append: skip'
  const replica = device.dev.replica(session.scope)!
  const marker = ctx.world.model.marker()
  const before = stateVector(replica.inner)
  const promise = device.dev.sessions.open(session.id).append({ role: prng.oneOf(ctx.gen, ['user', 'assistant'] as const), text: marker })
  const write = recordWrite(ctx, device, { kind: 'turn', scope: session.scope, marker, inner: replica.inner, before, sessionId: session.id }, promise)
  return `${device.name} append ${session.scope} ${session.title} ${marker}${write ? '' : ' (refused)'}`
}

/** Start, continue or end a streamed assistant turn. */
const stream: Op = async (ctx) => {
  const device = writer(ctx)
  if (!device) return 'stream: skip'
  const live = device.stream
  if (live && prng.real53(ctx.gen) < 0.35) return endStream(ctx, device)
  let current = live
  if (!current) {
    const session = pick(ctx, sessionsOf(device))
    if (!session) return 'stream: skip'
    try {
      current = { handle: device.dev.sessions.open(session.id).stream({ role: 'assistant' }), sessionId: session.id, scope: session.scope, chunks: [] }
    } catch (error) {
      return `${device.name} stream refused: ${(error as Error).message}`
    }
    device.stream = current
  }
  const replica = device.dev.replica(current.scope)
  if (!replica) return `${device.name} stream: replica of ${current.scope} gone`
  const count = prng.int32(ctx.gen, 1, 3)
  const markers: string[] = []
  for (let i = 0; i < count; i++) {
    const marker = ctx.world.model.marker()
    const before = stateVector(replica.inner)
    try {
      current.handle.write(`${marker} `)
    } catch (error) {
      device.stream = undefined
      return `${device.name} stream write refused: ${(error as Error).message}`
    }
    const write = recordWrite(ctx, device, { kind: 'chunk', scope: current.scope, marker, inner: replica.inner, before, sessionId: current.sessionId }, undefined)
    if (write) current.chunks.push(write.n)
    markers.push(marker)
  }
  return `${device.name} stream ${current.scope} ${markers.join(' ')}`
}

/** End a device's stream: its chunks are acknowledged when `end()` resolves. */
export function endStream(ctx: Pick<OpContext, 'world'>, device: Running): string {
  const live = device.stream
  if (!live) return `${device.name} end: no stream`
  device.stream = undefined
  const writes = live.chunks.map((n) => ctx.world.model.writes[n - 1]!)
  let promise: Promise<unknown>
  try {
    promise = live.handle.end()
  } catch (error) {
    settle(writes, false)
    return `${device.name} end refused: ${(error as Error).message}`
  }
  ctx.world.track(device.name, promise, (ok) => settle(writes, ok))
  return `${device.name} end stream (${writes.length} chunks)`
}

/** Owners running now. */
function owners(ctx: OpContext): Running[] {
  return ctx.world.running().filter((d) => d.owner)
}

/** Members the model has not revoked and `owner` does not know as revoked. */
function revocable(ctx: OpContext, owner: Running): SimDevice[] {
  return MEMBER_KINDS.map((n) => ctx.world.get(n)).filter((m) => !ctx.world.model.revoked(m.name) && !owner.dev.registry.revocation(m.deviceId))
}

/** Revoke `target` from `owner`: the removal is recorded first, so knowledge of it is seen as it spreads. */
export async function revokeOn(ctx: ActionContext, owner: Running, target: SimDevice): Promise<string> {
  const scopes = [REGISTRY, ...owner.dev.registry.heldScopes(target.deviceId).filter((s) => s !== 'local')]
  const removal = ctx.world.model.addRemoval(
    { kind: 'revoke', target: target.name, targetId: target.deviceId, by: owner.name, scopes, step: ctx.step },
    (scope) => ctx.world.replica(owner, scope)?.inner,
  )
  ctx.world.noteKnowledge()
  await within(owner.dev.devices.revoke(target.deviceId), OWNER_ACTION_MS, `${owner.name} revoking ${target.name}`)
  removal.acked = true
  ctx.world.noteKnowledge()
  return `${owner.name} revoked ${target.name} (${scopes.join(', ')})`
}

const revoke: Op = async (ctx) => {
  const owner = pick(ctx, owners(ctx))
  const target = owner && pick(ctx, revocable(ctx, owner))
  if (!owner || !target) return 'revoke: skip'
  return revokeOn(ctx, owner, target)
}

/** Partition the owners apart and have each revoke a member at the same time. */
const revokeConcurrently: Op = async (ctx) => {
  const both = owners(ctx)
  if (both.length < 2) return 'revoke-concurrent: skip'
  const [phone, pc] = both as [Running, Running]
  const left = revocable(ctx, phone).filter((m) => revocable(ctx, pc).includes(m))
  if (left.length === 0) return 'revoke-concurrent: skip'
  const sides: [SimDevice[], SimDevice[]] = [[phone], [pc]]
  for (const member of MEMBER_KINDS) sides[prng.int32(ctx.gen, 0, 1)]!.push(ctx.world.get(member))
  if (prng.bool(ctx.gen)) sides.reverse()
  ctx.world.net.partition(...sides.map((side) => side.map((d) => d.transport)))
  const first = prng.oneOf(ctx.gen, left)
  const others = left.filter((m) => m !== first)
  const second = others.length > 0 && prng.real53(ctx.gen) < 0.8 ? prng.oneOf(ctx.gen, others) : first
  const results = await Promise.all([revokeOn(ctx, phone, first), revokeOn(ctx, pc, second)])
  return `partition ${sides.map((s) => s.map((d) => d.name).join('+')).join(' | ')}; ${results.join('; ')}`
}

/** Drop a member kind from a scope's policy (`scopes.define`), never adding any back (see model docs). */
const narrow: Op = async (ctx) => {
  const owner = pick(ctx, owners(ctx))
  if (!owner) return 'narrow: skip'
  const scope = pick(ctx, NARROWABLE)!
  const dropped = ctx.world.model.narrowed.get(scope) ?? new Set<string>()
  const defaults: readonly string[] = DEFAULT_SCOPE_KINDS[scope]
  const kind = pick(
    ctx,
    MEMBER_KINDS.filter((k) => defaults.includes(k) && !dropped.has(k)),
  )
  if (!kind) return `narrow ${scope}: skip`
  const next = new Set([...dropped, kind])
  ctx.world.model.narrowed.set(scope, next)
  const target = ctx.world.get(kind)
  const removal = ctx.world.model.revoked(kind)
    ? undefined
    : ctx.world.model.addRemoval(
        { kind: 'narrow', target: kind, targetId: target.deviceId, by: owner.name, scopes: [scope], step: ctx.step },
        (s) => ctx.world.replica(owner, s)?.inner,
      )
  ctx.world.noteKnowledge()
  const kinds = defaults.filter((k) => !next.has(k))
  await within(owner.dev.scopes.define(scope, { kinds }), OWNER_ACTION_MS, `${owner.name} narrowing ${scope}`)
  if (removal) removal.acked = true
  ctx.world.noteKnowledge()
  return `${owner.name} narrow ${scope} to ${kinds.join(', ')} (drops ${kind})`
}

const restart: Op = async (ctx) => {
  const device = writer(ctx)
  if (!device) return 'restart: skip'
  const error = await ctx.world.restart(device)
  if (error) {
    ctx.world.errors.push(`${device.name} did not reopen from its store: ${error.message}`)
    return `${device.name} restart FAILED: ${error.message}`
  }
  return `${device.name} restart`
}

const partition: Op = async (ctx) => {
  const names: DeviceName[] = ['phone', 'pc', 'car', 'glasses']
  for (let i = names.length - 1; i > 0; i--) {
    const j = prng.int32(ctx.gen, 0, i)
    ;[names[i], names[j]] = [names[j]!, names[i]!]
  }
  const cut = prng.int32(ctx.gen, 1, names.length - 1)
  const groups = [names.slice(0, cut), names.slice(cut)]
  ctx.world.net.partition(...groups.map((g) => g.map((n) => ctx.world.get(n).transport)))
  return `partition ${groups.map((g) => g.join('+')).join(' | ')} (relay with ${groups[0]!.join('+')})`
}

const heal: Op = async (ctx) => {
  ctx.world.net.heal()
  ctx.world.offline.clear()
  return 'heal'
}

const disconnect: Op = async (ctx) => {
  const name = prng.oneOf(ctx.gen, ['phone', 'pc', 'car', 'glasses'] as const)
  ctx.world.net.disconnect(ctx.world.get(name).transport)
  ctx.world.offline.add(name)
  return `${name} offline`
}

const reconnect: Op = async (ctx) => {
  const name = pick(ctx, [...ctx.world.offline].sort())
  if (!name) return 'reconnect: skip'
  ctx.world.net.reconnect(ctx.world.get(name).transport)
  ctx.world.offline.delete(name)
  return `${name} online`
}

const settleNet: Op = async (ctx) => {
  await ctx.world.net.settle()
  return 'settle'
}

const wait: Op = async (ctx) => {
  const ms = prng.int32(ctx.gen, 1, 25)
  await sleep(ms)
  return `sleep ${ms} ms`
}

function relayOp(op: RelayOp): Op {
  return async (ctx) => ctx.relay.act(op, ctx.gen, ctx.step)
}

/** The op table: name, relative weight, implementation. */
export const OPS: ReadonlyArray<{ name: string; weight: number; run: Op }> = [
  { name: 'remember', weight: 14, run: remember },
  { name: 'update', weight: 6, run: update },
  { name: 'supersede', weight: 3, run: supersede },
  { name: 'forget', weight: 5, run: forget },
  { name: 'session', weight: 4, run: startSession },
  { name: 'append', weight: 5, run: append },
  { name: 'stream', weight: 6, run: stream },
  { name: 'revoke', weight: 1.5, run: revoke },
  { name: 'revoke-concurrent', weight: 1, run: revokeConcurrently },
  { name: 'narrow', weight: 1.5, run: narrow },
  { name: 'restart', weight: 3, run: restart },
  { name: 'partition', weight: 3, run: partition },
  { name: 'heal', weight: 3, run: heal },
  { name: 'disconnect', weight: 1.5, run: disconnect },
  { name: 'reconnect', weight: 1.5, run: reconnect },
  ...RELAY_OPS.map((op) => ({ name: `relay-${op}`, weight: op === 'replay' || op === 'delete' ? 1.5 : 1, run: relayOp(op) })),
  { name: 'settle', weight: 5, run: settleNet },
  { name: 'sleep', weight: 2, run: wait },
]

const TOTAL_WEIGHT = OPS.reduce((sum, op) => sum + op.weight, 0)

/** Draw one op from the PRNG. */
export function drawOp(gen: prng.PRNG): (typeof OPS)[number] {
  let roll = prng.real53(gen) * TOTAL_WEIGHT
  for (const op of OPS) {
    roll -= op.weight
    if (roll < 0) return op
  }
  return OPS[OPS.length - 1]!
}
