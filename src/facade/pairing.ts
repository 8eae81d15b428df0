/**
 * Pairing (WIRE.md "Pairing"): an owner issues an invite code; the new device proves it knows the
 * code by sealing a join request under the key derived from it, in a rendezvous room named after
 * it; the owner admits the device (certificate, grants, lockboxes, relay pass in the registry) and
 * answers with the account's root public key (both answers name the device they answer). Both sides
 * can show the same short authentication string.
 *
 * The rendezvous room holds an ordinary outer doc (a `log` array of sealed pairing messages), so
 * any transport carries it; a relay serves `pair.*` rooms without tokens but with tight limits.
 *
 * @module
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { Awareness } from 'y-protocols/awareness'
import type { Transport, TransportAttachment } from '../adapters/transport.js'
import { createSealedLogDoc, sealedLog } from '../crdt/sealed-log.js'
import {
  accountKeysFromPublicKey,
  createDeviceKeys,
  createInviteSecret,
  formatInviteCode,
  keyId,
  openPairingMessage,
  pairingKey,
  pairingRoomId,
  pairingSas,
  parseInviteCode,
  PairingMessageType,
  sealPairingMessage,
  type AccountKeys,
  type DeviceKeys,
} from '../crypto/index.js'
import { ContextSyncError, ValidationError } from '../errors.js'
import { toHex } from '../util/bytes.js'
import type { DeviceContext } from './device-context.js'
import { DEVICE_KINDS, isDeviceLocal, requestedProfile, type DeviceKind } from './scopes.js'
import { requireObject, requireOneOf } from './validate.js'

/** Why pairing failed (see {@link PairingError}). */
export type PairingFailure = 'refused' | 'timeout' | 'unreachable'

/**
 * Pairing failed (`code: 'pairing'`). `reason`: `refused` — the owner device answered that the code
 * was already used or has expired; `unreachable` — none of the device's transports ever connected
 * (the relay is down, the URL is wrong, no network); `timeout` — connected, but no owner device
 * answered: the code is mistyped (a wrong code names a rendezvous room nobody is in) or the
 * inviting device is offline or closed the invite.
 */
export class PairingError extends ContextSyncError {
  override name = 'PairingError'
  /** Why it failed. */
  readonly reason: PairingFailure
  constructor(reason: PairingFailure, message: string) {
    super('pairing', message)
    this.reason = reason
  }
}

/** What `devices.invite` returns. */
export interface Invite {
  /** The code to type or scan on the new device (`XXXX-XXXX-XXXX-XXXX`); single use. */
  code: string
  /** When the code stops working (epoch ms). */
  expiresAt: number
  /** Six digits the new device shows too, once paired: compare them. */
  sas: string
}

/** Options of {@link InviteHost.invite}. */
export interface InviteOptions {
  kind: DeviceKind
  name?: string
  /**
   * The scopes the new device will hold — exactly these (plus `local`, which every device has).
   * Omitted: whatever the scopes' policies give its kind. Each listed scope must let its kind in,
   * and every scope whose policy holds its kind must be listed: an invite neither widens nor
   * narrows a policy (change it with `scopes.define`, or grant one device more with `scopes.grant`
   * once it joined). A mismatch throws `ValidationError` naming the scope and its policy.
   */
  scopes?: string[]
  /** How long the code works (ms); default 10 minutes. */
  expiresIn?: number
}

/** Options of `ContextSync.join`. */
export interface JoinOptions {
  /** The invite code from the owner device. */
  invite: string
  /** What this device is. */
  device: { kind: DeviceKind; name?: string }
  /** Give up after this long (ms); default 60 s. */
  timeoutMs?: number
  /** Called with the short authentication string to show, once the owner answered. */
  onSas?: (sas: string) => void
}

/** The owner side: keeps rendezvous rooms open while invites are valid and admits devices. */
export class InviteHost {
  private readonly open = new Set<{ close(): void }>()

  constructor(private readonly ctx: DeviceContext) {}

  /** Create an invite and wait for the new device in its rendezvous room. */
  invite(options: InviteOptions): Invite {
    const fields = requireObject(options, 'invite(options)')
    const kind = requireOneOf(fields.kind, DEVICE_KINDS, 'kind')
    const name = fields.name === undefined ? undefined : String(fields.name).slice(0, 200)
    if (fields.scopes !== undefined) {
      const known = this.ctx.registry.scopeNames()
      requireScopesOfKind(kind, requireScopes(fields.scopes, known), known, (scope) => this.ctx.registry.definition(scope)?.kinds)
    }
    // The kind's policy gives the device its scopes; nothing to grant beyond it.
    const scopes: string[] = []
    const expiresIn = fields.expiresIn === undefined ? 10 * 60_000 : Number(fields.expiresIn)
    if (!Number.isFinite(expiresIn) || expiresIn <= 0 || expiresIn > 24 * 3600_000) {
      throw new ValidationError('expiresIn must be a number of milliseconds between 1 and 86 400 000')
    }
    const secret = createInviteSecret()
    const key = pairingKey(secret)
    const roomId = pairingRoomId(secret)
    const expiresAt = Date.now() + expiresIn
    const channel = openChannel(roomId, this.ctx.transports)
    let used = false
    const entry = {
      close: () => {
        clearTimeout(timer)
        channel.close()
        this.open.delete(entry)
      },
    }
    let timer = setTimeout(entry.close, expiresIn)
    ;(timer as { unref?: () => void }).unref?.()
    this.open.add(entry)
    channel.onMessage((bytes) => {
      const opened = openPairingMessage(key, roomId, bytes)
      if (!opened.ok || opened.value.type !== PairingMessageType.JoinRequest) return
      const request = decodeJoinRequest(opened.value.body)
      if (!request) return
      // Answers name the device they answer, so a later joiner never takes an earlier answer.
      if (used || Date.now() > expiresAt) {
        channel.send(sealPairingMessage(key, roomId, PairingMessageType.Refused, request.deviceIdBytes))
        return
      }
      used = true
      void this.admit(request, { kind, name: name ?? request.name, scopes }).then(
        (pass) => {
          // Root key, the device it answers, and its relay pass (it needs one to reach the relay
          // before it can read the registry that holds it).
          const welcome = new Uint8Array(32 + 16 + pass.length)
          welcome.set(this.ctx.account.rootPublicKey)
          welcome.set(request.deviceIdBytes, 32)
          welcome.set(pass, 48)
          channel.send(sealPairingMessage(key, roomId, PairingMessageType.Welcome, welcome))
          // Leave the room open a little so the welcome is delivered, then close it (sooner when
          // the device closes; never keeping the process alive).
          clearTimeout(timer)
          timer = setTimeout(entry.close, 5_000)
          ;(timer as { unref?: () => void }).unref?.()
        },
        () => {
          used = false
        },
      )
    })
    return { code: formatInviteCode(secret), expiresAt, sas: pairingSas(key, this.ctx.account.rootPublicKey) }
  }

  /** Close every rendezvous room. */
  close(): void {
    for (const entry of [...this.open]) entry.close()
  }

  private admit(request: JoinRequest, info: { kind: DeviceKind; name: string; scopes: string[] }): Promise<Uint8Array> {
    return this.ctx.registry.admit(
      { deviceId: request.deviceId, deviceIdBytes: request.deviceIdBytes, signPublicKey: request.signPublicKey, boxPublicKey: request.boxPublicKey },
      { kind: info.kind, name: info.name },
      info.scopes,
    )
  }
}

/** The new device's side: returns its keys and the account once the owner welcomed it. */
export async function joinWithInvite(
  options: JoinOptions,
  transports: Transport[],
): Promise<{ device: DeviceKeys; account: AccountKeys; relayPass: Uint8Array; profile: { kind: DeviceKind; name: string } }> {
  const fields = requireObject(options, 'join(options)')
  const secret = typeof fields.invite === 'string' ? parseInviteCode(fields.invite) : undefined
  if (!secret) throw new ValidationError('invite must be a code like XXXX-XXXX-XXXX-XXXX (16 letters and digits)')
  const { kind, name } = requestedProfile(requireObject(fields.device, 'device'))!
  const timeoutMs = fields.timeoutMs === undefined ? 60_000 : Number(fields.timeoutMs)
  const device = createDeviceKeys()
  const key = pairingKey(secret)
  const roomId = pairingRoomId(secret)
  const channel = openChannel(roomId, transports)
  try {
    const answer = await new Promise<{ type: PairingMessageType; body: Uint8Array }>((resolve, reject) => {
      const timer = setTimeout(() => {
        const reached = channel.reached()
        reject(
          reached.connected
            ? new PairingError(
                'timeout',
                `reached the relay, but no owner device answered within ${timeoutMs} ms: check the code (a mistyped one reaches nobody), and that the inviting device is online with the invite open`,
              )
            : new PairingError(
                'unreachable',
                `could not reach the relay within ${timeoutMs} ms${reached.lastError ? ` (${reached.lastError})` : ''}: check its URL and that it is running`,
              ),
        )
      }, timeoutMs)
      channel.onMessage((bytes) => {
        const opened = openPairingMessage(key, roomId, bytes)
        if (!opened.ok || opened.value.type === PairingMessageType.JoinRequest) return
        const body = opened.value.body
        const addressee = opened.value.type === PairingMessageType.Welcome ? body.subarray(32, 48) : body
        if (toHex(addressee) !== device.deviceId) return
        clearTimeout(timer)
        resolve(opened.value)
      })
      channel.send(sealPairingMessage(key, roomId, PairingMessageType.JoinRequest, encodeJoinRequest(device, kind, name)))
    })
    if (answer.type === PairingMessageType.Refused) {
      throw new PairingError('refused', 'the owner device refused this code: it was already used or has expired')
    }
    if (answer.body.length <= 48) throw new PairingError('refused', 'the owner device sent a malformed welcome')
    // The welcome is authentic (only a holder of the code can seal under the pairing key); the
    // pass inside is verified against the root like every statement.
    const account = accountKeysFromPublicKey(answer.body.slice(0, 32))
    const relayPass = answer.body.slice(48)
    if (typeof fields.onSas === 'function') (fields.onSas as (sas: string) => void)(pairingSas(key, account.rootPublicKey))
    return { device, account, relayPass, profile: { kind, name } }
  } finally {
    channel.close()
  }
}

interface JoinRequest {
  deviceId: string
  deviceIdBytes: Uint8Array
  signPublicKey: Uint8Array
  boxPublicKey: Uint8Array
  kind: string
  name: string
}

function encodeJoinRequest(device: DeviceKeys, kind: string, name: string): Uint8Array {
  const enc = encoding.createEncoder()
  encoding.writeUint8Array(enc, device.signPublicKey)
  encoding.writeUint8Array(enc, device.boxPublicKey)
  encoding.writeVarString(enc, kind)
  encoding.writeVarString(enc, name)
  return encoding.toUint8Array(enc)
}

function decodeJoinRequest(body: Uint8Array): JoinRequest | undefined {
  try {
    const dec = decoding.createDecoder(body)
    const signPublicKey = decoding.readUint8Array(dec, 32).slice()
    const boxPublicKey = decoding.readUint8Array(dec, 32).slice()
    const kind = decoding.readVarString(dec)
    const name = decoding.readVarString(dec).slice(0, 200)
    if (decoding.hasContent(dec)) return undefined
    const deviceIdBytes = keyId(signPublicKey)
    return { deviceId: toHex(deviceIdBytes), deviceIdBytes, signPublicKey, boxPublicKey, kind, name }
  } catch {
    return undefined
  }
}

function requireScopes(value: unknown, known: string[]): string[] {
  if (!Array.isArray(value)) throw new ValidationError('scopes must be an array of scope names')
  for (const scope of value) {
    if (typeof scope !== 'string' || !known.includes(scope)) {
      throw new ValidationError(`unknown scope ${JSON.stringify(scope)}; known scopes: ${known.join(', ')}`)
    }
  }
  return [...new Set(value as string[])]
}

/**
 * An invite's `scopes` are the exact set the device will hold, so they must match what the
 * scopes' policies give its kind: a car listed for `health` (phone and glasses) would otherwise be
 * granted it silently, and one not listed for `location` would get it anyway.
 */
function requireScopesOfKind(
  kind: DeviceKind,
  listed: string[],
  known: string[],
  policyKinds: (scope: string) => readonly string[] | undefined,
): void {
  for (const scope of listed) {
    if (isDeviceLocal(scope)) continue
    const kinds = policyKinds(scope) ?? []
    if (!kinds.includes(kind)) {
      throw new ValidationError(
        `a ${kind} cannot be invited to ${scope}: its policy is for ${describeKinds(kinds)}; ` +
          `widen it first (scopes.define('${scope}', { kinds: [...] })) or grant this one device once it joined (scopes.grant)`,
      )
    }
  }
  const missing = known.filter((scope) => !isDeviceLocal(scope) && !listed.includes(scope) && (policyKinds(scope) ?? []).includes(kind))
  if (missing.length > 0) {
    throw new ValidationError(
      `a ${kind} holds ${missing.join(', ')} by policy, but the invite does not list ${missing.length === 1 ? 'it' : 'them'}; ` +
        `list ${missing.length === 1 ? 'it' : 'them'}, leave scopes out, or narrow the policy first (scopes.define)`,
    )
  }
}

function describeKinds(kinds: readonly string[]): string {
  return kinds.length === 0 ? 'no device kind' : kinds.join(', ')
}

/** A rendezvous room: an outer doc attached to every transport, carrying sealed messages. */
function openChannel(roomId: string, transports: Transport[]) {
  const doc = createSealedLogDoc()
  const awareness = new Awareness(doc)
  awareness.setLocalState(null)
  const attachments: TransportAttachment[] = transports.map((t) => t.attach({ roomId, doc, awareness }))
  // Whether any transport ever connected, to tell an unreachable relay from a silent room.
  let connected = attachments.some((a) => a.status === 'connected' || a.status === 'synced')
  let lastError: string | undefined
  for (const attachment of attachments) {
    attachment.on('status', ({ status }) => {
      if (status === 'connected' || status === 'synced') connected = true
    })
    attachment.on('error', ({ message }) => (lastError = message))
  }
  const log = sealedLog(doc)
  const origin = Symbol('pairing')
  return {
    reached(): { connected: boolean; lastError?: string } {
      return lastError === undefined ? { connected } : { connected, lastError }
    },
    send(bytes: Uint8Array) {
      Y.transact(doc, () => log.push([bytes]), origin)
    },
    onMessage(fn: (bytes: Uint8Array) => void) {
      log.observe((event, transaction) => {
        if (transaction.origin === origin) return
        for (const item of event.changes.added) for (const content of item.content.getContent()) fn(content as Uint8Array)
      })
      for (const bytes of log.toArray()) fn(bytes)
    },
    close() {
      for (const attachment of attachments) attachment.detach()
      awareness.destroy()
      doc.destroy()
    },
  }
}
