/**
 * Relay authentication as ordered hooks (hocuspocus `onAuthenticate` style).
 *
 * On every WebSocket upgrade the relay runs its auth hooks in order, before it sends anything:
 * a hook returns the connection's identity, returns nothing to pass, or throws a
 * {@link RelayRefusal} carrying the close code. The default chain is one {@link tokenAuth} hook:
 * it verifies the access token (certificate chain to the account root, room, time window —
 * WIRE.md "Relay access token") and refuses a reused nonce, because tokens are single-use.
 *
 * Revocation plugs in two ways: `tokenAuth({ revoked })` refuses new connections of revoked
 * devices, and `relay.closeDevice(accountId, deviceId)` closes the live ones.
 *
 * A token only gates the connection attempt: a live connection is not closed when its token
 * expires, since reconnecting every few minutes would cost every device radio time for nothing.
 * It is closed when the device's *access* ends — the root-signed end of a temporary grant or
 * membership in its relay pass (`RelayIdentity.until`) — and no token admits it afterwards.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http'
import type { AccessGrant } from '../crypto/token.js'
import { RejectCode, verifyAccessToken } from '../crypto/index.js'
import { ContextSyncError } from '../errors.js'
import { CloseCode } from '../wire/close-codes.js'
import { NonceCache } from './nonce-cache.js'

export { NonceCache, type NonceCacheOptions } from './nonce-cache.js'

/** What an auth hook sees about a connection attempt. */
export interface AuthContext {
  /** The room from the URL path, percent-decoded. */
  roomId: string
  /** The `token` query parameter, if any. Never log it. */
  token: string | undefined
  /** The HTTP upgrade request (headers, remote address). */
  request: IncomingMessage
  /** The identity set by an earlier hook, if any. */
  identity: RelayIdentity | undefined
}

/** Who a connection belongs to once authenticated. */
export interface RelayIdentity {
  /** Namespace for quotas (32 hex chars with token auth). */
  accountId: string
  /** Device id (32 hex chars with token auth), for revocation. */
  deviceId: string
  /**
   * When the device's access to this room ends (ms), from the root-signed end in its relay pass
   * (a temporary grant or membership): the relay closes the connection then.
   */
  until?: number
}

/**
 * Thrown by an auth hook to refuse a connection with a close code. A {@link ContextSyncError} with
 * code `relay-refused`; the WebSocket close code the client receives is `closeCode`
 * (`src/wire/close-codes.ts`).
 */
export class RelayRefusal extends ContextSyncError {
  override readonly name = 'RelayRefusal'
  declare readonly code: 'relay-refused'
  /**
   * @param closeCode the close code sent to the client
   * @param reason a short, fixed text for the close frame and logs — never a token or payload
   */
  constructor(
    readonly closeCode: CloseCode,
    readonly reason: string,
    /**
     * A y-protocols message sent before the close frame — the root-signed revocation for a revoked
     * device's registry room, so the device learns why (it verifies the statement itself).
     */
    readonly notice?: Uint8Array,
  ) {
    super('relay-refused', reason)
  }
}

/**
 * One auth hook. Hooks run by descending `priority` (ties keep their order); the first one that
 * returns an identity sets it, later ones can still refuse (e.g. a revocation list).
 */
export interface AuthHook {
  /** Name for logs. */
  readonly name: string
  /** Higher runs first; default 0. */
  readonly priority?: number
  /** Return an identity, nothing (pass), or throw {@link RelayRefusal}. */
  onAuthenticate(context: AuthContext): RelayIdentity | void | Promise<RelayIdentity | void>
}

/** Room ids the token hook accepts: `<32 hex accountId>.<1–128 base64url chars>`. */
export const ROOM_ID_PATTERN = /^[0-9a-f]{32}\.[A-Za-z0-9_-]{1,128}$/

/** Options of {@link tokenAuth}. */
export interface TokenAuthOptions {
  /** Return true to refuse a device (revocations). Called after the token verifies. */
  revoked?: (identity: RelayIdentity) => boolean | Promise<boolean>
  /** Clock in ms (tests). */
  now?: () => number
  /** Tolerated clock difference in seconds; default 60. */
  clockSkewSeconds?: number
  /**
   * Longest accepted token lifetime in seconds; default {@link DEFAULT_MAX_TOKEN_LIFETIME_SECONDS}.
   * The replay cache holds every admitted nonce for this long (plus the skew), so this bounds it.
   */
  maxLifetimeSeconds?: number
  /** Replay cache to share between hooks; default a fresh one. */
  nonces?: NonceCache
  /**
   * The audiences this relay answers to (lowercase `host[:port]` as devices' URLs name it, e.g.
   * `relay.example.com` behind a TLS proxy): a token must name one, so a token a device sent to
   * another relay — or to someone posing as this one — is refused here (4403), as is one naming
   * none. Unset: not checked. (The request's `Host` header cannot stand in for it: whoever replays
   * a token writes that header too.)
   */
  audiences?: readonly string[]
  /**
   * Registry checks (revocations and superseded passes read from the account's registry room);
   * called with the verified token, throws a {@link RelayRefusal} to refuse.
   */
  check?: (grant: AccessGrant) => void | Promise<void>
  /**
   * A replay cache several relay nodes share (the store's spent nonces): called after this
   * node's own cache admitted the nonce; false refuses the token as replayed at another node.
   */
  spend?: (nonce: string, keepUntil: number) => Promise<boolean>
}

/**
 * Longest token lifetime the relay accepts by default: 10 minutes, twice what devices ask for
 * (5 minutes). It bounds the replay cache (`nonce-cache.ts`): nonces are kept for the lifetime.
 */
export const DEFAULT_MAX_TOKEN_LIFETIME_SECONDS = 600

/** Map a token verification code to the close code a client sees. */
function closeCodeFor(code: RejectCode): CloseCode {
  switch (code) {
    case RejectCode.Expired:
      return CloseCode.TokenExpired
    case RejectCode.WrongAccount:
    case RejectCode.NotGranted:
      return CloseCode.Forbidden
    default:
      return CloseCode.Unauthorized
  }
}

/**
 * The relay's token check for one connection attempt, as a function: verifies the access token
 * (`verifyAccessToken`: chain to the account root, room, audience, time window, the relay pass
 * covering the room), refuses a bad room id and a reused nonce, then runs the registry `check`
 * and `revoked`. Resolves the connection's identity or rejects with a {@link RelayRefusal}.
 * {@link tokenAuth} wraps it as the relay's auth hook; a link hub (`contextsync/link`'s
 * `linkServer`) calls it for every room a link peer opens, so both admit exactly the same tokens.
 *
 * @example
 * ```ts
 * const check = tokenCheck({ audiences: ['link'] })
 * const identity = await check(roomId, token) // throws RelayRefusal (4401/4403/4408/4409)
 * ```
 */
export function tokenCheck(options: TokenAuthOptions = {}): (roomId: string, token: string | undefined) => Promise<RelayIdentity> {
  const now = options.now ?? Date.now
  const skew = options.clockSkewSeconds ?? 60
  const maxLifetimeSeconds = options.maxLifetimeSeconds ?? DEFAULT_MAX_TOKEN_LIFETIME_SECONDS
  const nonces = options.nonces ?? new NonceCache({ now })
  return async (roomId, token) => {
    if (!token) throw new RelayRefusal(CloseCode.Unauthorized, 'missing token')
    const checked = verifyAccessToken(token, {
      roomId,
      now: now(),
      clockSkewSeconds: skew,
      maxLifetimeSeconds,
      ...(options.audiences && { audiences: options.audiences }),
    })
    if (!checked.ok) throw new RelayRefusal(closeCodeFor(checked.code), checked.reason)
    if (!ROOM_ID_PATTERN.test(roomId)) throw new RelayRefusal(CloseCode.Forbidden, 'bad room id')
    const { accountId, deviceId, nonce, expiresAt, accessUntil } = checked.value
    // Keep the nonce as long as verifyAccessToken would still accept the token. Keyed by device
    // too, so nobody can spend another device's nonce ahead of it with a token of their own.
    const key = `${deviceId}:${nonce}`
    const keepUntil = (expiresAt + skew) * 1000
    if (!nonces.claim(key, keepUntil)) throw new RelayRefusal(CloseCode.TokenReplayed, 'token already used')
    if (options.spend && !(await options.spend(key, keepUntil))) throw new RelayRefusal(CloseCode.TokenReplayed, 'token already used')
    const identity: RelayIdentity = { accountId, deviceId, ...(accessUntil !== undefined && { until: accessUntil }) }
    await options.check?.(checked.value)
    if (options.revoked && (await options.revoked(identity))) {
      throw new RelayRefusal(CloseCode.Forbidden, 'device revoked')
    }
    return identity
  }
}

/**
 * The default auth hook: verifies `?token=` with `verifyAccessToken`, refuses replays and revoked
 * devices ({@link tokenCheck}). Call `await ready()` from `src/crypto` before the first
 * connection (createRelay does).
 *
 * @example
 * ```ts
 * const relay = await createRelay({ auth: tokenAuth({ revoked: ({ deviceId }) => revokedIds.has(deviceId) }) })
 * ```
 */
export function tokenAuth(options: TokenAuthOptions = {}): AuthHook {
  const check = tokenCheck(options)
  return {
    name: 'token',
    priority: 100,
    async onAuthenticate({ roomId, token, identity: earlier }) {
      // A room an earlier hook admitted (a pairing room) needs no token.
      if (earlier && PAIRING_ROOM_PATTERN.test(roomId)) return earlier
      return check(roomId, token)
    },
  }
}

/** Pairing rendezvous rooms: `pair.` + 22 base64url characters (see src/crypto/pairing.ts). */
export const PAIRING_ROOM_PATTERN = /^pair\.[A-Za-z0-9_-]{22}$/

/**
 * Admits pairing rendezvous rooms without a token: a device being paired has no credentials
 * yet, and everything in the room is sealed under a key derived from the invite code. Such rooms
 * count against one shared `pairing` quota and are deleted when their last connection closes.
 */
export function pairingAuth(): AuthHook {
  return {
    name: 'pairing',
    priority: 200,
    onAuthenticate({ roomId, identity }) {
      if (identity || !PAIRING_ROOM_PATTERN.test(roomId)) return
      return { accountId: 'pairing', deviceId: 'anonymous' }
    },
  }
}

/**
 * No authentication (tests and local development only; the relay logs a loud warning). The
 * account is the room id's prefix before the first `.`, so quotas still apply per prefix.
 */
export function noAuth(): AuthHook {
  return {
    name: 'none',
    onAuthenticate({ roomId }) {
      const dot = roomId.indexOf('.')
      return { accountId: dot > 0 ? roomId.slice(0, dot) : 'anonymous', deviceId: 'anonymous' }
    },
  }
}

/** Sort hooks by descending priority, keeping the given order for ties. */
export function orderHooks(hooks: readonly AuthHook[]): AuthHook[] {
  return hooks
    .map((hook, index) => ({ hook, index }))
    .sort((a, b) => (b.hook.priority ?? 0) - (a.hook.priority ?? 0) || a.index - b.index)
    .map(({ hook }) => hook)
}

/**
 * Run `hooks` in order for one connection attempt. Resolves the identity or rejects with a
 * {@link RelayRefusal}; any other error thrown by a hook becomes a 4401 refusal, so a buggy hook
 * fails closed.
 */
export async function authenticate(
  hooks: readonly AuthHook[],
  context: Omit<AuthContext, 'identity'>,
): Promise<RelayIdentity> {
  let identity: RelayIdentity | undefined
  for (const hook of hooks) {
    let result: RelayIdentity | void
    try {
      result = await hook.onAuthenticate({ ...context, identity })
    } catch (error) {
      if (error instanceof RelayRefusal) throw error
      throw new RelayRefusal(CloseCode.Unauthorized, `auth hook ${hook.name} failed`)
    }
    if (result) identity = result
  }
  if (!identity) throw new RelayRefusal(CloseCode.Unauthorized, 'no auth hook accepted the connection')
  return identity
}
