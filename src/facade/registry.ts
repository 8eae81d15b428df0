/**
 * The account registry as seen by one device: the verified device certificates found in the
 * registry scope's inner doc. It is the {@link SenderDirectory} of every other scope, so an
 * envelope is only opened once its sender's root-signed certificate is known.
 *
 * @module
 */
import type * as Y from 'yjs'
import { certificateKey, statementsMap } from '../crdt/registry.js'
import { issueCertificate, verifyCertificate, type AccountKeys, type DeviceCertificate, type DeviceKeys } from '../crypto/index.js'
import type { RejectCode } from '../crypto/codes.js'
import type { Replica, SenderDirectory, SenderStatus } from '../sync/replica.js'
import { Emitter } from '../util/emitter.js'

/** Events of a {@link Registry}. */
export interface RegistryEvents {
  /** Certificates were added or changed. */
  change: (event: { deviceIds: string[] }) => void
  /** A statement failed verification and is ignored. */
  rejected: (event: { code: RejectCode; reason: string; key: string }) => void
}

/** Verified view of the registry scope. */
export class Registry implements SenderDirectory {
  /** Typed events. */
  readonly events = new Emitter<RegistryEvents>()
  private readonly certificates = new Map<string, DeviceCertificate>()

  constructor(
    private readonly replica: Replica,
    private readonly account: AccountKeys,
  ) {
    const statements = statementsMap(replica.inner)
    this.ingest([...statements.keys()])
    statements.observe((event: Y.YMapEvent<Uint8Array>) => this.ingest([...event.keysChanged]))
  }

  /** {@link SenderDirectory}: a sender is known once its certificate verifies. */
  resolve(senderId: string): SenderStatus {
    const certificate = this.certificates.get(senderId)
    return certificate ? { status: 'known', signPublicKey: certificate.signPublicKey } : { status: 'unknown' }
  }

  /** The verified certificate of a device, if any. */
  certificate(deviceId: string): DeviceCertificate | undefined {
    return this.certificates.get(deviceId)
  }

  /** Every verified certificate. */
  list(): DeviceCertificate[] {
    return [...this.certificates.values()]
  }

  /** Publish this device's certificate unless a valid one is already there (owner devices). */
  async enrol(device: DeviceKeys, info: { kind: string; name: string }): Promise<void> {
    if (this.certificates.has(device.deviceId)) return
    const certificate = issueCertificate(this.account, device, { ...info, role: 'owner' })
    this.replica.inner.transact(() => statementsMap(this.replica.inner).set(certificateKey(device.deviceId), certificate))
    await this.replica.whenFlushed()
  }

  private ingest(keys: string[]): void {
    const statements = statementsMap(this.replica.inner)
    const changed: string[] = []
    for (const key of keys) {
      if (!key.startsWith('cert/')) continue
      const bytes = statements.get(key)
      if (!(bytes instanceof Uint8Array)) continue
      const verified = verifyCertificate(this.account, bytes)
      if (!verified.ok) {
        this.events.emit('rejected', { code: verified.code, reason: verified.reason, key })
        continue
      }
      if (`cert/${verified.value.deviceId}` !== key) continue
      this.certificates.set(verified.value.deviceId, verified.value)
      changed.push(verified.value.deviceId)
    }
    if (changed.length > 0) this.events.emit('change', { deviceIds: changed })
  }
}
