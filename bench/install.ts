/**
 * `BENCH=install`: what installing contextsync costs a browser-only consumer (a glasses or phone
 * webview app) and a Node device, before and after the light-install work (README "Use it").
 *
 * Each tree is built and packed as it would be published (test/helpers/pack.ts), then installed
 * from its tarball into a fresh project: the package alone (browser), then with what a Node device
 * adds (`better-sqlite3` and `sodium-native`, a no-op where they already came along). Figures: the
 * tarball, the packages and bytes under `node_modules`, the native modules among them, and the
 * install's wall time (noisy; once each). The baseline is `BENCH_INSTALL_BASELINE` (default
 * 9ad8a30, the commit before), as a git worktree (bench/baseline-tree.ts).
 *
 * @module
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { diskBytes, freshProject, nativeModules, npmInstall, packageCount, packTree, type PackedTarball } from '../test/helpers/pack.js'
import { afterTree, baselineTree, treeLine, type SourceTree } from './baseline-tree.js'
import { fmt, printTable } from './table.js'

const DEFAULT_INSTALL_BASELINE = '9ad8a30'

interface Footprint {
  tarball: PackedTarball
  browser: { packages: number; bytes: number; native: string[]; ms: number }
  node: { packages: number; bytes: number; native: string[]; ms: number }
}

function measure(tree: SourceTree): Footprint {
  const stage = mkdtempSync(join(tmpdir(), 'contextsync-install-'))
  try {
    const tarball = packTree(tree.root, stage)
    const app = freshProject(join(stage, 'app'))
    let started = performance.now()
    npmInstall(app, tarball.path)
    const browser = { packages: packageCount(app), bytes: diskBytes(join(app, 'node_modules')), native: nativeModules(app), ms: performance.now() - started }
    started = performance.now()
    npmInstall(app, 'better-sqlite3@12')
    npmInstall(app, 'sodium-native@5')
    const node = { packages: packageCount(app), bytes: diskBytes(join(app, 'node_modules')), native: nativeModules(app), ms: browser.ms + performance.now() - started }
    return { tarball, browser, node }
  } finally {
    rmSync(stage, { recursive: true, force: true })
  }
}

const mib = (bytes: number): string => fmt(bytes / 1024 / 1024, 'MiB')
const kib = (bytes: number): string => fmt(bytes / 1024, 'KiB')
const ratio = (after: number, before: number): string => (before === 0 ? (after === 0 ? '—' : '∞') : `${(after / before).toFixed(2)}×`)

/** Run the install-footprint comparison and print it. */
export async function benchInstall(): Promise<void> {
  const before = baselineTree(process.env.BENCH_INSTALL_BASELINE ?? DEFAULT_INSTALL_BASELINE)
  const after = afterTree()
  console.log(treeLine('before', before))
  console.log(treeLine('after', after))
  const b = measure(before)
  const a = measure(after)
  const row = (label: string, x: number, y: number, show: (n: number) => string): string[] => [label, show(x), show(y), ratio(y, x)]
  const count = (n: number): string => String(n)
  printTable('install footprint (fresh project, from the tarball)', ['', 'before', 'after', 'after/before'], [
    row('tarball (.tgz)', b.tarball.size, a.tarball.size, kib),
    row('tarball unpacked', b.tarball.unpackedSize, a.tarball.unpackedSize, kib),
    row('tarball files', b.tarball.entryCount, a.tarball.entryCount, count),
    row('browser app: packages', b.browser.packages, a.browser.packages, count),
    row('browser app: node_modules', b.browser.bytes, a.browser.bytes, mib),
    row('browser app: native modules', b.browser.native.length, a.browser.native.length, count),
    row('browser app: install (ms, once)', b.browser.ms, a.browser.ms, (n) => fmt(n)),
    row('Node device: packages', b.node.packages, a.node.packages, count),
    row('Node device: node_modules', b.node.bytes, a.node.bytes, mib),
    row('Node device: native modules', b.node.native.length, a.node.native.length, count),
  ])
  console.log(`native modules, browser app: before [${b.browser.native.join(', ')}], after [${a.browser.native.join(', ')}]`)
  console.log(`native modules, Node device: before [${b.node.native.join(', ')}], after [${a.node.native.join(', ')}]`)
}
