/**
 * The package as a consumer gets it: built from a source tree into a staging folder (the tree's
 * own dist/ is left alone), packed with `npm pack`, and installed from the tarball into a fresh
 * project. Used by the fresh-project README test and the install-footprint bench.
 *
 * @module
 */
import { execFileSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'

/** What `npm pack` reports of a tarball. */
export interface PackedTarball {
  path: string
  /** Bytes of the .tgz. */
  size: number
  /** Bytes of its files unpacked. */
  unpackedSize: number
  /** Number of files. */
  entryCount: number
}

/**
 * Build the package of the tree at `root` into `stage/pkg` (its tsup config, `--out-dir`) and pack
 * it into `stage`. `root/node_modules` must hold its build tools.
 */
export function packTree(root: string, stage: string): PackedTarball {
  const pkg = join(stage, 'pkg')
  mkdirSync(pkg, { recursive: true })
  for (const file of ['package.json', 'README.md', 'WIRE.md', 'THREAT_MODEL.md', 'bin']) {
    if (existsSync(join(root, file))) cpSync(join(root, file), join(pkg, file), { recursive: true })
  }
  execFileSync(process.execPath, [join(root, 'node_modules/tsup/dist/cli-default.js'), '--out-dir', join(pkg, 'dist'), '--silent'], { cwd: root, stdio: 'pipe', timeout: 300_000 })
  const report = JSON.parse(execFileSync(npm, ['pack', '--json', '--pack-destination', stage], { cwd: pkg, encoding: 'utf8', timeout: 120_000 })) as Array<{
    filename: string
    size: number
    unpackedSize: number
    entryCount: number
  }>
  const packed = report[0]!
  return { path: join(stage, packed.filename), size: packed.size, unpackedSize: packed.unpackedSize, entryCount: packed.entryCount }
}

/** A fresh ESM project at `dir` (package.json only). */
export function freshProject(dir: string): string {
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'fresh-app', version: '1.0.0', private: true, type: 'module' }))
  return dir
}

/** `npm install <what>` in `dir`, from the local npm cache where it can. */
export function npmInstall(dir: string, what: string): void {
  execFileSync(npm, ['install', what, '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: dir, stdio: 'pipe', timeout: 600_000 })
}

/** Packages under `dir/node_modules` that build or ship a native addon (binding.gyp, prebuilds). */
export function nativeModules(dir: string): string[] {
  const out: string[] = []
  walkPackages(join(dir, 'node_modules'), (name, path) => {
    if (existsSync(join(path, 'binding.gyp')) || existsSync(join(path, 'prebuilds'))) out.push(name)
  })
  return out.sort()
}

/** Number of packages installed under `dir/node_modules` (nested ones included). */
export function packageCount(dir: string): number {
  let count = 0
  walkPackages(join(dir, 'node_modules'), () => count++)
  return count
}

/** Bytes of every file under `path`. */
export function diskBytes(path: string): number {
  const stat = statSync(path, { throwIfNoEntry: false })
  if (!stat) return 0
  if (!stat.isDirectory()) return stat.size
  let total = 0
  for (const name of readdirSync(path)) total += diskBytes(join(path, name))
  return total
}

function walkPackages(modules: string, visit: (name: string, path: string) => void, scope = ''): void {
  if (!existsSync(modules)) return
  for (const name of readdirSync(modules)) {
    if (name.startsWith('.')) continue
    const path = join(modules, name)
    if (name.startsWith('@') && scope === '') {
      walkPackages(path, visit, name)
      continue
    }
    if (!existsSync(join(path, 'package.json'))) continue
    visit(scope ? `${scope}/${name}` : name, path)
    walkPackages(join(path, 'node_modules'), visit)
  }
}
