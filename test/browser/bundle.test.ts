/**
 * Browser build (issue 4, item 7): the core (`contextsync`), `contextsync/idb`,
 * `contextsync/websocket` and `contextsync/link` (the glasses' transport) bundle for a web page with esbuild — `platform: 'browser'`, ESM, no
 * Node polyfills, nothing left external — and the result imports no Node built-in. The same check
 * is shown to fail where it must: the Node-only entries (`contextsync/sqlite`, `contextsync/relay`)
 * do not bundle for a browser. That the bundle also *runs* in a browser is shown by
 * test/browser/idb.test.ts, whose page is built from the same entries.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { bundleForBrowser, ROOT, type BrowserBundle } from './harness.js'

const BROWSER_ENTRIES = {
  index: 'src/index.ts',
  idb: 'src/entries/idb.ts',
  websocket: 'src/entries/websocket.ts',
  link: 'src/entries/link.ts',
}

/**
 * Node built-ins a dependency maps to `false` in its own package.json `browser` field, so
 * esbuild replaces them with an empty module. libsodium's Emscripten glue `require`s `crypto` only
 * on its Node code path; in a browser it uses `crypto.getRandomValues`.
 */
const DISABLED_BY_DEPENDENCY: Record<string, string[]> = {
  'node_modules/libsodium/': ['crypto', 'fs', 'path', 'stream'],
  'node_modules/libsodium-wrappers/': ['crypto', 'fs', 'path', 'stream'],
}

/** Code that imports a Node built-in or leaves a `require` for the page to satisfy. */
const NODE_IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*)["']node:/g
const LEFTOVER_REQUIRE = /\b(?:__require|require)\(\s*["']/g

function matches(text: string, pattern: RegExp): string[] {
  return [...text.matchAll(pattern)].map((m) => text.slice(Math.max(0, m.index - 60), m.index + 60))
}

/** Every reason this bundle could not be loaded by a page as it is. */
function nodeLeaks(bundle: BrowserBundle): string[] {
  const leaks: string[] = [...bundle.errors.map((e) => `build error: ${e}`)]
  for (const e of bundle.externals) leaks.push(`external import ${e.specifier} in ${e.importer}`)
  for (const n of bundle.nodeImports) {
    const owner = Object.keys(DISABLED_BY_DEPENDENCY).find((prefix) => n.importer.startsWith(prefix))
    const disabled = bundle.disabled.some((d) => d.importer === n.importer && d.specifier === n.specifier)
    if (!owner || !disabled || !DISABLED_BY_DEPENDENCY[owner]!.includes(n.specifier)) {
      leaks.push(`Node built-in '${n.specifier}' imported by ${n.importer}`)
    }
  }
  for (const [file, text] of bundle.outputs) {
    for (const m of matches(text, NODE_IMPORT)) leaks.push(`${file}: node: import …${m}…`)
    for (const m of matches(text, LEFTOVER_REQUIRE)) leaks.push(`${file}: require call …${m}…`)
  }
  return leaks
}

describe('browser build', () => {
  it('core + contextsync/idb + contextsync/websocket + contextsync/link bundle for platform browser with no Node built-ins', async () => {
    const started = Date.now()
    const bundle = await bundleForBrowser(BROWSER_ENTRIES, { splitting: true })
    expect(nodeLeaks(bundle)).toEqual([])
    expect([...bundle.outputs.keys()]).toEqual(expect.arrayContaining(['index.js', 'idb.js', 'websocket.js', 'link.js']))
    // The only built-in in the whole graph is libsodium's, and its package disables it for browsers.
    expect(bundle.nodeImports.map((n) => `${n.importer} → ${n.specifier}`)).toEqual([
      'node_modules/libsodium/dist/modules-esm/libsodium.mjs → crypto',
    ])
    const text = [...bundle.outputs.values()].join('\n')
    // The bundled code is the real thing: the library's entry points and their dependencies.
    expect(text).toContain('ContextSync')
    expect(text).toContain('indexedDbStorage')
    expect(text).toContain('websocketTransport')
    expect(text).toContain('linkTransport')
    for (const dep of ['node_modules/yjs/', 'node_modules/idb/', 'node_modules/y-websocket/', 'node_modules/libsodium/']) {
      expect(bundle.inputs.some((i) => i.startsWith(dep)), `${dep} bundled`).toBe(true)
    }
    // Nothing Node-only is dragged in through the browser entries.
    for (const nodeOnly of [
      'node_modules/ws/',
      'node_modules/better-sqlite3/',
      'src/adapters/sqlite-storage.ts',
      'src/relay/server.ts',
      'src/relay/persistence.ts',
      'src/relay/postgres-store.ts',
      'src/relay/redis-fanout.ts',
      'node_modules/pg/',
      'node_modules/ioredis/',
      'src/demo.ts',
    ]) {
      expect(bundle.inputs.filter((i) => i.startsWith(nodeOnly)), `${nodeOnly} must not be in a browser bundle`).toEqual([])
    }
    console.info(
      `[browser build] ${bundle.inputs.length} inputs → ${[...bundle.outputs].map(([f, t]) => `${f} ${(t.length / 1024).toFixed(0)} KiB`).join(', ')} in ${Date.now() - started} ms`,
    )
  })

  it("the library's own browser-reachable sources use no Node globals (Buffer, process, require, __dirname)", async () => {
    const bundle = await bundleForBrowser(BROWSER_ENTRIES)
    const sources = bundle.inputs.filter((i) => i.startsWith('src/'))
    expect(sources.length).toBeGreaterThan(30)
    const offenders: string[] = []
    for (const file of sources) {
      // Comments may mention them; code may only reach `process` through a guarded globalThis lookup.
      const code = readFileSync(join(ROOT, file), 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/(^|[^:'"`])\/\/.*$/gm, '$1')
      for (const m of code.matchAll(/\bBuffer\b|(?<![.\w?])process\.|\brequire\(|__dirname|__filename/g)) {
        offenders.push(`${file}: ${code.slice(Math.max(0, m.index - 40), m.index + 40).replace(/\s+/g, ' ')}`)
      }
    }
    expect(offenders).toEqual([])
  })

  it('the check can fail: the Node-only entries do not bundle for a browser', async () => {
    const sqlite = await bundleForBrowser({ sqlite: 'src/entries/sqlite.ts' })
    expect(sqlite.errors.length).toBeGreaterThan(0)
    expect(nodeLeaks(sqlite).join('\n')).toMatch(/Node built-in 'node:fs' imported by src\/adapters\/sqlite-storage\.ts/)
    const relay = await bundleForBrowser({ relay: 'src/relay/index.ts' })
    expect(nodeLeaks(relay).join('\n')).toMatch(/Node built-in 'node:http'/)
    // And the output grep catches what esbuild would let through (a require left for the host).
    const leaks = nodeLeaks({
      errors: [],
      outputs: new Map([['fake.js', 'const fs = __require("fs"); import x from "node:path"']]),
      inputs: [],
      disabled: [],
      externals: [],
      nodeImports: [],
    })
    expect(leaks).toHaveLength(2)
  })
})
