/**
 * `dev.devices`: the account's devices — pair a new one with an invite code, list them, revoke
 * one. Inviting and revoking need an owner device.
 *
 * @module
 */
import { PermissionError, ValidationError } from '../errors.js'
import type { DeviceContext } from './device-context.js'
import type { Invite, InviteHost, InviteOptions } from './pairing.js'
import { requireFutureTime, requireId } from './check-args.js'

/** One device of the account, as `devices.list()` shows it. */
export interface DeviceInfo {
  deviceId: string
  kind: string
  name: string
  role: 'owner' | 'member'
  /** Scopes it holds (none once revoked). */
  scopes: string[]
  revoked: boolean
  /** When this device last received something from it (ms), if ever. */
  lastSeen?: number
  /** When its membership ends or ended (ms), for a device invited with `until`. */
  until?: number
}

/** The account's devices. */
export class DevicesApi {
  /** @internal built by `ContextSync`. */
  constructor(
    private readonly ctx: DeviceContext,
    private readonly host: InviteHost,
  ) {}

  /**
   * Invite a new device (owner only). Show `code` on this device (or as a QR code) and type it on
   * the new one. Both then show six digits over the whole exchange; with `confirm`, the device is
   * admitted only once this user and the new device's user confirmed that they match (README
   * "Devices, scopes and keys"). The code works once, until `expiresAt`; this device must stay
   * online (with its transports) until the new device joined. `result()` says how it ended.
   *
   * @example
   * ```ts
   * const invite = await phone.devices.invite({ kind: 'car', confirm: ({ sas }) => ui.ask(`Does the car show ${sas}?`) })
   * showCode(invite.code)
   * const { deviceId } = await invite.result()
   * ```
   */
  async invite(options: InviteOptions): Promise<Invite> {
    this.ctx.assertOpen()
    this.requireOwner('invite a device')
    if (this.ctx.transports.length === 0) throw new ValidationError('inviting needs a transport: the new device reaches this one through it')
    return this.host.invite(options)
  }

  /** Every device of the account this device knows of. */
  list(): DeviceInfo[] {
    this.ctx.assertOpen()
    const registry = this.ctx.registry
    return registry.list().map((certificate) => {
      const revoked = registry.revocation(certificate.deviceId) !== undefined
      const info: DeviceInfo = {
        deviceId: certificate.deviceId,
        kind: certificate.kind,
        name: certificate.name,
        role: certificate.role,
        scopes: revoked ? [] : registry.heldScopes(certificate.deviceId),
        revoked,
      }
      const lastSeen = certificate.deviceId === this.ctx.device.deviceId ? Date.now() : registry.lastSeen(certificate.deviceId)
      if (lastSeen !== undefined) info.lastSeen = lastSeen
      const term = registry.term(certificate.deviceId)
      if (term) info.until = term.until
      return info
    })
  }

  /**
   * Revoke a device (owner only): a signed revocation listing, per room this device holds, the
   * exact seqs of the revoked device it applied (they stay valid history; nothing else from it is
   * accepted); every scope it could read (and the registry) moves to a new key epoch sealed to the
   * remaining devices; this device re-seals the scopes it holds under the new epoch at once
   * (compaction), so the old keys protect nothing new. The relay refuses the device from then on.
   */
  async revoke(deviceId: string): Promise<void> {
    this.ctx.assertOpen()
    this.requireOwner('revoke a device')
    requireId(deviceId, 'deviceId')
    if (deviceId === this.ctx.device.deviceId) throw new ValidationError('a device cannot revoke itself')
    if (!this.ctx.registry.certificate(deviceId)) throw new ValidationError(`no device '${deviceId}' in this account`)
    if (this.ctx.registry.revocation(deviceId)) return
    const rooms = new Map(this.ctx.allReplicas().map((r) => [r.roomId, r]))
    // The revocation states exactly what this device applied of the revoked one (THREAT_MODEL
    // "A revoked device"): every other seq, and every room without a replica here, is refused.
    const affected = await this.ctx.registry.revoke(deviceId, (roomId) => rooms.get(roomId)?.appliedSeqs().get(deviceId))
    for (const scope of affected) await this.ctx.heldReplica(scope)?.compactNow()
  }

  /**
   * Move the end of a device's temporary access later (owner only): its term when it was invited
   * with `until`, and every temporary grant of it still running (`scopes.grant(…, { until })`). It
   * gets a new root-signed end and a relay pass carrying it. An access that already ended cannot
   * be extended — the device purged the account's data; invite it again. To end it sooner, revoke it.
   *
   * @example
   * ```ts
   * await phone.devices.extend(rental.deviceId, Date.now() + 2 * 86_400_000)
   * ```
   */
  async extend(deviceId: string, until: number): Promise<void> {
    this.ctx.assertOpen()
    this.requireOwner('extend a device')
    requireId(deviceId, 'deviceId')
    const registry = this.ctx.registry
    const certificate = registry.certificate(deviceId)
    if (!certificate) throw new ValidationError(`no device '${deviceId}' in this account`)
    if (registry.revocation(deviceId)) throw new ValidationError(`device '${deviceId}' is revoked`)
    const term = registry.term(deviceId)
    const grants = registry.scopeNames().filter((scope) => registry.grantEnd(scope, deviceId) !== undefined)
    if (!term && grants.length === 0) throw new ValidationError(`device '${deviceId}' holds no temporary access to extend`)
    if (term && registry.termEnded(deviceId)) throw new ValidationError(`the access of device '${deviceId}' already ended; invite it again`)
    const current = Math.max(term?.until ?? 0, ...grants.map((scope) => registry.grantEnd(scope, deviceId) ?? 0))
    requireFutureTime(until, 'until', Math.max(current, registry.now()))
    await registry.extend(deviceId, until)
  }

  /** @internal */
  close(): void {
    this.host.close()
  }

  private requireOwner(action: string): void {
    if (!this.ctx.registry.isOwner) throw new PermissionError(`only an owner device can ${action}`)
  }
}
