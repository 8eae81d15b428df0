/**
 * Shared by the browser tests and the browser bench: where Chromium is, how to launch it, and how
 * to bundle library code for a page with esbuild — with a report of every Node built-in the
 * bundle would need.
 */
import { existsSync } from 'node:fs'
import { builtinModules } from 'node:module'
import { fileURLToPath } from 'node:url'
import * as esbuild from 'esbuild'

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Debian's chromium (installed by `.ci/run`), or `CONTEXTSYNC_CHROMIUM`. */
export const CHROMIUM_PATH = process.env.CONTEXTSYNC_CHROMIUM ?? '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM_PATH)

/** Loud, because a skipped browser proof must not pass unnoticed. */
export function warnIfNoChromium(what: string): void {
  if (hasChromium) return
  console.warn(
    `\n${'!'.repeat(100)}\n!!! SKIPPED: ${what}\n!!! no Chromium at ${CHROMIUM_PATH} — install Debian's \`chromium\` ` +
      `(apt-get install -y chromium) or set CONTEXTSYNC_CHROMIUM. The real-browser proof of issue 4 did NOT run.\n${'!'.repeat(100)}\n`,
  )
}

/** Launch options for playwright-core: headless, no sandbox (containers), nothing phoning home. */
export const CHROMIUM_LAUNCH: { executablePath: string; headless: boolean; args: string[] } = {
  executablePath: CHROMIUM_PATH,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update'],
}

const NODE_BUILTINS = new Set(builtinModules.filter((n) => !n.startsWith('_')))

/** Is this import specifier a Node built-in (`fs`, `fs/promises`, `node:crypto`…)? */
export function isNodeBuiltin(specifier: string): boolean {
  if (specifier.startsWith('node:')) return true
  return NODE_BUILTINS.has(specifier) || NODE_BUILTINS.has(specifier.split('/')[0]!)
}

/** What {@link bundleForBrowser} found. */
export interface BrowserBundle {
  /** esbuild's errors (unresolvable Node built-ins show up here: platform 'browser' has none). */
  errors: string[]
  /** Output file (relative to the out dir) → its text; empty when the build failed. */
  outputs: Map<string, string>
  /** Source files that went into the bundle, relative to the repo root. */
  inputs: string[]
  /** Node built-ins a package maps to `false` in its own `browser` field, so they bundle as `{}`. */
  disabled: Array<{ specifier: string; importer: string }>
  /** Imports left external (none are allowed: a page has nothing to resolve them with). */
  externals: Array<{ specifier: string; importer: string }>
  /** Node built-ins imported anywhere in the graph, resolved or not. */
  nodeImports: Array<{ specifier: string; importer: string }>
}

/**
 * Bundle entry points the way a web app would: platform 'browser', ESM, no Node polyfills, no
 * externals. Never throws for a failed build: the failure is reported in `errors`.
 */
export async function bundleForBrowser(
  entryPoints: Record<string, string>,
  options: { minify?: boolean; splitting?: boolean } = {},
): Promise<BrowserBundle> {
  const nodeImports: BrowserBundle['nodeImports'] = []
  // Sees every import before esbuild resolves it, so built-ins are reported even when the build
  // then fails on them (or a package's `browser` field disables them).
  const spy: esbuild.Plugin = {
    name: 'node-builtin-spy',
    setup(build) {
      build.onResolve({ filter: /^[a-z_:/]+$/ }, (args) => {
        if (isNodeBuiltin(args.path)) nodeImports.push({ specifier: args.path, importer: relative(args.importer) })
        return undefined
      })
    },
  }
  let result: esbuild.BuildResult<{ metafile: true; write: false }>
  try {
    result = await esbuild.build({
      entryPoints,
      absWorkingDir: ROOT,
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      splitting: options.splitting ?? false,
      minify: options.minify ?? false,
      outdir: 'out',
      write: false,
      metafile: true,
      logLevel: 'silent',
      plugins: [spy],
    })
  } catch (error) {
    const errors = (error as { errors?: esbuild.Message[] }).errors?.map((m) => `${m.location?.file ?? '?'}: ${m.text}`) ?? [String(error)]
    return { errors, outputs: new Map(), inputs: [], disabled: [], externals: [], nodeImports }
  }
  const disabled: BrowserBundle['disabled'] = []
  const externals: BrowserBundle['externals'] = []
  for (const [file, input] of Object.entries(result.metafile.inputs)) {
    for (const imp of input.imports) {
      const specifier = imp.original ?? imp.path
      if (imp.path.startsWith('(disabled):')) disabled.push({ specifier, importer: file })
      if (imp.external) externals.push({ specifier, importer: file })
    }
  }
  const outputs = new Map<string, string>()
  for (const file of result.outputFiles) outputs.set(relative(file.path).replace(/^out\//, ''), file.text)
  return { errors: [], outputs, inputs: Object.keys(result.metafile.inputs).sort(), disabled, externals, nodeImports }
}

function relative(path: string): string {
  return path.startsWith(ROOT) ? path.slice(ROOT.length) : path
}
