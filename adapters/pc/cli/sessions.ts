/**
 * `contextsync sessions list|show|tail` — conversations from a terminal; `tail` prints turns as
 * other devices write them (streamed text as it arrives) until SIGINT/SIGTERM.
 *
 * @module
 */
import { NotFoundError, SESSION_STATUSES, type Session, type SessionStatus } from '../../../src/index.js'
import { UsageError, type CliIo } from '../../../src/cli-io.js'
import type { PcDevice } from '../open-pc.js'
import { sessionSummaryView, sessionView } from '../views.js'
import { commandGroup, DEVICE_FLAGS, intFlag, JSON_FLAG, output, SCOPES_FLAG, stringFlag, SYNC_FLAGS, when, withSyncedDevice, type Parsed, type Subcommand } from './common.js'

const COMMON = [JSON_FLAG, SCOPES_FLAG, ...SYNC_FLAGS, ...DEVICE_FLAGS]

function visible(pc: PcDevice, id: string): Session {
  const session = pc.sync.sessions.get(id)
  if (!session || !pc.exposedScopes().includes(session.scope)) throw new NotFoundError(`no session '${id}' here`)
  return session
}

const list: Subcommand = {
  doc: {
    name: 'sessions list',
    usage: 'sessions list [--scope S] [--status active|archived] [--limit N] [flags]',
    description: 'Conversations, most recently updated first.',
    flags: [
      { name: 'scope', type: 'string', value: 'SCOPE', help: 'One scope (default: every exposed scope).' },
      { name: 'status', type: 'string', value: 'STATUS', help: `One of ${SESSION_STATUSES.join(', ')}.` },
      { name: 'limit', type: 'string', value: 'N', help: 'Most results (default 50).' },
      ...COMMON,
    ],
  },
  positionals: [0, 0],
  run: (parsed, io) => {
    const limit = intFlag(parsed, 'limit', 1, 100_000) ?? 50
    const status = stringFlag(parsed, 'status')
    if (status !== undefined && !(SESSION_STATUSES as readonly string[]).includes(status)) throw new UsageError(`invalid value for --status: '${status}' (expected ${SESSION_STATUSES.join(' or ')})`)
    return withSyncedDevice(parsed, io, async (pc) => {
      const scope = stringFlag(parsed, 'scope')
      const scopes = scope === undefined ? pc.exposedScopes() : [pc.requireScope(scope)]
      const sessions = scopes
        .flatMap((s) => pc.sync.sessions.list({ scope: s, limit, ...(status !== undefined && { status: status as SessionStatus }) }))
        .sort((a, b) => b.updatedAt - a.updatedAt)
        .slice(0, limit)
      output(io, parsed, sessions.map(sessionSummaryView), () =>
        sessions.length === 0 ? 'No conversations.' : sessions.map((s) => `${s.id}  ${s.scope.padEnd(8)} ${when(s.updatedAt)}  ${String(s.turns.length).padStart(4)} turns  ${s.title || '(untitled)'}`).join('\n'),
      )
      return 0
    })
  },
}

const show: Subcommand = {
  doc: { name: 'sessions show', usage: 'sessions show <id> [--last N] [flags]', description: 'A conversation with its turns. Exit 3 when there is no such session.', flags: [{ name: 'last', type: 'string', value: 'N', help: 'Only the last N turns.' }, ...COMMON] },
  positionals: [1, 1],
  run: (parsed, io) => {
    const last = intFlag(parsed, 'last', 1, 1_000_000)
    return withSyncedDevice(parsed, io, async (pc) => {
      const session = visible(pc, parsed.positionals[0]!)
      const view = sessionView(session, last)
      output(io, parsed, view, () => [`${session.title || '(untitled)'} — ${session.scope}, ${session.turns.length} turns`, ...view.turns.map((t) => `${t.role}: ${t.text}${t.done ? '' : ' …'}`)].join('\n'))
      return 0
    })
  },
}

/** Prints what is new in a session's turns since the last call: whole turns, or the streamed text added. */
function tailPrinter(io: CliIo, parsed: Parsed, skip: string[]): (session: Session) => void {
  const printed = new Map<string, { length: number; done: boolean }>(skip.map((id) => [id, { length: 0, done: true }]))
  let openTurn: string | undefined
  return (session) => {
    for (const turn of session.turns) {
      const seen = printed.get(turn.id)
      if (seen && seen.done) continue
      const from = seen?.length ?? 0
      const delta = turn.text.slice(from)
      if (seen && delta === '' && !turn.done) continue
      printed.set(turn.id, { length: turn.text.length, done: turn.done })
      if (parsed.values.json === true) {
        io.stdout(`${JSON.stringify({ sessionId: session.id, turnId: turn.id, role: turn.role, delta, done: turn.done })}\n`)
        continue
      }
      if (openTurn !== turn.id) {
        if (openTurn !== undefined) io.stdout('\n')
        io.stdout(`${turn.role}: `)
        openTurn = turn.id
      }
      io.stdout(delta)
      if (turn.done) {
        io.stdout('\n')
        openTurn = undefined
      }
    }
  }
}

const tail: Subcommand = {
  doc: {
    name: 'sessions tail',
    usage: 'sessions tail <id> [--last N] [flags]',
    description: 'Print the last turns of a conversation, then every turn as other devices write it (streamed text as it arrives), until SIGINT/SIGTERM. With --json, one line per change: {turnId, role, delta, done}.',
    flags: [{ name: 'last', type: 'string', value: 'N', help: 'Turns to print first (default 10).' }, ...COMMON],
  },
  positionals: [1, 1],
  run: (parsed, io) => {
    const last = intFlag(parsed, 'last', 0, 1_000_000) ?? 10
    return withSyncedDevice(parsed, io, async (pc) => {
      const id = parsed.positionals[0]!
      // A session another device just started may not be here yet: wait for it (still only exposed scopes).
      const first = pc.sync.sessions.get(id) ?? (await pc.sync.sessions.whenAvailable(id, { timeoutMs: 30_000 }).then(() => pc.sync.sessions.get(id)))
      if (!first || !pc.exposedScopes().includes(first.scope)) throw new NotFoundError(`no session '${id}' here`)
      const print = tailPrinter(io, parsed, first.turns.slice(0, Math.max(0, first.turns.length - last)).map((t) => t.id))
      print(first)
      const off = pc.sync.sessions.on('change', (event) => {
        if (event.id !== id) return
        const session = pc.sync.sessions.get(id)
        if (session) print(session)
      })
      await new Promise<void>((resolve) => io.onShutdownSignal(() => resolve()))
      off()
      return 0
    })
  },
}

/** `contextsync sessions …`. */
export const sessionsCommand = commandGroup('sessions', 'Conversations on this PC: list, show, tail (live).', { list, show, tail })
