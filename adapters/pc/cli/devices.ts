/**
 * `contextsync devices list|invite|revoke` (inviting and revoking need an owner PC),
 * `contextsync status` (per scope: connection, peers, lag, pending) and `contextsync sync` (stay online,
 * printing what arrives, until SIGINT/SIGTERM).
 *
 * @module
 */
import { DEVICE_KINDS, NotFoundError, PairingError, type DeviceKind } from '../../../src/index.js'
import { UsageError, type Command } from '../../../src/cli-io.js'
import type { PcDevice } from '../open-pc.js'
import {
  commandGroup,
  DEVICE_FLAGS,
  helpText,
  intFlag,
  JSON_FLAG,
  output,
  parseCommand,
  SCOPES_FLAG,
  stringFlag,
  SYNC_FLAGS,
  when,
  whenSynced,
  withDevice,
  withSyncedDevice,
  type CommandDoc,
  type Subcommand,
} from './common.js'
import { bytesText, progressPrinter, progressSummary, trackInitialSync } from './progress.js'

const COMMON = [JSON_FLAG, ...SYNC_FLAGS, ...DEVICE_FLAGS]

const list: Subcommand = {
  doc: { name: 'devices list', usage: 'devices list [flags]', description: "The account's devices, with their scopes.", flags: COMMON },
  positionals: [0, 0],
  run: (parsed, io) =>
    withSyncedDevice(parsed, io, async (pc) => {
      const devices = pc.sync.devices.list()
      output(io, parsed, devices, () =>
        devices
          .map((d) => `${d.deviceId}  ${d.kind.padEnd(8)} ${d.role.padEnd(7)} ${(d.revoked ? 'revoked' : d.scopes.join(',')).padEnd(32)} ${d.name}${d.deviceId === pc.sync.deviceId ? ' (this PC)' : ''}${d.lastSeen !== undefined && d.deviceId !== pc.sync.deviceId ? `  last seen ${when(d.lastSeen)}` : ''}`)
          .join('\n'),
      )
      return 0
    }),
}

const invite: Subcommand = {
  doc: {
    name: 'devices invite',
    usage: 'devices invite --kind phone|glasses|car|pc [--name NAME] [--yes] [flags]',
    description: [
      'Invite a new device (owner PCs only). Prints the code at once (with --json, a first line {code, expiresAt}),',
      'then stays online until the device joined: both screens show six digits, which you confirm here',
      '(--yes accepts after printing them). Exit 1 when the invite fails or expires.',
    ].join('\n'),
    flags: [
      { name: 'kind', type: 'string', value: 'KIND', help: `What the new device is: ${DEVICE_KINDS.join(', ')}.` },
      { name: 'name', type: 'string', value: 'NAME', help: 'Its name on the devices list.' },
      { name: 'yes', type: 'boolean', help: 'Accept the six digits without asking (they are still printed).' },
      { name: 'expires-in', type: 'string', value: 'SECONDS', help: 'How long the code works (default 600).' },
      ...COMMON,
    ],
  },
  positionals: [0, 0],
  run: (parsed, io) => {
    const kind = stringFlag(parsed, 'kind')
    if (kind === undefined || !(DEVICE_KINDS as readonly string[]).includes(kind)) throw new UsageError(`devices invite needs --kind, one of ${DEVICE_KINDS.join(', ')}`)
    const name = stringFlag(parsed, 'name')
    const expiresIn = intFlag(parsed, 'expires-in', 10, 86_400) ?? 600
    const yes = parsed.values.yes === true
    if (!yes && !io.ask) throw new UsageError('cannot ask for confirmation here: pass --yes')
    return withSyncedDevice(parsed, io, async (pc) => {
      const made = await pc.sync.devices.invite({
        kind: kind as DeviceKind,
        expiresIn: expiresIn * 1000,
        ...(name !== undefined && { name }),
        confirm: async ({ sas, kind: asked, name: askedName }) => {
          if (parsed.values.json === true) io.stdout(`${JSON.stringify({ sas, kind: asked, name: askedName })}\n`)
          else io.stderr(`${askedName} (${asked}) asks to join; its screen should show: ${sas}\n`)
          if (yes) return true
          return /^y(es)?$/i.test(((await io.ask!(`Does it show ${sas}? [y/N] `)) ?? '').trim())
        },
      })
      output(io, parsed, { code: made.code, expiresAt: made.expiresAt }, () => `Invite code (until ${when(made.expiresAt)}): ${made.code}\nOn the new device: contextsync join ${made.code} --relay ${pc.relayUrl ?? '<relay URL>'}`)
      try {
        const { deviceId } = await made.result()
        await pc.sync.flush()
        output(io, parsed, { joined: deviceId }, () => `Admitted ${deviceId}.`)
        return 0
      } catch (error) {
        if (error instanceof PairingError) {
          io.stderr(`contextsync devices invite: ${error.reason}: ${error.message}\n`)
          return 1
        }
        throw error
      }
    })
  },
}

const revoke: Subcommand = {
  doc: { name: 'devices revoke', usage: 'devices revoke <deviceId> [flags]', description: 'Revoke a device (owner PCs only): it reads nothing written from now on, and the relay refuses it. Exit 3 for an unknown device.', flags: COMMON },
  positionals: [1, 1],
  run: (parsed, io) =>
    withSyncedDevice(parsed, io, async (pc) => {
      const id = parsed.positionals[0]!
      if (!pc.sync.devices.list().some((d) => d.deviceId === id)) throw new NotFoundError(`no device '${id}' in this account`)
      await pc.sync.devices.revoke(id)
      await pc.sync.flush()
      // Let the revocation reach the relay before the connection goes.
      await whenSynced(pc, 5)
      output(io, parsed, { revoked: id }, () => `Revoked ${id}.`)
      return 0
    }),
}

/** `contextsync devices …`. */
export const devicesCommand = commandGroup('devices', "The account's devices: list, invite (owner), revoke (owner).", { list, invite, revoke })

/** One scope's state, as `status` shows it. */
interface ScopeStatus {
  scope: string
  connection: string
  peers: number
  /** Peers whose announced writes have not all arrived here. */
  behind: number
  /** The longest such wait so far (ms). */
  lagMs: number
  /** Envelopes this PC sealed that may not have reached the relay, and their bytes. */
  pending: { count: number; bytes: number }
}

function scopeStatus(pc: PcDevice): ScopeStatus[] {
  const peers = pc.sync.syncStatus()
  const now = Date.now()
  const pending = pc.pending().scopes
  return pc.sync.scopes.available().filter((s) => s !== 'local').map((scope) => {
    const mine = peers.filter((p) => p.scope === scope)
    const behind = mine.filter((p) => !p.caughtUp)
    return {
      scope,
      connection: pc.connection(scope),
      peers: mine.length,
      behind: behind.length,
      lagMs: behind.reduce((max, p) => Math.max(max, p.behindSince === undefined ? 0 : now - p.behindSince), 0),
      pending: { count: pending[scope]?.count ?? 0, bytes: pending[scope]?.bytes ?? 0 },
    }
  })
}

const STATUS_DOC: CommandDoc = {
  name: 'status',
  usage: 'status [--wait SECONDS] [flags]',
  description: [
    'This PC, its account and relay, and per scope: the relay connection, the peers heard from, how many are',
    'ahead of this PC and for how long, and what this PC wrote that may not have reached the relay yet',
    '(pending: envelopes and bytes, also those left by earlier commands). Exit 1 when the relay did not answer.',
  ].join('\n'),
  flags: [JSON_FLAG, { name: 'wait', type: 'string', value: 'SECONDS', help: 'How long to wait for the relay and the peers (default 3).' }, ...DEVICE_FLAGS],
}

/** `contextsync status`. */
export const statusCommand: Command = {
  summary: 'This PC, its account, and per scope: connection, peers, lag, pending.',
  async run(args, io) {
    const parsed = parseCommand(args, STATUS_DOC, io.env, [0, 0])
    if (parsed === 'help') {
      io.stdout(helpText(STATUS_DOC))
      return 0
    }
    const seconds = intFlag(parsed, 'wait', 0, 600) ?? 3
    return withDevice(parsed, io.env, async (pc) => {
      const synced = await whenSynced(pc, seconds)
      // Peers announce their progress in presence; give it a moment to arrive.
      if (synced) await new Promise((r) => setTimeout(r, Math.min(1000, seconds * 1000)))
      const status = {
        accountId: pc.sync.accountId,
        deviceId: pc.sync.deviceId,
        name: pc.sync.name,
        owner: pc.sync.isOwner,
        relayUrl: pc.relayUrl ?? null,
        dataDir: pc.dataDir,
        exposedScopes: pc.exposedScopes(),
        scopes: scopeStatus(pc),
        pending: { count: pc.pending().count, bytes: pc.pending().bytes },
        rejected: pc.sync.rejectionCounts(),
      }
      output(io, parsed, status, () =>
        [
          `${status.name} (${status.owner ? 'owner' : 'member'}) ${status.deviceId} of account ${status.accountId}`,
          `relay ${status.relayUrl ?? 'none (offline)'} · store ${status.dataDir}`,
          ...status.scopes.map(
            (s) =>
              `  ${s.scope.padEnd(10)} ${s.connection.padEnd(12)} ${s.peers} peers${s.behind > 0 ? `, ${s.behind} ahead of this PC for ${Math.round(s.lagMs / 1000)}s` : ', caught up'}, ${s.pending.count === 0 ? 'nothing pending' : `${s.pending.count} pending (${bytesText(s.pending.bytes)})`}`,
          ),
        ].join('\n'),
      )
      return pc.relayUrl === undefined || synced ? 0 : 1
    })
  },
}

const SYNC_DOC: CommandDoc = {
  name: 'sync',
  usage: 'sync [flags]',
  description: [
    'Stay online and keep this PC in sync (a daemon), printing each change as it arrives, until SIGINT/SIGTERM.',
    'With --json, one JSON line per event on stdout. The initial sync of every room this PC holds shows its',
    'progress on stderr (a bar on a terminal, else JSON lines {"event":"progress","rooms","roomsSynced","updates",',
    '"bytes"}), then one line: with --json the event {"event":"synced","rooms","updates","bytes"} on stdout;',
    'otherwise on stderr `in sync: <rooms> rooms, <updates> updates, <bytes>` on a terminal, that JSON line',
    'elsewhere. The counts are what arrived from the relay in this run.',
  ].join('\n'),
  flags: [JSON_FLAG, SCOPES_FLAG, ...DEVICE_FLAGS],
}

/** `contextsync sync`. */
export const syncCommand: Command = {
  summary: 'Stay online and keep this PC in sync (a daemon) until SIGINT/SIGTERM.',
  async run(args, io) {
    const parsed = parseCommand(args, SYNC_DOC, io.env, [0, 0])
    if (parsed === 'help') {
      io.stdout(helpText(SYNC_DOC))
      return 0
    }
    return withDevice(parsed, io.env, async (pc) => {
      if (pc.relayUrl === undefined) throw new UsageError('sync needs a relay: pass --relay URL')
      const printer = progressPrinter(io)
      const event = (value: Record<string, unknown>, text: string): void => {
        printer.clear()
        output(io, parsed, { at: Date.now(), ...value }, () => `${when(Date.now())}  ${text}`)
      }
      const offs = [
        pc.sync.on('status', ({ scope, status }) => event({ event: 'status', scope, status }, `${scope}: ${status}`)),
        pc.sync.on('sync-lag', (e) => event({ event: 'sync-lag', ...e }, `${e.scope}: ${e.state} (device ${e.deviceId}, seq ${e.announcedSeq})`)),
        pc.sync.on('rejected', (e) => event({ event: 'rejected', code: e.code, scope: e.scope, source: e.source }, `${e.scope}: refused input (code ${e.code}, ${e.source})`)),
        pc.sync.memory.on('change', (e) => {
          if (e.origin === 'remote' && pc.exposedScopes().includes(e.scope)) event({ event: 'memory', type: e.type, id: e.id, scope: e.scope }, `memory ${e.type} ${e.id} (${e.scope})`)
        }),
        pc.sync.sessions.on('change', (e) => {
          if (e.origin === 'remote' && pc.exposedScopes().includes(e.scope)) event({ event: 'session', id: e.id, scope: e.scope }, `session ${e.id} changed (${e.scope})`)
        }),
        pc.sync.on('revoked', () => event({ event: 'revoked' }, 'this PC was revoked')),
      ]
      // Progress on stderr (stdout stays the event stream), then one line once every room synced.
      const initial = trackInitialSync(pc, { report: (progress, reason) => printer.report(progress, reason) })
      void initial.done.then((progress) => {
        if (!progress.synced) return
        const synced = { event: 'synced', rooms: progress.rooms, updates: progress.updates, bytes: progress.bytes, scopes: pc.exposedScopes() }
        if (parsed.values.json === true) io.stdout(`${JSON.stringify({ at: Date.now(), ...synced })}\n`)
        else if (io.stderrIsTty === true) io.stderr(`in sync: ${progressSummary(progress)}\n`)
        else io.stderr(`${JSON.stringify(synced)}\n`)
      })
      await new Promise<void>((resolve) => io.onShutdownSignal(() => resolve()))
      await initial.stop()
      for (const off of offs) off()
      return 0
    })
  },
}
