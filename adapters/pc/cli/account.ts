/**
 * `contextsync init` (a new account, this PC its first owner; the recovery code is printed once)
 * and `contextsync join <code>` (pair with an invite from the phone: the six digits are shown and
 * confirmed before the PC is admitted).
 *
 * @module
 */
import { PairingError } from '../../../src/index.js'
import { UsageError, type CliIo, type Command } from '../../../src/cli-io.js'
import { initPc, joinPc } from '../open-pc.js'
import { DEVICE_FLAGS, helpText, intFlag, JSON_FLAG, output, parseCommand, pcOptions, stringFlag, type CommandDoc } from './common.js'

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
  usage: 'join <code> --relay URL [--name NAME] [--yes] [flags]',
  description: [
    'Pairs this PC with an account using the invite code shown by an owner device (your phone). Both',
    'screens then show the same six digits; this command asks you to confirm that they match (--yes',
    'accepts after printing them — right only when you typed the code off the phone yourself).',
  ].join('\n'),
  flags: [
    NAME_FLAG,
    { name: 'yes', type: 'boolean', help: 'Accept the six digits without asking (they are still printed).' },
    { name: 'timeout', type: 'string', value: 'SECONDS', help: 'Give up if the owner has not admitted this PC in time. Default 120.' },
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
      const result = { accountId: pc.sync.accountId, deviceId: pc.sync.deviceId, sas: shown ?? null, scopes: pc.sync.scopes.available(), dataDir: pc.dataDir }
      output(io, parsed, result, () => `Joined account ${result.accountId} as ${result.deviceId} (scopes ${result.scopes.join(', ')}).`)
    } finally {
      await pc.close()
    }
    return 0
  },
}

async function ask(io: CliIo, question: string): Promise<string> {
  return (await io.ask!(question)) ?? ''
}
