/**
 * `contextsync memory add|list|recall|show|forget|export|import` — the PC's memories from a
 * terminal, within the exposed scopes (`--scopes`), after syncing with the relay (`--offline`
 * skips that).
 *
 * @module
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { MEMORY_KINDS, NotFoundError, type MemoryItem, type MemoryKind } from '../../../src/index.js'
import { UsageError } from '../../../src/cli-io.js'
import type { PcDevice } from '../open-pc.js'
import { recallExposed } from '../recall.js'
import { memoryView } from '../views.js'
import { commandGroup, DEVICE_FLAGS, intFlag, JSON_FLAG, output, SCOPES_FLAG, stringFlag, SYNC_FLAGS, when, withSyncedDevice, type FlagDoc, type Parsed, type Subcommand } from './common.js'

const COMMON = [JSON_FLAG, SCOPES_FLAG, ...SYNC_FLAGS, ...DEVICE_FLAGS]
const SCOPE: FlagDoc = { name: 'scope', type: 'string', value: 'SCOPE', help: 'One scope (default: every exposed scope; for add, personal).' }
const TAGS: FlagDoc = { name: 'tags', type: 'string', value: 'A,B', help: 'Tags, comma-separated (filters: items carrying all of them).' }
const KIND: FlagDoc = { name: 'kind', type: 'string', value: 'KIND', help: `One of ${MEMORY_KINDS.join(', ')}.` }
const LIMIT: FlagDoc = { name: 'limit', type: 'string', value: 'N', help: 'Most results.' }

function kindFlag(parsed: Parsed): MemoryKind | undefined {
  const kind = stringFlag(parsed, 'kind')
  if (kind !== undefined && !(MEMORY_KINDS as readonly string[]).includes(kind)) throw new UsageError(`invalid value for --kind: '${kind}' (expected one of ${MEMORY_KINDS.join(', ')})`)
  return kind as MemoryKind | undefined
}

function tagsFlag(parsed: Parsed): string[] | undefined {
  const raw = stringFlag(parsed, 'tags')
  return raw === undefined ? undefined : raw.split(',').map((t) => t.trim()).filter((t) => t.length > 0)
}

/** The scopes a read covers: `--scope` (checked) or every exposed one. */
function readScopes(pc: PcDevice, parsed: Parsed): string[] {
  const scope = stringFlag(parsed, 'scope')
  return scope === undefined ? pc.exposedScopes() : [pc.requireScope(scope)]
}

function visible(pc: PcDevice, id: string): MemoryItem {
  const item = pc.sync.memory.get(id)
  if (!item || !pc.exposedScopes().includes(item.scope)) throw new NotFoundError(`no memory '${id}' here`)
  return item
}

function line(item: MemoryItem): string {
  return `${item.id}  ${item.scope.padEnd(8)} ${item.kind.padEnd(10)} ${item.text}${item.tags.length > 0 ? `  #${item.tags.join(' #')}` : ''}`
}

const add: Subcommand = {
  doc: { name: 'memory add', usage: 'memory add <text> [--scope S] [--kind K] [--tags a,b] [flags]', description: 'Remember something; prints the new memory.', flags: [SCOPE, KIND, TAGS, ...COMMON] },
  positionals: [1, 1],
  run: (parsed, io) => {
    const kind = kindFlag(parsed)
    const tags = tagsFlag(parsed)
    return withSyncedDevice(parsed, io, async (pc) => {
      const item = await pc.sync.memory.remember({ text: parsed.positionals[0]!, scope: pc.requireScope(stringFlag(parsed, 'scope') ?? 'personal'), ...(kind && { kind }), ...(tags && { tags }) })
      output(io, parsed, memoryView(item), () => line(item))
      return 0
    })
  },
}

const list: Subcommand = {
  doc: { name: 'memory list', usage: 'memory list [--scope S] [--tags a,b] [--kind K] [--limit N] [flags]', description: 'List memories, newest first.', flags: [SCOPE, TAGS, KIND, LIMIT, ...COMMON] },
  positionals: [0, 0],
  run: (parsed, io) => {
    const limit = intFlag(parsed, 'limit', 1, 1_000_000) ?? 100
    const kind = kindFlag(parsed)
    const tags = tagsFlag(parsed)
    return withSyncedDevice(parsed, io, async (pc) => {
      const items = readScopes(pc, parsed)
        .flatMap((scope) => pc.sync.memory.list({ scope, limit, ...(kind && { kind }), ...(tags && { tags }) }))
        .sort((a, b) => b.updatedAt - a.updatedAt)
        .slice(0, limit)
      output(io, parsed, items.map(memoryView), () => (items.length === 0 ? 'No memories.' : items.map(line).join('\n')))
      return 0
    })
  },
}

const recall: Subcommand = {
  doc: { name: 'memory recall', usage: 'memory recall <query> [--scope S] [--limit N] [flags]', description: 'The memories most relevant to a query, best first (with their scores).', flags: [SCOPE, TAGS, KIND, LIMIT, ...COMMON] },
  positionals: [1, 1],
  run: (parsed, io) => {
    const limit = intFlag(parsed, 'limit', 1, 1000) ?? 10
    const kind = kindFlag(parsed)
    const tags = tagsFlag(parsed)
    return withSyncedDevice(parsed, io, async (pc) => {
      const scope = stringFlag(parsed, 'scope')
      const hits = recallExposed(pc, { text: parsed.positionals[0]!, limit, ...(scope !== undefined && { scope }), ...(kind && { kind }), ...(tags && { tags }) })
      output(io, parsed, hits.map((h) => ({ ...memoryView(h.item), score: h.score })), () =>
        hits.length === 0 ? 'Nothing found.' : hits.map((h) => `${h.score.toFixed(2).padStart(6)}  ${line(h.item)}`).join('\n'),
      )
      return 0
    })
  },
}

const show: Subcommand = {
  doc: { name: 'memory show', usage: 'memory show <id> [flags]', description: 'One memory with its provenance and the versions it replaced. Exit 3 when there is no such memory.', flags: COMMON },
  positionals: [1, 1],
  run: (parsed, io) =>
    withSyncedDevice(parsed, io, async (pc) => {
      const item = visible(pc, parsed.positionals[0]!)
      const history = pc.sync.memory.history(item.id).filter((v) => v.id !== item.id)
      output(io, parsed, { ...memoryView(item), history: history.map(memoryView) }, () =>
        [
          item.text,
          `id ${item.id} · ${item.kind} · scope ${item.scope}${item.tags.length ? ` · tags ${item.tags.join(', ')}` : ''}`,
          `written by ${item.source.deviceId} · created ${when(item.createdAt)} · updated ${when(item.updatedAt)}`,
          ...history.map((v) => `  replaced: ${v.text} (${when(v.updatedAt)})`),
        ].join('\n'),
      )
      return 0
    }),
}

const forget: Subcommand = {
  doc: { name: 'memory forget', usage: 'memory forget <id> [flags]', description: 'Forget a memory (and the versions it replaced) on every device. Exit 3 when there is no such memory.', flags: COMMON },
  positionals: [1, 1],
  run: (parsed, io) =>
    withSyncedDevice(parsed, io, async (pc) => {
      const item = visible(pc, parsed.positionals[0]!)
      await pc.sync.memory.forget(item.id, { history: true })
      await pc.sync.flush()
      output(io, parsed, { forgotten: true, id: item.id }, () => `Forgot ${item.id}.`)
      return 0
    }),
}

const exportCmd: Subcommand = {
  doc: {
    name: 'memory export',
    usage: 'memory export --scope S [--out FILE] [flags]',
    description: 'Write the memories of one scope as signed JSONL (to stdout, or --out FILE written 0600).',
    flags: [{ ...SCOPE, help: 'The scope to export (required).' }, { name: 'out', type: 'string', value: 'FILE', help: 'Write here instead of stdout.' }, ...COMMON],
  },
  positionals: [0, 0],
  run: (parsed, io) => {
    const scope = stringFlag(parsed, 'scope')
    if (scope === undefined) throw new UsageError('memory export needs --scope')
    return withSyncedDevice(parsed, io, async (pc) => {
      const text = await pc.sync.memory.export({ scope: pc.requireScope(scope) }).text()
      const out = stringFlag(parsed, 'out')
      if (out === undefined) io.stdout(text)
      else {
        writeFileSync(out, text, { mode: 0o600 })
        io.stderr(`Wrote ${text.split('\n').length - 2} memories of ${scope} to ${out}.\n`)
      }
      return 0
    })
  },
}

const importCmd: Subcommand = {
  doc: {
    name: 'memory import',
    usage: 'memory import <file|-> [--scope S] [--trust ACCOUNT,…] [flags]',
    description: "Import a signed JSONL export ('-' reads stdin). Files of this account are trusted; another account's only with --trust.",
    flags: [{ ...SCOPE, help: 'Import into this scope instead of the one each memory names.' }, { name: 'trust', type: 'string', value: 'ID,…', help: 'Other account ids whose files to accept.' }, ...COMMON],
  },
  positionals: [1, 1],
  run: (parsed, io) => {
    const file = parsed.positionals[0]!
    let text: string
    try {
      text = readFileSync(file === '-' ? 0 : file, 'utf8')
    } catch (error) {
      throw new UsageError(`cannot read ${file}: ${(error as Error).message}`)
    }
    const scope = stringFlag(parsed, 'scope')
    const trust = stringFlag(parsed, 'trust')?.split(',').map((t) => t.trim()).filter((t) => t.length > 0)
    return withSyncedDevice(parsed, io, async (pc) => {
      // Every memory must land in an exposed scope: each line names its own, so without --scope
      // every scope the PC holds must be exposed.
      if (scope === undefined) {
        const hidden = pc.sync.scopes.available().filter((s) => s !== 'local' && !pc.exposedScopes().includes(s))
        if (hidden.length > 0) throw new UsageError(`memory import with --scopes ${pc.scopes.join(',')} needs --scope (the file may name ${hidden.join(', ')})`)
      }
      const report = await pc.sync.memory.import(text, { ...(scope !== undefined && { scope: pc.requireScope(scope) }), ...(trust && { trust }) })
      await pc.sync.flush()
      output(io, parsed, report, () => `Imported ${report.imported}, skipped ${report.skipped}, refused ${report.rejected.length}${report.rejected.map((r) => `\n  line ${r.line}: ${r.reason}`).join('')}`)
      return report.rejected.length > 0 && report.imported === 0 ? 1 : 0
    })
  },
}

/** `contextsync memory …`. */
export const memoryCommand = commandGroup('memory', 'Memories of this PC: add, list, recall, show, forget, export, import.', {
  add,
  list,
  recall,
  show,
  forget,
  export: exportCmd,
  import: importCmd,
})

