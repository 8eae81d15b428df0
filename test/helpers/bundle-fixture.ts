/**
 * Crash tests kill child processes at random moments; starting each child under tsx costs ~0.8 s,
 * so the fixture is bundled once with esbuild and every child is a plain `node` process.
 */
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const repoRoot = fileURLToPath(new URL('../..', import.meta.url))

/** Bundle `source` (a .ts fixture) to an .mjs in a temp dir; `cleanup()` removes the dir. */
export async function bundleFixture(source: string, name: string): Promise<{ path: string; cleanup: () => void }> {
  const dir = mkdtempSync(join(tmpdir(), `contextsync-${name}-build-`))
  // Dependencies stay external and resolve through this link, like they would for the source.
  symlinkSync(join(repoRoot, 'node_modules'), join(dir, 'node_modules'), 'dir')
  const path = join(dir, `${name}.mjs`)
  await build({
    entryPoints: [source],
    outfile: path,
    bundle: true,
    packages: 'external',
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'error',
  })
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}
