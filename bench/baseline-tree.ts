/**
 * Source trees for before/after benchmarks: the tree a bench runs from, a tree named by
 * `BENCH_AFTER_ROOT`, and a git worktree of a baseline ref (`BENCH_BASELINE`, default `707ed0e`,
 * the commit before the integrity work) under `os.tmpdir()/contextsync-baseline-<sha>`.
 *
 * The baseline worktree is made once and reused by later runs (it is checked to be at that commit
 * with an unmodified `src/`). Its `node_modules` is a symlink to this tree's, so both trees run on
 * the very same dependency files — a difference in the figures is a difference in `src/`.
 *
 * The "after" tree may be a working copy that moves while a run takes minutes (others merge into
 * main): {@link freezeTree} copies its `src/` (uncommitted changes included) to
 * `os.tmpdir()/contextsync-after-<hash>` at the start, so one run measures one version, and
 * {@link srcHash} names that version.
 *
 * Run alone to make (or check) the worktree: `npx tsx bench/baseline-tree.ts [ref]`.
 *
 * @module
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { cpSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, renameSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The last commit before the replica checkpoint (WIRE.md "Replica checkpoint") and the rest of the integrity work. */
export const DEFAULT_BASELINE = '707ed0e'

/** A source tree the benchmarks load the library from. */
export interface SourceTree {
  /** Absolute path of the tree (it holds `src/`). */
  root: string
  /** Full sha of its checked-out commit. */
  commit: string
  /** That commit's subject line, shortened. */
  subject: string
  /** Files under `src/` that differ from the commit (modified or untracked): the figures are of those. */
  dirtyFiles: number
  /** {@link srcHash} of the tree's `src/`. */
  srcHash: string
  /** Set when `root` is a frozen copy: the tree it was copied from. */
  frozenFrom?: string
}

/** Thrown when a baseline worktree cannot be made or an existing directory is not the baseline. */
export class BaselineTreeError extends Error {
  override readonly name = 'BaselineTreeError'
}

function git(cwd: string, args: string[]): string {
  return execFileSync('git', ['-C', cwd, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim()
}

/** The tree this bench file belongs to. */
export function benchRoot(): string {
  return fileURLToPath(new URL('..', import.meta.url)).replace(/\/$/, '')
}

/** The commit, subject and `src/` state of the tree at `root`. */
export function describeTree(root: string): SourceTree {
  const commit = git(root, ['rev-parse', 'HEAD'])
  const full = git(root, ['log', '-1', '--format=%s', commit])
  const subject = full.length > 90 ? `${full.slice(0, 87)}...` : full
  const status = git(root, ['status', '--porcelain', '--', 'src'])
  return { root, commit, subject, dirtyFiles: status === '' ? 0 : status.split('\n').length, srcHash: srcHash(root) }
}

/** SHA-256 over the paths and contents of every file under `root/src`: equal hashes, equal code. */
export function srcHash(root: string): string {
  const hash = createHash('sha256')
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else if (entry.isFile()) hash.update(`${relative(root, path)}\0`).update(readFileSync(path)).update('\0')
    }
  }
  walk(join(root, 'src'))
  return hash.digest('hex')
}

/**
 * A copy of `tree`'s `src/`, `package.json` (its `"type": "module"` decides how tsx loads `src/`)
 * and `tsconfig.json` under `os.tmpdir()/contextsync-after-<srcHash>`, `node_modules` linked to
 * the tree's; reused when one with that hash exists. `src/` imports nothing outside itself.
 */
export function freezeTree(tree: SourceTree): SourceTree {
  const dir = join(tmpdir(), `contextsync-after-${tree.srcHash.slice(0, 16)}`)
  if (!existsSync(dir) || srcHash(dir) !== tree.srcHash) {
    // Copied next to its final place and renamed, so a half-made copy is never reused.
    const staging = `${dir}.partial-${process.pid}`
    rmSync(staging, { recursive: true, force: true })
    mkdirSync(staging)
    cpSync(join(tree.root, 'src'), join(staging, 'src'), { recursive: true })
    for (const file of ['package.json', 'tsconfig.json']) cpSync(join(tree.root, file), join(staging, file))
    symlinkSync(realpathSync(join(tree.root, 'node_modules')), join(staging, 'node_modules'), 'dir')
    rmSync(dir, { recursive: true, force: true })
    renameSync(staging, dir)
  }
  const copied = srcHash(dir)
  // The tree moved between hashing and copying: describe what was copied, not what was hashed.
  if (copied !== tree.srcHash) return { ...tree, root: dir, srcHash: copied, frozenFrom: tree.root, subject: `${tree.subject} (changed while copying)` }
  return { ...tree, root: dir, frozenFrom: tree.root }
}

/** The "after" tree: `BENCH_AFTER_ROOT`, default the tree this bench runs from. */
export function afterTree(): SourceTree {
  const root = resolve(process.env.BENCH_AFTER_ROOT ?? benchRoot())
  if (!existsSync(join(root, 'src', 'index.ts'))) throw new BaselineTreeError(`BENCH_AFTER_ROOT=${root} holds no src/index.ts`)
  return describeTree(root)
}

/**
 * Make (or reuse) a worktree of `ref` (default `BENCH_BASELINE` or {@link DEFAULT_BASELINE}) from
 * the repository of `from`, with `node_modules` linked to the one of `from`.
 */
export function baselineTree(ref = process.env.BENCH_BASELINE ?? DEFAULT_BASELINE, from = benchRoot()): SourceTree {
  let sha: string
  try {
    sha = git(from, ['rev-parse', '--verify', `${ref}^{commit}`])
  } catch {
    throw new BaselineTreeError(`BENCH_BASELINE=${ref} names no commit in ${from}`)
  }
  const dir = join(tmpdir(), `contextsync-baseline-${sha}`)
  if (existsSync(dir)) {
    // Reused from an earlier run: it must still be exactly the baseline, or its figures would lie.
    const tree = describeTree(dir)
    if (tree.commit !== sha) throw new BaselineTreeError(`${dir} is at ${tree.commit}, not ${sha}; remove it (git worktree remove --force ${dir})`)
    if (tree.dirtyFiles > 0) throw new BaselineTreeError(`${dir} has ${tree.dirtyFiles} modified files under src/; remove it (git worktree remove --force ${dir})`)
  } else {
    try {
      git(from, ['worktree', 'add', '--detach', dir, sha])
    } catch (error) {
      // A worktree whose directory was removed (tmp cleaned) stays registered until pruned.
      const message = error instanceof Error ? error.message : String(error)
      if (!message.includes('already registered')) throw new BaselineTreeError(`git worktree add ${dir} ${sha} failed: ${message}`)
      git(from, ['worktree', 'add', '--force', '--detach', dir, sha])
    }
  }
  const modules = join(dir, 'node_modules')
  if (!lstatExists(modules)) symlinkSync(realpathSync(join(from, 'node_modules')), modules, 'dir')
  return describeTree(dir)
}

function lstatExists(path: string): boolean {
  try {
    lstatSync(path)
    return true
  } catch {
    return false
  }
}

/** One line naming a tree's commit, for the bench output. */
export function treeLine(label: string, tree: SourceTree): string {
  const dirty = tree.dirtyFiles > 0 ? ` + ${tree.dirtyFiles} uncommitted file(s) under src/` : ''
  const where = tree.frozenFrom ? `${tree.frozenFrom}, frozen at start as ${tree.root}` : tree.root
  return `${label}: ${tree.commit.slice(0, 12)} "${tree.subject}"${dirty}; src sha256 ${tree.srcHash.slice(0, 12)} — ${where}`
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(treeLine('baseline', baselineTree(process.argv[2])))
}
