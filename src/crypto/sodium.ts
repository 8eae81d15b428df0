/**
 * The one place libsodium is loaded. Every other crypto module calls {@link sodium} after
 * {@link ready} has resolved; nothing outside `src/crypto/` touches libsodium.
 *
 * Two builds of the same libsodium can sit behind {@link SodiumBackend}:
 * - `wasm` — `libsodium-wrappers` (WebAssembly). Runs everywhere; the only choice in browsers.
 * - `native` — `sodium-native` (an optional peer dependency with prebuilt binaries). On Node it signs
 *   ≈ 2.5× and verifies ≈ 2.2× faster (bench/relay.ts times both builds), which is most of the crypto cost of a synced write.
 *
 * Both are libsodium, so they accept and refuse exactly the same signatures (canonical S,
 * small-order points, non-canonical encodings) — a device must never accept an envelope that
 * another device of the account refuses. test/crypto/backends.test.ts checks that on a corpus of
 * edge-case signatures built for the purpose.
 *
 * @module
 */
import libsodium from 'libsodium-wrappers'
import { ConfigError } from '../errors.js'
import { wasmBackend } from './sodium-wasm.js'
import { loadNativeBackend } from './sodium-native.js'
import type { CryptoBackendChoice, CryptoBackendName, SodiumBackend } from './sodium-backend.js'

export type { CryptoBackendChoice, CryptoBackendName, SodiumBackend } from './sodium-backend.js'

/** Environment variable (Node only) that picks the backend: `auto` (default), `native`, `wasm`. */
export const CRYPTO_BACKEND_ENV = 'CONTEXTSYNC_CRYPTO'

/** Every accepted {@link CryptoBackendChoice}. */
export const CRYPTO_BACKEND_CHOICES: readonly CryptoBackendChoice[] = ['auto', 'native', 'wasm']
const CHOICES = CRYPTO_BACKEND_CHOICES

let requested: CryptoBackendChoice | undefined
let loading: Promise<void> | undefined
let active: SodiumBackend | undefined

/**
 * Pick the libsodium build before the first {@link ready} (default `auto`; on Node the
 * `CONTEXTSYNC_CRYPTO` environment variable is read when this is never called). Choosing
 * `native` where `sodium-native` cannot load makes `ready()` reject with a `ConfigError`.
 * Throws `ConfigError` for an unknown name, or for a different choice once crypto is loaded:
 * one process uses one build.
 */
export function useCryptoBackend(choice: CryptoBackendChoice): void {
  if (!CHOICES.includes(choice)) {
    throw new ConfigError(`crypto backend must be one of ${CHOICES.join(', ')}, got ${JSON.stringify(choice)}`)
  }
  if (loading === undefined) {
    requested = choice
    return
  }
  // Already loading or loaded: only a choice that the running build satisfies is accepted.
  const satisfied = choice === 'auto' || choice === requested || choice === active?.name
  if (!satisfied) {
    throw new ConfigError(`crypto backend already ${active ? `loaded as ${active.name}` : 'loading'}; choose it before the first ready()`)
  }
}

/**
 * Resolve once libsodium is initialised. Idempotent and cheap after the first call. Every async
 * entry point of the library awaits it, so apps rarely call it themselves.
 */
export function ready(): Promise<void> {
  loading ??= load().catch((error: unknown) => {
    loading = undefined // a bad CONTEXTSYNC_CRYPTO can be fixed and ready() called again
    throw error
  })
  return loading
}

/** The libsodium build in use, or `undefined` until {@link ready} has resolved. */
export function cryptoBackend(): CryptoBackendName | undefined {
  return active?.name
}

/** The initialised backend. Throws when called before {@link ready} resolved. */
export function sodium(): SodiumBackend {
  if (active === undefined) throw new ConfigError('contextsync: crypto used before ready() resolved')
  return active
}

async function load(): Promise<void> {
  const choice = requested ?? choiceFromEnvironment()
  if (choice === 'native' && !isNode()) {
    throw new ConfigError("crypto backend 'native' needs Node; this runtime has only 'wasm'")
  }
  // The wasm build is loaded in every case: it is the fallback, and serves the short BLAKE2b
  // outputs sodium-native's bindings refuse.
  await libsodium.ready
  const wasm = wasmBackend(libsodium)
  if (choice !== 'wasm' && isNode()) {
    const native = await loadNativeBackend(wasm)
    if (native.backend !== undefined) {
      active = native.backend
      return
    }
    if (choice === 'native') {
      throw new ConfigError(`crypto backend 'native' requested but sodium-native did not load: ${native.reason}`)
    }
  }
  active = wasm
}

function choiceFromEnvironment(): CryptoBackendChoice {
  const value = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[CRYPTO_BACKEND_ENV]
  if (value === undefined || value === '') return 'auto'
  if (!(CHOICES as readonly string[]).includes(value)) {
    throw new ConfigError(`${CRYPTO_BACKEND_ENV} must be one of ${CHOICES.join(', ')}, got ${JSON.stringify(value)}`)
  }
  return value as CryptoBackendChoice
}

function isNode(): boolean {
  const versions = (globalThis as { process?: { versions?: { node?: string } } }).process?.versions
  return typeof versions?.node === 'string'
}
