/**
 * The one place libsodium is loaded. Every other crypto module calls {@link sodium} after
 * {@link ready} has resolved; nothing outside `src/crypto/` imports libsodium.
 *
 * @module
 */
import libsodium from 'libsodium-wrappers'

let loaded: Promise<void> | undefined
let isReady = false

/**
 * Resolve once libsodium's WebAssembly is initialised. Idempotent and cheap after the first call.
 * Every async entry point of the library awaits it, so apps rarely call it themselves.
 */
export function ready(): Promise<void> {
  loaded ??= libsodium.ready.then(() => {
    isReady = true
  })
  return loaded
}

/** The initialised libsodium API. Throws when called before {@link ready} resolved. */
export function sodium(): typeof libsodium {
  if (!isReady) throw new Error('contextsync: crypto used before ready() resolved')
  return libsodium
}
