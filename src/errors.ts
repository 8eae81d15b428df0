/**
 * Errors thrown at the public API when the *caller* misuses it (lib0/secsync's first tier).
 * Untrusted input from the network or disk never throws: it is rejected with a numeric
 * {@link RejectCode} and reported as an event.
 *
 * @module
 */

/**
 * Machine-readable error codes of {@link ContextSyncError}. A failing store says how with a
 * {@link StorageErrorCode} (a damaged or unreadable one is `corrupt` or `not-a-store`); an auth
 * hook refusing a relay connection throws `relay-refused` (`RelayRefusal`, its WebSocket close
 * code in `closeCode`).
 */
export type ContextSyncErrorCode =
  | 'invalid-argument'
  | 'scope-access'
  | 'not-found'
  | 'closed'
  | 'config'
  | 'pairing'
  | 'permission'
  | 'access-ended'
  | 'link'
  | 'relay-refused'
  | StorageErrorCode

/**
 * Named codes of a {@link StorageError} (`StorageError` in adapters/storage.ts): what went wrong
 * with the device's store, so callers can react (retry on `quota-exceeded`/`io`, tell the user on
 * `corrupt`).
 */
export type StorageErrorCode =
  | 'closed'
  | 'quota-exceeded'
  | 'corrupt'
  | 'not-a-store'
  | 'io'
  | 'invalid-key'

/** Base class of every error the library throws on purpose. */
export class ContextSyncError extends Error {
  override name = 'ContextSyncError'
  /** What went wrong, for programs. */
  readonly code: ContextSyncErrorCode
  constructor(code: ContextSyncErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** An argument has the wrong type or value (unknown scope name, empty text, …). */
export class ValidationError extends ContextSyncError {
  override name = 'ValidationError'
  constructor(message: string) {
    super('invalid-argument', message)
  }
}

/** The device may not hold the scope it tried to use (not granted, or unknown to it). */
export class ScopeAccessError extends ContextSyncError {
  override name = 'ScopeAccessError'
  constructor(message: string) {
    super('scope-access', message)
  }
}

/** The memory item, session or turn does not exist on this device. */
export class NotFoundError extends ContextSyncError {
  override name = 'NotFoundError'
  constructor(message: string) {
    super('not-found', message)
  }
}

/** The instance was closed. */
export class ClosedError extends ContextSyncError {
  override name = 'ClosedError'
  constructor(message = 'this ContextSync instance is closed') {
    super('closed', message)
  }
}

/** The options passed to `ContextSync.open` (or a stored configuration) do not make sense. */
export class ConfigError extends ContextSyncError {
  override name = 'ConfigError'
  constructor(message: string) {
    super('config', message)
  }
}

/** The action needs an owner device (one holding the account root), or the device was revoked. */
export class PermissionError extends ContextSyncError {
  override name = 'PermissionError'
  constructor(message: string) {
    super('permission', message)
  }
}

/**
 * This device's temporary access to the account ended (`devices.invite({ until })`): its keys and
 * data of the account were removed from its store, so it can only join again with a new invite.
 */
export class AccessEndedError extends ContextSyncError {
  override name = 'AccessEndedError'
  constructor(
    message: string,
    /** When the access ended (ms). */
    readonly until: number,
  ) {
    super('access-ended', message)
  }
}
