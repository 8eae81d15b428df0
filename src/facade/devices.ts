/**
 * `dev.devices`: the account's devices — pair a new one with an invite code, list them, revoke
 * one. Inviting and revoking need an owner device.
 *
 * @module
 */
import { PermissionError, ValidationError } from '../errors.js'
import type { DeviceContext } from './device-context.js'
import type { Invite, InviteHost, InviteOptions } from './pairing.js'
import { requireId } from './validate.js'

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

  /** @internal */
  close(): void {
    this.host.close()
  }

  private requireOwner(action: string): void {
    if (!this.ctx.registry.isOwner) throw new PermissionError(`only an owner device can ${action}`)
  }
}
