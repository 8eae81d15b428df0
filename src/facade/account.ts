/**
 * The public `Account` handle: the person's account, identified by its self-certifying id.
 * Its root keys are kept out of the object's enumerable fields so logging an account never
 * prints key material.
 *
 * @module
 */
import { accountKeysFromSeed, createAccountKeys, decodeRecoveryCode, encodeRecoveryCode, ready, type AccountKeys } from '../crypto/index.js'
import { PermissionError, ValidationError } from '../errors.js'

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

  /**
   * The account's recovery code: the root key as 56 letters and digits with a checksum. Keep it
   * offline; `createAccount({ recoveryCode })` on a new phone makes it an owner again.
   */
  exportRecoveryCode(): string {
    const seed = accountKeys(this).rootSeed
    if (!seed) throw new PermissionError('only an owner account handle holds the root key')
    return encodeRecoveryCode(seed)
  }

  /** Never prints key material. */
  toJSON(): { accountId: string } {
    return { accountId: this.accountId }
  }
}

/** Internal (not exported by an entry point): the root keys behind an {@link Account}. */
export function accountKeys(account: Account): AccountKeys {
  const keys = keysOf.get(account)
  if (!keys) throw new ValidationError('not an Account created by createAccount()')
  return keys
}

/**
 * Create a new account (a fresh Ed25519 root key), or restore one from its recovery code.
 *
 * @example
 * ```ts
 * const account = await createAccount()
 * const phone = await ContextSync.open({ account, device: { kind: 'phone' }, storage, transports })
 * ```
 */
export async function createAccount(options: { recoveryCode?: string } = {}): Promise<Account> {
  await ready()
  if (options.recoveryCode === undefined) return new Account(createAccountKeys())
  const seed = decodeRecoveryCode(options.recoveryCode)
  if (!seed) throw new ValidationError('recoveryCode is not a valid recovery code (check for typos: its checksum does not match)')
  return new Account(accountKeysFromSeed(seed))
}
