/**
 * Pairing (WIRE.md "Pairing"): an owner issues an invite code; the new device proves it knows the
 * code by sealing a join request under the key derived from it, in a rendezvous room named after
 * it. The owner answers with the account's root key and a nonce, the joiner reveals the nonce it
 * had committed to, and both show six digits over that whole exchange; each side's `confirm`
 * callback (the user comparing the digits on both screens) decides. Only when both confirmed does
 * the owner admit the device (certificate, lockboxes, relay pass in the registry) and welcome it.
 * A mismatch on either side aborts both with a `PairingError` and ends the invite (someone else
 * may hold the code: ask for a new one); an invite answers at most {@link MAX_PAIRING_ATTEMPTS}
 * requests.
 *
 * Without a `confirm` callback a side accepts on the code alone: right when the code reached the
 * new device over a channel nobody else saw (typed by the owner, a QR code scanned off the owner's
 * screen); whoever read the code could otherwise pair in its place.
 *
 * @module
 */
import type { Transport } from '../adapters/transport.js'
import {
  accountKeysFromPublicKey,
  createDeviceKeys,
  createInviteSecret,
  formatInviteCode,
  MAX_PAIRING_ATTEMPTS,
  pairingCommitment,
  pairingKey,
  pairingRoomId,
  pairingSas,
  parseInviteCode,
  PAIRING_NONCE_BYTES,
  PairingMessageType,
  randomBytes,
  constantTimeEqual,
  type AccountKeys,
  type DeviceKeys,
} from '../crypto/index.js'
import { ContextSyncError, ValidationError } from '../errors.js'
import { unref } from '../util/timers.js'
import type { DeviceContext } from './device-context.js'
import { openPairingChannel, readNonce, type JoinRequest, type PairingChannel } from './pairing-channel.js'
import { DEVICE_KINDS, isDeviceLocal, requestedProfile, type DeviceKind } from './builtin-scopes.js'
import { requireFutureTime, requireObject, requireOneOf } from './check-args.js'

/** Why pairing failed (see {@link PairingError}). */
export type PairingFailure = 'refused' | 'timeout' | 'unreachable' | 'mismatch'

/**
 * Pairing failed (`code: 'pairing'`). `reason`: `refused` — the owner device answered that the code
 * was already used, has expired or had too many attempts; `unreachable` — none of the device's
 * transports ever connected (the relay is down, the URL is wrong, no network); `timeout` —
 * connected, but no answer came: the code is mistyped (a wrong code names a rendezvous room nobody
 * is in), the other device is offline or closed the invite, or a user never confirmed; `mismatch`
 * — a user said the digits on the two screens differ (someone else may hold the code), on either
 * side.
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

/** A device asking to join, as the owner's `confirm` callback sees it. */
export interface PairingRequest {
  /** The six digits this device shows; the new device must show the same. */
  sas: string
  /** The new device's id (its certificate will carry it). */
  deviceId: string
  /** The kind and name it asked for (the invite's kind is what it gets). */
  kind: string
  name: string
}

/** What `devices.invite` returns. */
export interface Invite {
  /** The code to type or scan on the new device (`XXXX-XXXX-XXXX-XXXX`); single use. */
  code: string
  /** When the code stops working (epoch ms). */
  expiresAt: number
  /**
   * Settles with the outcome: the new device's id once it was admitted, or a `PairingError`
   * (`mismatch` when the digits differed on either side — the invite is over; `timeout` when it
   * expired or was cancelled unused). Made on first call, so ignoring it leaves no unhandled
   * rejection.
   */
  result(): Promise<{ deviceId: string }>
  /** Stop answering this code (also done by `close()`). */
  cancel(): void
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
  /**
   * When the device's membership ends (ms since the epoch): a rental or loaner car. The end is
   * root-signed with its certificate; from then on the owners rotate every scope it could read
   * without it, the relay refuses it, and the device purges the account's keys and data (running,
   * or on its next start). `devices.extend` moves it later. Omitted: a member for good.
   */
  until?: number
  /**
   * Show `request.sas` and ask the user whether the new device shows the same digits; resolve
   * `true` to admit it. Without it, the first device holding the code is admitted (see the module
   * notes for when that is right).
   */
  confirm?: (request: PairingRequest) => boolean | Promise<boolean>
}

/** Options of `ContextSync.join`. */
export interface JoinOptions {
  /** The invite code from the owner device. */
  invite: string
  /** What this device is. */
  device: { kind: DeviceKind; name?: string }
  /** Give up after this long (ms); default 60 s. */
  timeoutMs?: number
  /** Called with the short authentication string to show, as soon as it is known. */
  onSas?: (sas: string) => void
  /**
   * Show `sas` and ask the user whether the owner device shows the same digits; resolve `true` to
   * go on. Without it, this device goes on whatever the owner's digits are.
   */
  confirmSas?: (sas: string) => boolean | Promise<boolean>
}

/** One join attempt the owner is answering. */
interface Attempt {
  request: JoinRequest
  ownerNonce: Uint8Array
  sas?: string
  /** The joiner's user confirmed (its Confirm message arrived). */
  joinerConfirmed: boolean
  /** This device's user confirmed. */
  ownerConfirmed: boolean
  done: boolean
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
    const expiresIn = fields.expiresIn === undefined ? 10 * 60_000 : Number(fields.expiresIn)
    if (!Number.isFinite(expiresIn) || expiresIn <= 0 || expiresIn > 24 * 3600_000) {
      throw new ValidationError('expiresIn must be a number of milliseconds between 1 and 86 400 000')
    }
    if (fields.confirm !== undefined && typeof fields.confirm !== 'function') throw new ValidationError('confirm must be a function')
    const until = fields.until === undefined ? undefined : requireFutureTime(fields.until, 'until')
    const confirm = fields.confirm as InviteOptions['confirm']
    const secret = createInviteSecret()
    const key = pairingKey(secret)
    const roomId = pairingRoomId(secret)
    const expiresAt = Date.now() + expiresIn
    const channel = openPairingChannel(roomId, key, this.ctx.transports)
    const attempts = new Map<string, Attempt>()
    let admitted = false
    let admitting = false
    /** A mismatch ended the invite. */
    let dead = false
    let outcome: { deviceId: string } | PairingError | undefined
    let settle: ((value: { deviceId: string } | PairingError) => void) | undefined
    let resultPromise: Promise<{ deviceId: string }> | undefined
    const finish = (value: { deviceId: string } | PairingError): void => {
      if (outcome) return
      outcome = value
      settle?.(value)
    }
    const entry = {
      close: () => {
        clearTimeout(timer)
        channel.close()
        this.open.delete(entry)
        finish(new PairingError('timeout', admitted ? 'closed' : 'the invite was closed before a device joined'))
      },
    }
    let timer = setTimeout(() => {
      finish(new PairingError('timeout', 'the invite expired before a device joined'))
      entry.close()
    }, expiresIn)
    unref(timer)
    this.open.add(entry)

    const abort = (attempt: Attempt, error: PairingError, tell: boolean): void => {
      if (attempt.done) return
      attempt.done = true
      if (tell) channel.send(PairingMessageType.Abort, attempt.request.deviceIdBytes)
      // Digits that differ mean someone else may hold the code: it answers nobody any more.
      dead = true
      finish(error)
    }
    const maybeAdmit = (attempt: Attempt): void => {
      if (attempt.done || !attempt.ownerConfirmed || !attempt.joinerConfirmed || admitting || admitted) return
      admitting = true
      void this.admit(attempt.request, { kind, name: name ?? attempt.request.name }, until).then(
        (pass) => {
          admitted = true
          attempt.done = true
          // Root key and relay pass (it needs one to reach the relay before it can read the registry).
          const welcome = new Uint8Array(32 + pass.length)
          welcome.set(this.ctx.account.rootPublicKey)
          welcome.set(pass, 32)
          channel.send(PairingMessageType.Welcome, attempt.request.deviceIdBytes, welcome)
          finish({ deviceId: attempt.request.deviceId })
          // Leave the room open a little so the welcome is delivered, then close it (sooner when
          // the device closes; never keeping the process alive).
          clearTimeout(timer)
          timer = setTimeout(entry.close, 5_000)
          unref(timer)
        },
        () => {
          admitting = false
        },
      )
    }

    channel.onMessage((message) => {
      if (message.type === PairingMessageType.JoinRequest) {
        const request = message.request!
        if (attempts.has(request.deviceId)) return
        // Answers name the device they answer, so a later joiner never takes an earlier answer.
        if (admitted || dead || Date.now() > expiresAt || attempts.size >= MAX_PAIRING_ATTEMPTS) {
          channel.send(PairingMessageType.Refused, request.deviceIdBytes)
          return
        }
        const attempt: Attempt = { request, ownerNonce: randomBytes(PAIRING_NONCE_BYTES), joinerConfirmed: false, ownerConfirmed: false, done: false }
        attempts.set(request.deviceId, attempt)
        const offer = new Uint8Array(32 + PAIRING_NONCE_BYTES)
        offer.set(this.ctx.account.rootPublicKey)
        offer.set(attempt.ownerNonce, 32)
        channel.send(PairingMessageType.Offer, request.deviceIdBytes, offer)
        return
      }
      const attempt = attempts.get(message.deviceId)
      if (!attempt || attempt.done) return
      if (message.type === PairingMessageType.Reveal && attempt.sas === undefined) {
        const joinerNonce = readNonce(message.rest)
        // A nonce other than the one committed to: someone chose it after seeing ours.
        if (!joinerNonce || !constantTimeEqual(pairingCommitment(joinerNonce), attempt.request.commitment)) {
          return abort(attempt, new PairingError('mismatch', 'the new device revealed a nonce it had not committed to'), true)
        }
        const { signPublicKey, boxPublicKey } = attempt.request
        attempt.sas = pairingSas(key, { rootPublicKey: this.ctx.account.rootPublicKey, signPublicKey, boxPublicKey, ownerNonce: attempt.ownerNonce, joinerNonce })
        const request: PairingRequest = { sas: attempt.sas, deviceId: attempt.request.deviceId, kind: attempt.request.kind, name: attempt.request.name }
        void Promise.resolve()
          .then(() => (confirm ? confirm(request) : true))
          .then(
            (ok) => {
              if (ok !== true) return abort(attempt, new PairingError('mismatch', 'the digits were not confirmed on this device'), true)
              attempt.ownerConfirmed = true
              maybeAdmit(attempt)
            },
            () => abort(attempt, new PairingError('mismatch', 'confirming the digits failed on this device'), true),
          )
      } else if (message.type === PairingMessageType.Confirm && attempt.sas !== undefined) {
        attempt.joinerConfirmed = true
        maybeAdmit(attempt)
      } else if (message.type === PairingMessageType.Abort) {
        abort(attempt, new PairingError('mismatch', 'the new device said the digits do not match'), false)
      }
    })
    return {
      code: formatInviteCode(secret),
      expiresAt,
      result: () =>
        (resultPromise ??= new Promise<{ deviceId: string }>((resolve, reject) => {
          settle = (value) => (value instanceof PairingError ? reject(value) : resolve(value))
          if (outcome) settle(outcome)
        })),
      cancel: () => entry.close(),
    }
  }

  /** Close every rendezvous room. */
  close(): void {
    for (const entry of [...this.open]) entry.close()
  }

  private admit(request: JoinRequest, info: { kind: DeviceKind; name: string }, until: number | undefined): Promise<Uint8Array> {
    // The kind's policy gives the device its scopes (an invite's `scopes` only check it): no grants.
    return this.ctx.registry.admit(
      { deviceId: request.deviceId, deviceIdBytes: request.deviceIdBytes, signPublicKey: request.signPublicKey, boxPublicKey: request.boxPublicKey },
      { kind: info.kind, name: info.name },
      [],
      until,
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
  for (const callback of ['onSas', 'confirmSas'] as const) {
    if (fields[callback] !== undefined && typeof fields[callback] !== 'function') throw new ValidationError(`${callback} must be a function`)
  }
  const onSas = fields.onSas as JoinOptions['onSas']
  const confirmSas = fields.confirmSas as JoinOptions['confirmSas']
  const device = createDeviceKeys()
  const key = pairingKey(secret)
  const roomId = pairingRoomId(secret)
  const joinerNonce = randomBytes(PAIRING_NONCE_BYTES)
  const channel = openPairingChannel(roomId, key, transports)
  try {
    const welcome = await new Promise<{ rootPublicKey: Uint8Array; relayPass: Uint8Array }>((resolve, reject) => {
      let rootPublicKey: Uint8Array | undefined
      const timer = setTimeout(() => reject(timeoutError(channel, timeoutMs, rootPublicKey !== undefined)), timeoutMs)
      const fail = (error: PairingError): void => {
        clearTimeout(timer)
        reject(error)
      }
      channel.onMessage((message) => {
        if (message.deviceId !== device.deviceId || message.type === PairingMessageType.JoinRequest) return
        switch (message.type) {
          case PairingMessageType.Refused:
            return fail(new PairingError('refused', 'the owner device refused this code: it was already used, has expired, or had too many attempts'))
          case PairingMessageType.Abort:
            return fail(new PairingError('mismatch', 'the owner device said the digits do not match; someone else may hold this code — ask for a new one'))
          case PairingMessageType.Offer: {
            if (rootPublicKey || message.rest.length !== 32 + PAIRING_NONCE_BYTES) return
            rootPublicKey = message.rest.slice(0, 32)
            const ownerNonce = message.rest.slice(32)
            channel.send(PairingMessageType.Reveal, device.deviceIdBytes, joinerNonce)
            const sas = pairingSas(key, { rootPublicKey, signPublicKey: device.signPublicKey, boxPublicKey: device.boxPublicKey, ownerNonce, joinerNonce })
            onSas?.(sas)
            void Promise.resolve()
              .then(() => (confirmSas ? confirmSas(sas) : true))
              .then(
                (ok) => {
                  if (ok === true) return channel.send(PairingMessageType.Confirm, device.deviceIdBytes)
                  channel.send(PairingMessageType.Abort, device.deviceIdBytes)
                  fail(new PairingError('mismatch', 'the digits were not confirmed on this device'))
                },
                () => {
                  channel.send(PairingMessageType.Abort, device.deviceIdBytes)
                  fail(new PairingError('mismatch', 'confirming the digits failed on this device'))
                },
              )
            return
          }
          case PairingMessageType.Welcome: {
            // Only the owner that made the offer: its root key comes first in the welcome.
            if (!rootPublicKey || message.rest.length <= 32 || !constantTimeEqual(message.rest.subarray(0, 32), rootPublicKey)) return
            clearTimeout(timer)
            resolve({ rootPublicKey, relayPass: message.rest.slice(32) })
            return
          }
        }
      })
      channel.sendRequest(device, kind, name, pairingCommitment(joinerNonce))
    })
    // The welcome is authentic (only a holder of the code can seal under the pairing key) and from
    // the owner whose offer the digits covered; the pass inside is verified against the root like
    // every statement.
    return { device, account: accountKeysFromPublicKey(welcome.rootPublicKey), relayPass: welcome.relayPass, profile: { kind, name } }
  } finally {
    channel.close()
  }
}

function timeoutError(channel: PairingChannel, timeoutMs: number, offered: boolean): PairingError {
  const reached = channel.reached()
  if (offered) return new PairingError('timeout', `the owner device answered but did not admit this device within ${timeoutMs} ms: were the digits confirmed on it?`)
  if (reached.connected) {
    return new PairingError(
      'timeout',
      `reached the relay, but no owner device answered within ${timeoutMs} ms: check the code (a mistyped one reaches nobody), and that the inviting device is online with the invite open`,
    )
  }
  return new PairingError('unreachable', `could not reach the relay within ${timeoutMs} ms${reached.lastError ? ` (${reached.lastError})` : ''}: check its URL and that it is running`)
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
