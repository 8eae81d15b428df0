/**
 * `contextsync init` (a new account, this PC its first owner; the recovery code is printed once)
 * and `contextsync join <code>` (pair with an invite from the phone: the six digits are shown and
 * confirmed before the PC is admitted).
 *
 * @module
 */
import { PairingError } from '../../../src/index.js'
import { isDeviceLocal } from '../../../src/facade/builtin-scopes.js'
import { UsageError, type CliIo, type Command } from '../../../src/cli-io.js'
import { initPc, joinPc, type PcDevice } from '../open-pc.js'
import { DEVICE_FLAGS, helpText, intFlag, JSON_FLAG, output, parseCommand, pcOptions, stringFlag, type CommandDoc } from './common.js'
import { progressPrinter, progressSummary, trackInitialSync, type SyncProgress } from './progress.js'

const NAME_FLAG = { name: 'name', type: 'string' as const, value: 'NAME', help: "This PC's name on the account's devices list. Default 'My PC'." }

const INIT_DOC: CommandDoc = {
  name: 'init',
  usage: 'init [--relay URL] [--name NAME] [flags]',
  description: [
    'Creates a new account with this PC as its first owner device, in the per-user data folder (or',
    '--data-dir), its keys sealed under the key file (or CONTEXTSYNC_PASSPHRASE). Prints the recovery code',
    'ONCE: write it down — it restores the account root on a new device when every owner device is lost.',
    'With CONTEXTSYNC_RECOVERY_CODE set, restores that account instead of creating one.',
  ].join('\n'),
  flags: [NAME_FLAG, JSON_FLAG, ...DEVICE_FLAGS],
}

const JOIN_DOC: CommandDoc = {
  name: 'join',
  usage: 'join <code> --relay URL [--name NAME] [--yes] [--wait SECONDS] [flags]',
  description: [
    'Pairs this PC with an account using the invite code shown by an owner device (your phone). Both',
    'screens then show the same six digits; this command asks you to confirm that they match (--yes',
    'accepts after printing them — right only when you typed the code off the phone yourself).',
    'Then waits for the initial sync of every room this PC holds, with its progress on stderr (a bar on a',
    'terminal, else JSON lines {"event":"progress","rooms","roomsSynced","updates","bytes"}), and prints',
    '`In sync: <rooms> rooms, <updates> updates, <bytes>`; --json adds synced, rooms, updates and bytes.',
    'Exit 1 when the initial sync did not finish within --wait (the PC is paired all the same: any later',
    'command, or `contextsync sync`, goes on with it).',
  ].join('\n'),
  flags: [
    NAME_FLAG,
    { name: 'yes', type: 'boolean', help: 'Accept the six digits without asking (they are still printed).' },
    { name: 'timeout', type: 'string', value: 'SECONDS', help: 'Give up if the owner has not admitted this PC in time. Default 120.' },
    { name: 'wait', type: 'string', value: 'SECONDS', help: 'How long to wait for the initial sync after pairing. Default 600; 0 exits right after pairing.' },
    JSON_FLAG,
    ...DEVICE_FLAGS,
  ],
}

/** `contextsync init`. */
export const initCommand: Command = {
  summary: 'Create a new account with this PC as its first owner; prints the recovery code once.',
  async run(args, io) {
    const parsed = parseCommand(args, INIT_DOC, io.env, [0, 0])
    if (parsed === 'help') {
      io.stdout(helpText(INIT_DOC))
      return 0
    }
    const name = stringFlag(parsed, 'name')
    const recovery = io.env.CONTEXTSYNC_RECOVERY_CODE
    const { pc, recoveryCode } = await initPc({
      ...pcOptions(parsed, io.env),
      ...(name !== undefined && { name }),
      ...(recovery !== undefined && recovery !== '' && { recoveryCode: recovery }),
    })
    try {
      await pc.sync.flush()
      const result = { accountId: pc.sync.accountId, deviceId: pc.sync.deviceId, dataDir: pc.dataDir, relayUrl: pc.relayUrl ?? null, recoveryCode }
      output(io, parsed, result, () =>
        [
          `Created account ${result.accountId}; this PC (${pc.sync.name}) is its owner device ${result.deviceId}.`,
          `Store: ${pc.dataDir}${pc.relayUrl ? `   Relay: ${pc.relayUrl}` : '   (no relay: offline until you pass --relay)'}`,
          '',
          'Recovery code — write it down now, it is not shown again:',
          '',
          `    ${recoveryCode}`,
          '',
          'Next: `contextsync devices invite --kind phone` to add your phone.',
        ].join('\n'),
      )
    } finally {
      await pc.close()
    }
    return 0
  },
}

/** `contextsync join <code>`. */
export const joinCommand: Command = {
  summary: 'Pair this PC with your account using an invite code from your phone (shows the six digits).',
  async run(args, io) {
    const parsed = parseCommand(args, JOIN_DOC, io.env, [1, 1])
    if (parsed === 'help') {
      io.stdout(helpText(JOIN_DOC))
      return 0
    }
    const invite = parsed.positionals[0]!
    const options = pcOptions(parsed, io.env)
    if (options.relayUrl === undefined) throw new UsageError('join needs --relay URL (the relay your phone uses)')
    const timeout = intFlag(parsed, 'timeout', 1, 3600) ?? 120
    const wait = intFlag(parsed, 'wait', 0, 86_400) ?? 600
    const name = stringFlag(parsed, 'name')
    const yes = parsed.values.yes === true
    let shown: string | undefined
    const confirmSas = async (sas: string): Promise<boolean> => {
      shown = sas
      if (yes) {
        io.stderr(`Pairing code on both screens: ${sas}\n`)
        return true
      }
      if (!io.ask) throw new UsageError('cannot ask for confirmation here: pass --yes')
      const answer = await ask(io, `Does your phone show ${sas}? [y/N] `)
      return /^y(es)?$/i.test(answer.trim())
    }
    let pc
    try {
      pc = await joinPc({ ...options, invite, timeoutMs: timeout * 1000, confirmSas, ...(name !== undefined && { name }) })
    } catch (error) {
      if (error instanceof PairingError) {
        io.stderr(`contextsync join: pairing failed (${error.reason}): ${error.message}\n`)
        return 1
      }
      throw error
    }
    try {
      await pc.sync.flush()
      const joined = { accountId: pc.sync.accountId, deviceId: pc.sync.deviceId, sas: shown ?? null, scopes: pc.sync.scopes.available(), dataDir: pc.dataDir }
      if (parsed.values.json !== true) io.stdout(`Joined account ${joined.accountId} as ${joined.deviceId} (scopes ${joined.scopes.join(', ')}).\n`)
      const waited = wait === 0 ? undefined : await initialSync(pc, io, wait)
      const progress = waited?.progress
      const result = { ...joined, synced: progress?.synced ?? false, rooms: progress?.rooms ?? joined.scopes.filter((scope) => !isDeviceLocal(scope)).length, updates: progress?.updates ?? 0, bytes: progress?.bytes ?? 0 }
      if (parsed.values.json === true) io.stdout(`${JSON.stringify(result)}\n`)
      else if (progress?.synced === true) io.stdout(`In sync: ${progressSummary(progress)}.\n`)
      if (waited && progress && !progress.synced) {
        const why = waited.interrupted ? 'was interrupted' : `did not finish within ${wait}s`
        io.stderr(`contextsync join: paired, but the initial sync ${why} (${progress.roomsSynced} of ${progress.rooms} rooms synced); \`contextsync sync\` or any other command goes on with it\n`)
        return 1
      }
    } finally {
      await pc.close()
    }
    return 0
  },
}

/**
 * Wait up to `seconds` for the initial sync of a PC just paired, its progress on stderr. The store
 * was empty before pairing, so everything in its logs arrived from the relay and counts.
 */
async function initialSync(pc: PcDevice, io: CliIo, seconds: number): Promise<{ progress: SyncProgress; interrupted: boolean }> {
  const printer = progressPrinter(io)
  const initial = trackInitialSync(pc, { report: (progress, reason) => printer.report(progress, reason), countPresent: true })
  let interrupted = false
  const timer = setTimeout(() => void initial.stop(), seconds * 1000)
  const offSignal = io.onShutdownSignal(() => {
    interrupted = true
    void initial.stop()
  })
  try {
    return { progress: await initial.done, interrupted }
  } finally {
    clearTimeout(timer)
    offSignal()
  }
}

async function ask(io: CliIo, question: string): Promise<string> {
  return (await io.ask!(question)) ?? ''
}
