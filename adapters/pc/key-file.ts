/**
 * The PC's default key protection: a random 32-byte key-encryption key in a file only the user
 * can read (0600, in a 0700 folder), kept in the per-user *config* folder while the store lives in
 * the *data* folder; the store's key records are sealed under it (`wrappingKeyKeys`). A passphrase
 * (`CONTEXTSYNC_PASSPHRASE`, Argon2id) replaces it when set. Why this default, and what it does
 * not protect against, is in THREAT_MODEL.md "A PC's store and its key file".
 *
 * @module
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { dirname } from 'node:path'
import { ConfigError, passphraseKeys, wrappingKeyKeys, type KeyProtector } from '../../src/index.js'

/** The protector kind a key-file-protected store names. */
export const KEY_FILE_KIND = 'key-file'

/** The environment variable that switches a PC to passphrase protection. */
export const PASSPHRASE_ENV = 'CONTEXTSYNC_PASSPHRASE'

const KEY_BYTES = 32

/**
 * A {@link KeyProtector} over the key file at `path`. With `create`, a missing file is made
 * (32 random bytes, mode 0600, folders 0700); otherwise a missing file is a `ConfigError`. A file
 * that others may read is tightened to 0600 and used; one of the wrong size is refused.
 *
 * @example
 * ```ts
 * const keys = keyFileKeys(join(pcPaths().config, 'device.key'), { create: true })
 * ```
 */
export function keyFileKeys(path: string, options: { create?: boolean } = {}): KeyProtector {
  if (!existsSync(path)) {
    if (!options.create) {
      throw new ConfigError(`the key file ${path} is missing: this device's keys cannot be unlocked without it (restore it, or set ${PASSPHRASE_ENV} if the store was made with a passphrase)`)
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 })
    let fd: number
    try {
      // 'wx': never overwrite a key file another process made meanwhile.
      fd = openSync(path, 'wx', 0o600)
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'EEXIST') throw new ConfigError(`cannot create the key file ${path}: ${(error as Error).message}`)
      return keyFileKeys(path)
    }
    try {
      // The OS CSPRNG: usable before libsodium is loaded, and the key never leaves this file.
      writeSync(fd, randomBytes(KEY_BYTES))
    } finally {
      closeSync(fd)
    }
  }
  if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600)
  const key = new Uint8Array(readFileSync(path))
  if (key.length !== KEY_BYTES) throw new ConfigError(`the key file ${path} is not a contextsync key file (expected ${KEY_BYTES} bytes, found ${key.length})`)
  return wrappingKeyKeys(key, KEY_FILE_KIND)
}

/**
 * The protector a PC uses when the app passes none: `passphraseKeys` when
 * `CONTEXTSYNC_PASSPHRASE` is set in `env`, else the key file at `keyFile`.
 */
export function defaultPcKeys(options: { keyFile: string; env: Record<string, string | undefined>; create: boolean }): KeyProtector {
  const passphrase = options.env[PASSPHRASE_ENV]
  if (passphrase !== undefined && passphrase !== '') return passphraseKeys(passphrase)
  return keyFileKeys(options.keyFile, { create: options.create })
}
