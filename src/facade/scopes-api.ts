/**
 * `dev.scopes`: privacy scopes — which device may hold which data (WIRE.md "Keys and epochs").
 * Defining and granting need an owner device; a device that is not granted a scope holds no key for it, does
 * not subscribe to its room, and using it throws `ScopeAccessError`.
 *
 * @module
 */
import { memoriesMap, readMemory } from '../crdt/memory.js'
import { sessionsMap } from '../crdt/sessions.js'
import { PermissionError, ValidationError } from '../errors.js'
import type { Replica } from '../sync/replica.js'
import type { DeviceContext } from './device-context.js'
import { DEVICE_KINDS } from './builtin-scopes.js'
import { optionalNumber, requireFutureTime, requireId, requireObject } from './check-args.js'

/** A scope's policy, as `scopes.define` takes it. */
export interface ScopePolicy {
  /** Device kinds that hold the scope. */
  kinds?: string[]
  /** Individual devices that hold it as well (the only ones: grants of others are withdrawn). */
  devices?: string[]
  /** Items older than this many ms expire on every device; omit or 0 to keep them. */
  retention?: number
}

const SCOPE_NAME = /^[a-z][a-z0-9-]{0,31}$/

/** Privacy scopes. */
export class ScopesApi {
  /** @internal built by `ContextSync`. */
  constructor(
    private readonly ctx: DeviceContext,
    private readonly held: () => string[],
  ) {}

  /** Scopes this device holds (it has their keys and syncs them). */
  available(): string[] {
    this.ctx.assertOpen()
    return this.held()
  }

  /**
   * Define a new scope or change a scope's policy (owner only). The policy replaces the previous
   * one: devices it now covers receive its keys; grants of devices not in `devices` are
   * withdrawn. When it drops a kind or a device that held the scope, the scope moves to a new key
   * epoch sealed to the remaining holders only (as on a revocation), the removed devices' relay
   * passes no longer name its room, and each removed device closes the scope and purges it from
   * its store (WIRE.md "Keys and epochs").
   *
   * @example
   * ```ts
   * await phone.scopes.define('family', { kinds: ['phone', 'pc'], retention: 30 * 24 * 3600_000 })
   * ```
   */
  async define(name: string, policy: ScopePolicy = {}): Promise<void> {
    this.ctx.assertOpen()
    this.requireOwner('define a scope')
    if (typeof name !== 'string' || !SCOPE_NAME.test(name) || name === 'local') {
      throw new ValidationError(`scope name must match ${SCOPE_NAME} and not be 'local', got ${JSON.stringify(name)}`)
    }
    const fields = requireObject(policy, 'policy')
    const kinds = fields.kinds === undefined ? [] : fields.kinds
    if (!Array.isArray(kinds) || kinds.some((k) => !(DEVICE_KINDS as readonly string[]).includes(k as string))) {
      throw new ValidationError(`kinds must be an array of ${DEVICE_KINDS.join(', ')}`)
    }
    const devices = fields.devices === undefined ? [] : fields.devices
    if (!Array.isArray(devices)) throw new ValidationError('devices must be an array of device ids')
    for (const id of devices) requireId(id, 'devices[]')
    const retention = optionalNumber(fields.retention, 'retention', 0) ?? 0
    await this.ctx.registry.define(name, { kinds: kinds as string[], devices: devices as string[], retentionMs: Math.floor(retention) })
  }

  /**
   * Grant one scope to one device (owner only); it receives the keys of every epoch. With
   * `until` (ms since the epoch) the grant ends then: root-signed with the grant, so the device
   * cannot strip it; from then on the owners rotate the scope without the device, the relay
   * refuses it the scope's room, and the device purges the scope from its store. Renew it with
   * `devices.extend` or another `grant`. A scope the device holds for good (by its kind's policy,
   * or an earlier grant without end) cannot be made temporary: narrow it with `scopes.define` first.
   *
   * @example
   * ```ts
   * await phone.scopes.grant('location', car.deviceId, { until: Date.now() + 3 * 86_400_000 })
   * ```
   */
  async grant(scope: string, deviceId: string, options: { until?: number } = {}): Promise<void> {
    this.ctx.assertOpen()
    this.requireOwner('grant a scope')
    this.requireKnownScope(scope)
    requireId(deviceId, 'deviceId')
    const registry = this.ctx.registry
    const certificate = registry.certificate(deviceId)
    if (!certificate) throw new ValidationError(`no device '${deviceId}' in this account`)
    if (registry.revocation(deviceId)) throw new ValidationError(`device '${deviceId}' is revoked`)
    if (registry.termEnded(deviceId)) throw new ValidationError(`the access of device '${deviceId}' ended; invite it again`)
    const fields = requireObject(options, 'options')
    const until = fields.until === undefined ? undefined : requireFutureTime(fields.until, 'until', registry.now())
    if (until !== undefined) {
      if (certificate.role === 'owner') throw new ValidationError('an owner device holds every scope; a temporary grant means nothing to it')
      if (registry.definition(scope)?.kinds.includes(certificate.kind)) {
        throw new ValidationError(`device '${deviceId}' holds '${scope}' by its kind's policy; narrow the scope first (scopes.define) to grant it for a time`)
      }
      if (registry.holds(deviceId, scope) && registry.grantEnd(scope, deviceId) === undefined) {
        throw new ValidationError(`device '${deviceId}' holds '${scope}' for good; narrow the scope first (scopes.define) to grant it for a time`)
      }
    }
    await registry.grant(scope, deviceId, until)
  }

  /**
   * Remove every memory and session of a scope (owner holding the scope only) and compact its
   * sealed log, so no envelope holding that content survives here; other devices drop the covered
   * envelopes as the compaction reaches them.
   */
  async purge(scope: string): Promise<void> {
    this.ctx.assertOpen()
    this.requireOwner('purge a scope')
    this.requireKnownScope(scope)
    const replica = this.ctx.heldReplica(scope)
    if (!replica) throw new PermissionError(`this device does not hold scope '${scope}', so it cannot purge it`)
    replica.inner.transact(() => {
      const memories = memoriesMap(replica.inner)
      for (const id of [...memories.keys()]) memories.delete(id)
      const sessions = sessionsMap(replica.inner)
      for (const id of [...sessions.keys()]) sessions.delete(id)
    })
    await replica.compactNow({ erasing: true })
  }

  /**
   * Apply every held scope's retention: delete items older than it, then compact so their text
   * leaves the sealed logs. Runs on open and periodically; safe to call any time.
   */
  async enforceRetention(now = Date.now()): Promise<number> {
    let removed = 0
    for (const scope of this.held()) {
      const retention = this.ctx.registry.definition(scope)?.retentionMs ?? 0
      const replica = this.ctx.heldReplica(scope)
      if (retention <= 0 || !replica) continue
      const n = expire(replica, now - retention)
      if (n > 0) {
        removed += n
        await replica.compactNow({ erasing: true })
      }
    }
    return removed
  }

  private requireOwner(action: string): void {
    if (!this.ctx.registry.isOwner) throw new PermissionError(`only an owner device can ${action}`)
  }

  private requireKnownScope(scope: unknown): void {
    if (typeof scope !== 'string' || !this.ctx.registry.scopeNames().includes(scope)) {
      throw new ValidationError(`unknown scope ${JSON.stringify(scope)}; known scopes: ${this.ctx.registry.scopeNames().join(', ')}`)
    }
  }
}

/** Delete memories created and sessions last updated before `cutoff`; returns how many. */
function expire(replica: Replica, cutoff: number): number {
  let removed = 0
  replica.inner.transact(() => {
    const memories = memoriesMap(replica.inner)
    for (const [id, map] of [...memories.entries()]) {
      const item = readMemory(id, map)
      if (item && item.createdAt < cutoff) {
        memories.delete(id)
        removed++
      }
    }
    const sessions = sessionsMap(replica.inner)
    for (const [id, map] of [...sessions.entries()]) {
      const updatedAt = map.get('updatedAt')
      if (typeof updatedAt === 'number' && updatedAt < cutoff) {
        sessions.delete(id)
        removed++
      }
    }
  })
  return removed
}
