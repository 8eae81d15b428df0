/**
 * The relay as an adversary: the loopback hub's copy of each room (`net.relayDoc(roomId)`) is
 * changed with the tamper operations of `src/testing/sealed-log-tamper.ts` — exactly what a relay
 * can do without keys (THREAT_MODEL.md, "The relay"). It remembers every envelope it ever carried,
 * so it can replay them after they were compacted away or forgotten. Withholding is done with
 * the network's partitions and disconnects (see `ops.ts`).
 *
 * @module
 */
import * as prng from 'lib0/prng'
import type * as Y from 'yjs'
import { createDeviceKeys, EnvelopeType, randomBytes, sealEnvelope } from '../../src/crypto/index.js'
import { sealedLog } from '../../src/crdt/sealed-log.js'
import {
  deleteEntries,
  deletePublicStatements,
  injectEntries,
  listEntries,
  listPublicStatements,
  moveEntries,
  reorderEntries,
  replayEntries,
  truncate,
  wipe,
} from '../../src/testing/sealed-log-tamper.js'
import type { World } from './world.js'

/** The tamper operations the campaign draws from. */
export const RELAY_OPS = ['wipe', 'delete', 'truncate', 'replay', 'wipe-replay', 'reorder', 'move', 'junk', 'statements'] as const
/** One of {@link RELAY_OPS}. */
export type RelayOp = (typeof RELAY_OPS)[number]

/** An envelope's identity: its signature, the last 64 bytes (hex). */
export function signature(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(Math.max(0, bytes.length - 64))).toString('hex')
}

/** A tampering relay over the loopback hub. */
export class RelayAdversary {
  /** Every envelope seen per room, keyed by its signature (the last 64 bytes). */
  private readonly captured = new Map<string, Map<string, Uint8Array>>()

  constructor(private readonly world: World) {}

  /** Remember every envelope the relay holds now (`step`: when it was first seen, see `World.relaySeen`). */
  capture(step = 0): void {
    for (const [roomId, doc] of this.rooms()) {
      let pool = this.captured.get(roomId)
      if (!pool) this.captured.set(roomId, (pool = new Map()))
      for (const bytes of sealedLog(doc).toArray()) {
        if (!(bytes instanceof Uint8Array) || bytes.length < 64) continue
        const id = signature(bytes)
        if (pool.has(id)) continue
        pool.set(id, bytes.slice())
        if (!this.world.relaySeen.has(id)) this.world.relaySeen.set(id, step)
      }
    }
  }

  /** Perform one tamper operation on a random room; returns the trace line. */
  act(op: RelayOp, gen: prng.PRNG, step: number): string {
    this.capture(step)
    const rooms = this.rooms()
    if (rooms.length === 0) return `relay ${op}: no room yet`
    const [roomId, doc] = prng.oneOf(gen, rooms)
    const room = this.world.scopeOfRoom.get(roomId) ?? roomId
    switch (op) {
      case 'wipe': {
        const result = wipe(doc)
        return `relay wipe ${room}: ${result.entries.length} entries, ${result.statements.length} statements`
      }
      case 'delete': {
        const p = prng.real53(gen)
        const doomed = new Set(listEntries(doc).filter(() => prng.real53(gen) < p).map((e) => e.index))
        return `relay delete ${room}: ${deleteEntries(doc, (e) => doomed.has(e.index)).length} entries`
      }
      case 'truncate': {
        const length = sealedLog(doc).length
        const keep = length === 0 ? 0 : prng.int32(gen, 0, length - 1)
        return `relay truncate ${room} to ${keep}: ${truncate(doc, keep).length} entries`
      }
      case 'replay':
      case 'wipe-replay': {
        const wiped = op === 'wipe-replay' ? wipe(doc).entries.length : 0
        const replayed = this.pick(roomId, gen, prng.int32(gen, 1, 6))
        replayEntries(doc, replayed)
        this.reinserted(replayed, step)
        return `relay ${op} ${room}: ${wiped > 0 ? `wiped ${wiped}, ` : ''}replayed ${replayed.length} old envelopes`
      }
      case 'reorder': {
        // Re-inserted as new Yjs items: a concurrent deletion of the old ones does not reach them.
        this.reinserted(sealedLog(doc).toArray(), step)
        return `relay reorder ${room}: ${reorderEntries(doc, prng.uint32(gen, 0, 0x7fffffff)).length} entries`
      }
      case 'move': {
        const others = rooms.filter(([id]) => id !== roomId)
        if (others.length === 0) return `relay move ${room}: no other room`
        const [toId, to] = prng.oneOf(gen, others)
        const p = prng.real53(gen)
        const chosen = new Set(listEntries(doc).filter(() => prng.real53(gen) < p).map((e) => e.index))
        const moved = moveEntries(doc, to, (e) => chosen.has(e.index))
        this.reinserted(moved.map((e) => e.bytes), step)
        return `relay move ${room} → ${this.world.scopeOfRoom.get(toId) ?? toId}: ${moved.length} entries`
      }
      case 'junk': {
        const junk = this.junk(roomId, gen)
        injectEntries(doc, junk, prng.int32(gen, 0, sealedLog(doc).length))
        return `relay junk ${room}: ${junk.length} entries`
      }
      case 'statements': {
        const registry = this.world.net.relayDoc(this.world.roomId('@registry'))
        if (!registry) return 'relay statements: no registry room yet'
        const kind = prng.oneOf(gen, ['lockbox/', 'epoch/', 'revoke/', 'pass/', ''])
        const p = prng.real53(gen)
        const doomed = new Set(
          listPublicStatements(registry)
            .filter((s) => s.key.startsWith(kind) && prng.real53(gen) < p)
            .map((s) => s.key),
        )
        const deleted = deletePublicStatements(registry, (s) => doomed.has(s.key))
        return `relay deletes ${deleted.length} public statements${kind ? ` (${kind}*)` : ''}`
      }
    }
  }

  private reinserted(entries: Uint8Array[], step: number): void {
    for (const bytes of entries) this.world.relayReinserted.set(signature(bytes), step)
  }

  /** Rooms the relay holds, in a stable order (registry first). */
  private rooms(): Array<[string, Y.Doc]> {
    const out: Array<[string, Y.Doc]> = []
    for (const roomId of this.world.scopeOfRoom.keys()) {
      const doc = this.world.net.relayDoc(roomId)
      if (doc) out.push([roomId, doc])
    }
    return out
  }

  /** Up to `count` captured envelopes of a room, drawn without repetition. */
  private pick(roomId: string, gen: prng.PRNG, count: number): Uint8Array[] {
    const pool = [...(this.captured.get(roomId)?.entries() ?? [])].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, bytes]) => bytes)
    const out: Uint8Array[] = []
    while (out.length < count && pool.length > 0) out.push(pool.splice(prng.int32(gen, 0, pool.length - 1), 1)[0]!)
    return out
  }

  /**
   * Junk a relay can make without keys: random bytes, a captured envelope with one byte flipped,
   * and envelopes from a made-up sender the registry never certified.
   */
  private junk(roomId: string, gen: prng.PRNG): Uint8Array[] {
    const out: Uint8Array[] = []
    const count = prng.int32(gen, 1, 4)
    for (let i = 0; i < count; i++) {
      const kind = prng.int32(gen, 0, 2)
      if (kind === 0) {
        out.push(prng.uint8Array(gen, prng.int32(gen, 1, 200)))
      } else if (kind === 1) {
        const [original] = this.pick(roomId, gen, 1)
        if (!original) continue
        const copy = original.slice()
        const at = prng.int32(gen, 0, copy.length - 1)
        copy[at] = copy[at]! ^ (1 << prng.int32(gen, 0, 7))
        out.push(copy)
      } else {
        const stranger = createDeviceKeys()
        out.push(
          sealEnvelope({
            roomId,
            type: EnvelopeType.Update,
            epoch: prng.int32(gen, 0, 2),
            seq: prng.int32(gen, 1, 5000),
            sender: stranger.deviceIdBytes,
            signSecretKey: stranger.signSecretKey,
            key: randomBytes(32),
            plaintext: prng.uint8Array(gen, prng.int32(gen, 1, 300)),
          }),
        )
      }
    }
    return out
  }
}
