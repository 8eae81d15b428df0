/**
 * The public `Account` handle: the person's account, identified by its self-certifying id.
 * Its root keys are kept out of the object's enumerable fields so logging an account never
 * prints key material.
 *
 * @module
 */
import { createAccountKeys, ready, type AccountKeys } from '../crypto/index.js'

const keysOf = new WeakMap<Account, AccountKeys>()

/** One person's account. Pass it to `ContextSync.open` to enrol an owner device. */
export class Account {
  /** `hex(BLAKE2b-128(rootPublicKey))` — also the namespace of the account's relay rooms. */
  readonly accountId: string

  /** @internal use {@link createAccount}. */
  constructor(keys: AccountKeys) {
    this.accountId = keys.accountId
    keysOf.set(this, keys)
  }

  /** True when this handle holds the root secret (it can enrol owner devices). */
  get isOwner(): boolean {
    return accountKeys(this).rootSecretKey !== undefined
  }

  /** Never prints key material. */
  toJSON(): { accountId: string } {
    return { accountId: this.accountId }
  }
}

/** @internal The root keys behind an {@link Account}. */
export function accountKeys(account: Account): AccountKeys {
  const keys = keysOf.get(account)
  if (!keys) throw new TypeError('not an Account created by createAccount()')
  return keys
}

/**
 * Create a new account (a fresh Ed25519 root key).
 *
 * @example
 * ```ts
 * const account = await createAccount()
 * const phone = await ContextSync.open({ account, device: { kind: 'phone' }, storage, transports })
 * ```
 */
export async function createAccount(): Promise<Account> {
  await ready()
  return new Account(createAccountKeys())
}
