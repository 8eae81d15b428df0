/**
 * Choosing the libsodium build: native on Node by default (sodium-native is installed here),
 * `wasm` on request, clear `config` errors for unknown names or an impossible choice, and one
 * build per process. Each case runs in a fresh Node process (test/fixtures/crypto-choice.ts),
 * since the choice is process-wide.
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const FIXTURE = fileURLToPath(new URL('../fixtures/crypto-choice.ts', import.meta.url))
const HIDE_NATIVE = fileURLToPath(new URL('../fixtures/hide-sodium-native.mjs', import.meta.url))

interface ChoiceReport {
  before?: string | null
  backend?: string
  switchRefused?: string
  shortHash?: string
  error?: string
  message?: string
}

function run(choice: string, env: Record<string, string | undefined> = {}, options: { hideNative?: boolean } = {}): ChoiceReport {
  const childEnv = { ...process.env, ...env }
  if (env.CONTEXTSYNC_CRYPTO === undefined) delete childEnv.CONTEXTSYNC_CRYPTO
  const preload = options.hideNative ? ['--import', HIDE_NATIVE] : []
  const out = execFileSync(process.execPath, [...preload, '--import', 'tsx', FIXTURE, choice], { env: childEnv, encoding: 'utf8', timeout: 60_000 })
  return JSON.parse(out.trim().split('\n').pop()!) as ChoiceReport
}

describe('crypto backend choice', () => {
  it('defaults to native on Node, and both builds give the same short BLAKE2b', () => {
    const auto = run('env')
    expect(auto).toMatchObject({ before: null, backend: 'native', switchRefused: 'config' })
    const wasm = run('wasm')
    expect(wasm).toMatchObject({ backend: 'wasm', switchRefused: 'config' })
    expect(wasm.shortHash).toBe(auto.shortHash)
    expect(run('native')).toMatchObject({ backend: 'native' })
  })

  it('CONTEXTSYNC_CRYPTO picks the build; a bad value is a config error naming the choices', () => {
    expect(run('env', { CONTEXTSYNC_CRYPTO: 'wasm' })).toMatchObject({ backend: 'wasm' })
    expect(run('env', { CONTEXTSYNC_CRYPTO: 'native' })).toMatchObject({ backend: 'native' })
    const bad = run('env', { CONTEXTSYNC_CRYPTO: 'openssl' })
    expect(bad.error).toBe('config')
    expect(bad.message).toContain('auto, native, wasm')
    // An explicit choice in code wins over the environment.
    expect(run('wasm', { CONTEXTSYNC_CRYPTO: 'native' })).toMatchObject({ backend: 'wasm' })
  })

  it('an unknown name passed in code is refused with a config error', () => {
    const bad = run('libsodium')
    expect(bad.error).toBe('config')
    expect(bad.message).toContain('"libsodium"')
  })

  it('without sodium-native, auto falls back to wasm and an explicit native is a config error saying why', () => {
    expect(run('env', {}, { hideNative: true })).toMatchObject({ backend: 'wasm' })
    const native = run('native', {}, { hideNative: true })
    expect(native.error).toBe('config')
    expect(native.message).toContain('sodium-native did not load')
    expect(native.message).toContain('hidden by the test')
  })
})
