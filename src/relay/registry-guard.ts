/**
 * Defense in depth for the relay (THREAT_MODEL.md, the relay; WIRE.md "Signed statements"): it
 * reads the *public* statements of each account's registry room (`<accountId>.registry`, map
 * `public`) — revocations and relay passes, all signed by the account root — and refuses revoked
 * devices and superseded passes, closing the live connections of a device the moment its revocation
 * arrives. It never holds a key: everything it checks is verified against the root public key
 * carried in the devices' own tokens.
 *
 * A verified revocation is kept in the relay's own store (`persistence.ts`) and loaded — verified
 * again — at start: the public map is writable by every member of the account, so deleting
 * `revoke/<id>` there, or wiping the registry room, must not let the device back in, before or
 * after a relay restart (THREAT_MODEL.md, anyone who can reach the relay). Nothing ever removes a
 * revocation from the guard. The newest pass of each device is kept in the store the same way and
 * read — verified again — with the account's registry room on its first token (after a restart, or
 * once the account left the bounded cache), so an older pass, such as one a temporary pass ending
 * earlier superseded, stays refused after `pass/<id>` was deleted from the public map.
 *
 * @module
 */
import * as Y from 'yjs'
import * as encoding from 'lib0/encoding'
import * as syncProtocol from 'y-protocols/sync'
import { accountKeysFromPublicKey, verifyRelayPass, verifyRevocation, type AccountKeys } from '../crypto/index.js'
import { PUBLIC_STATEMENTS_KEY, revocationKey } from '../crdt/registry.js'
import { CloseCode } from '../wire/close-codes.js'
import { MessageType } from '../wire/messages.js'
import { RelayRefusal } from './auth.js'
import type { RelayStorage } from './accounting.js'
import type { StoredRevocation } from './store.js'

interface AccountState {
  root: AccountKeys
  /** Revoked device id → its (verified) revocation statement. */
  revoked: Map<string, Uint8Array>
  /** Device id → `issuedAt` of the newest verified pass seen (registry room, store, peers). */
  passes: Map<string, number>
  /** Whether the stored registry room was read (states made from kept revocations are not). */
  registryRead: boolean
}

const REGISTRY_SUFFIX = '.registry'

/**
 * Accounts without revocations whose registry reading is cached. Anyone can mint accounts, so
 * the cache is bounded; an account dropped from it is read from its registry room again on its
 * next token. Accounts with revocations are always kept (their bytes count against the account's
 * stored-bytes quota, see `persistence.ts`), and so is any account whose registry room is open.
 */
export const MAX_CACHED_ACCOUNTS = 10_000

/** Tracks revocations and passes per account from the registry rooms' public maps. */
export class RegistryGuard {
  /** Accounts with a revocation, or with their registry room open: never dropped. */
  private readonly kept = new Map<string, AccountState>()
  /** Other accounts seen, least recently used first (bounded by {@link MAX_CACHED_ACCOUNTS}). */
  private readonly cached = new Map<string, AccountState>()
  /** Open registry rooms per account. */
  private readonly watching = new Map<string, number>()

  /**
   * @param storage where unloaded registry rooms are read from on first sight of an account
   * @param onRevoked called once per newly seen revocation (close the device's connections):
   *   `registry` when this node read it from a registry room (and kept it in the store), `peer`
   *   when another relay node reported it ({@link learn})
   */
  constructor(
    private readonly storage: RelayStorage,
    private readonly onRevoked: (accountId: string, deviceId: string, revocation: StoredRevocation, source: 'registry' | 'peer') => void,
    private readonly onNewerPass?: (accountId: string, rootPublicKey: Uint8Array, statement: Uint8Array) => void,
  ) {
    for (const kept of storage.revocations()) this.adopt(kept)
  }

  /**
   * A revocation another relay node reports (through the fan-out). It is verified like one read
   * from the store — the root key must be the account's and sign the statement — so a forged
   * report changes nothing. Returns true when it was new here (the device is then cut off).
   */
  learn(revocation: StoredRevocation): boolean {
    const state = this.adopt(revocation)
    if (!state) return false
    this.onRevoked(revocation.accountId, revocation.deviceId, revocation, 'peer')
    return true
  }

  /**
   * A relay pass another relay node reports: verified under the account's root (the key must
   * hash to the account id), it supersedes older passes of its device here too. Returns true when
   * it was newer than any known here.
   */
  learnPass(accountId: string, rootPublicKey: Uint8Array, statement: Uint8Array): boolean {
    const root = accountKeysFromPublicKey(rootPublicKey)
    if (root.accountId !== accountId) return false
    const pass = verifyRelayPass(root, statement)
    if (!pass.ok) return false
    let state = this.state(accountId)
    if (!state) {
      state = { root, revoked: new Map(), passes: new Map(), registryRead: false }
      this.cache(accountId, state)
    }
    if (pass.value.issuedAt <= (state.passes.get(pass.value.deviceId) ?? 0)) return false
    state.passes.set(pass.value.deviceId, pass.value.issuedAt)
    this.keepPass(accountId, root.rootPublicKey, pass.value.deviceId, pass.value.issuedAt, statement)
    return true
  }

  /**
   * Keep a newer pass in the store. A failed save is still enforced while this process runs and
   * while the pass stays in the registry room's public map.
   */
  private keepPass(accountId: string, rootPublicKey: Uint8Array, deviceId: string, issuedAt: number, statement: Uint8Array): void {
    this.storage.savePass({ accountId, deviceId, issuedAt, rootPublicKey, statement }).catch(() => {})
  }

  /** Verify a kept or reported revocation and record it; the account's state when it was new. */
  private adopt(kept: StoredRevocation): AccountState | undefined {
    const root = accountKeysFromPublicKey(kept.rootPublicKey)
    if (root.accountId !== kept.accountId) return undefined
    const revocation = verifyRevocation(root, kept.statement)
    if (!revocation.ok || revocation.value.deviceId !== kept.deviceId) return undefined
    let state = this.state(kept.accountId)
    if (!state) state = { root, revoked: new Map(), passes: new Map(), registryRead: false }
    if (state.revoked.has(kept.deviceId)) return undefined
    state.revoked.set(kept.deviceId, kept.statement)
    this.cached.delete(kept.accountId)
    this.kept.set(kept.accountId, state)
    return state
  }

  /**
   * Check a verified token's device: refuse it when revoked or when its pass is older than the
   * newest pass known for it. Learns the account's root key on first sight.
   */
  async check(grant: { accountId: string; deviceId: string; roomId: string; passIssuedAt: number; rootPublicKey: Uint8Array }): Promise<void> {
    const state = await this.account(grant.accountId, grant.rootPublicKey)
    if (state.revoked.has(grant.deviceId)) {
      const notice = registryAccount(grant.roomId) === grant.accountId ? this.revocationNotice(grant.accountId, grant.deviceId) : undefined
      throw new RelayRefusal(CloseCode.Forbidden, 'device revoked', notice)
    }
    const newest = state.passes.get(grant.deviceId)
    if (newest !== undefined && grant.passIssuedAt < newest) {
      throw new RelayRefusal(CloseCode.Forbidden, 'relay pass superseded by a newer one')
    }
  }

  /**
   * A sync update that puts a revoked device's revocation statement into its registry doc: sent to
   * the device before its registry connection is closed (at the cut-off, and when it comes back),
   * so it learns it was revoked. It holds nothing but that root-signed statement, which the device
   * verifies like any other; `undefined` when the device is not revoked.
   */
  revocationNotice(accountId: string, deviceId: string): Uint8Array | undefined {
    const statement = this.state(accountId)?.revoked.get(deviceId)
    if (!statement) return undefined
    const doc = new Y.Doc()
    doc.getMap<Uint8Array>(PUBLIC_STATEMENTS_KEY).set(revocationKey(deviceId), statement)
    const encoder = encoding.createEncoder()
    encoding.writeVarUint(encoder, MessageType.Sync)
    syncProtocol.writeUpdate(encoder, Y.encodeStateAsUpdate(doc))
    doc.destroy()
    return encoding.toUint8Array(encoder)
  }

  /** Follow a loaded room: registry rooms feed the guard as their public map changes. */
  watch(roomId: string, doc: Y.Doc): void {
    const accountId = registryAccount(roomId)
    if (!accountId) return
    const map = doc.getMap<Uint8Array>(PUBLIC_STATEMENTS_KEY)
    this.watching.set(accountId, (this.watching.get(accountId) ?? 0) + 1)
    this.keep(accountId)
    map.observe((event) => {
      const state = this.state(accountId)
      if (state) this.ingest(accountId, state, map, [...event.keysChanged])
    })
    const state = this.state(accountId)
    if (state) this.ingest(accountId, state, map, [...map.keys()])
  }

  /** The registry room `roomId` was unloaded: its account may leave the cache again. */
  unwatch(roomId: string): void {
    const accountId = registryAccount(roomId)
    if (!accountId) return
    const left = (this.watching.get(accountId) ?? 1) - 1
    if (left > 0) return void this.watching.set(accountId, left)
    this.watching.delete(accountId)
    const state = this.kept.get(accountId)
    if (state && state.revoked.size === 0) {
      this.kept.delete(accountId)
      this.cache(accountId, state)
    }
  }

  /** Revoked devices kept over all accounts (tests, metrics). */
  get revokedCount(): number {
    let count = 0
    for (const state of this.kept.values()) count += state.revoked.size
    return count
  }

  /** Accounts held in memory (metrics): kept plus cached. */
  get accountCount(): number {
    return this.kept.size + this.cached.size
  }

  private state(accountId: string): AccountState | undefined {
    return this.kept.get(accountId) ?? this.cached.get(accountId)
  }

  /** Move an account's state (if any) out of the bounded cache. */
  private keep(accountId: string): void {
    const state = this.cached.get(accountId)
    if (!state) return
    this.cached.delete(accountId)
    this.kept.set(accountId, state)
  }

  /** Put a state at the recent end of the cache, dropping the least recently used past the bound. */
  private cache(accountId: string, state: AccountState): void {
    this.cached.delete(accountId)
    this.cached.set(accountId, state)
    for (const oldest of this.cached.keys()) {
      if (this.cached.size <= MAX_CACHED_ACCOUNTS) break
      this.cached.delete(oldest)
    }
  }

  private async account(accountId: string, rootPublicKey: Uint8Array): Promise<AccountState> {
    let state = this.kept.get(accountId)
    if (!state) {
      state = this.cached.get(accountId)
      if (state) this.cache(accountId, state)
    }
    if (state?.registryRead) return state
    if (!state) {
      state = { root: accountKeysFromPublicKey(rootPublicKey), revoked: new Map(), passes: new Map(), registryRead: false }
      if (this.watching.has(accountId)) this.kept.set(accountId, state)
      else this.cache(accountId, state)
    }
    // First sight of this account: read what its registry room already holds, and the passes kept.
    const [rows, keptPasses] = await Promise.all([this.storage.store.load(`${accountId}${REGISTRY_SUFFIX}`), this.storage.store.passes(accountId)])
    if (state.registryRead) return state
    state.registryRead = true
    for (const kept of keptPasses) {
      // Verified under the account's root again: a row the store holds proves nothing by itself.
      const pass = verifyRelayPass(state.root, kept.statement)
      if (!pass.ok || pass.value.deviceId !== kept.deviceId) continue
      if (pass.value.issuedAt > (state.passes.get(kept.deviceId) ?? 0)) state.passes.set(kept.deviceId, pass.value.issuedAt)
    }
    const doc = new Y.Doc()
    for (const { data: update } of rows) {
      try {
        Y.applyUpdate(doc, update)
      } catch {
        // A stored row the relay cannot apply is skipped here as it is when the room loads.
      }
    }
    const map = doc.getMap<Uint8Array>(PUBLIC_STATEMENTS_KEY)
    this.ingest(accountId, state, map, [...map.keys()])
    doc.destroy()
    return state
  }

  private ingest(accountId: string, state: AccountState, map: Y.Map<Uint8Array>, keys: string[]): void {
    for (const key of keys) {
      const bytes = map.get(key)
      if (!(bytes instanceof Uint8Array)) continue
      if (key.startsWith('revoke/')) {
        const revocation = verifyRevocation(state.root, bytes)
        if (!revocation.ok || state.revoked.has(revocation.value.deviceId)) continue
        const deviceId = revocation.value.deviceId
        state.revoked.set(deviceId, bytes)
        this.keep(accountId)
        // A failed save is still enforced while this process runs; the statement is in the
        // registry room's stored log too, read again on the account's first token after a restart.
        const kept = { accountId, deviceId, rootPublicKey: state.root.rootPublicKey, statement: bytes }
        this.storage.saveRevocation(kept).catch(() => {})
        this.onRevoked(accountId, deviceId, kept, 'registry')
      } else if (key.startsWith('pass/')) {
        const pass = verifyRelayPass(state.root, bytes)
        if (!pass.ok) continue
        const current = state.passes.get(pass.value.deviceId) ?? 0
        if (pass.value.issuedAt > current) {
          state.passes.set(pass.value.deviceId, pass.value.issuedAt)
          this.keepPass(accountId, state.root.rootPublicKey, pass.value.deviceId, pass.value.issuedAt, bytes)
          this.onNewerPass?.(accountId, state.root.rootPublicKey, bytes)
        }
      }
    }
  }
}

/** The account id of a registry room id, or undefined for any other room. */
export function registryAccount(roomId: string): string | undefined {
  return roomId.endsWith(REGISTRY_SUFFIX) ? roomId.slice(0, -REGISTRY_SUFFIX.length) : undefined
}
