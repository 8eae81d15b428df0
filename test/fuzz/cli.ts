/**
 * The fuzz campaign from the command line (`npm run fuzz -- …`, run by tsx):
 *
 * ```
 * npm run fuzz -- --inputs N [--seed S] [--target a,b] [--workers W] [--budget-ms MS]
 * npm run fuzz -- --target T --seed S --replay <hex | @file>     run one input again, in-process
 * npm run fuzz -- --target T --seed S --index I --replay-index   regenerate input I and run it
 * npm run fuzz -- --list
 * ```
 *
 * Prints the seed first, progress every 10 s, then the report (test/fuzz/report.ts). Exit code 1
 * when any input failed. A replay prints the input's outcome, or the error with its stack.
 *
 * @module
 */
import { readFileSync } from 'node:fs'
import { ready } from '../../src/crypto/index.js'
import { fromHex } from '../../src/util/bytes.js'
import { runCampaign } from './campaign.js'
import { formatReport } from './report.js'
import { inputRng } from './rng.js'
import { TARGETS, targetByName } from './targets/index.js'

interface Options {
  inputs: number
  seed: number
  targets: string[] | undefined
  workers: number
  budgetMs: number
  replay: string | undefined
  index: number | undefined
  replayIndex: boolean
}

function usage(problem?: string): never {
  if (problem) console.error(`fuzz: ${problem}`)
  console.error(
    'usage: npm run fuzz -- --inputs N [--seed S] [--target a,b] [--workers W] [--budget-ms MS]\n' +
      '       npm run fuzz -- --target T --seed S (--replay <hex|@file> | --index I --replay-index)\n' +
      '       npm run fuzz -- --list',
  )
  process.exit(problem ? 2 : 0)
}

function parseArgs(argv: string[]): Options {
  const options: Options = {
    inputs: 100_000,
    seed: Math.floor(Math.random() * 2 ** 31) + 1,
    targets: undefined,
    workers: 2,
    budgetMs: 250,
    replay: undefined,
    index: undefined,
    replayIndex: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    const value = (): string => argv[++i] ?? usage(`${arg} needs a value`)
    const integer = (min: number): number => {
      const n = Number(value())
      if (!Number.isSafeInteger(n) || n < min) usage(`${arg} must be an integer ≥ ${min}`)
      return n
    }
    if (arg === '--inputs') options.inputs = integer(1)
    else if (arg === '--seed') options.seed = integer(0)
    else if (arg === '--target' || arg === '--targets') options.targets = value().split(',').filter(Boolean)
    else if (arg === '--workers') options.workers = integer(1)
    else if (arg === '--budget-ms') options.budgetMs = integer(1)
    else if (arg === '--replay') options.replay = value()
    else if (arg === '--index') options.index = integer(0)
    else if (arg === '--replay-index') options.replayIndex = true
    else if (arg === '--list') {
      for (const t of TARGETS) console.log(`${t.name.padEnd(12)} weight ${String(t.weight).padStart(4)}  ${t.description}`)
      process.exit(0)
    } else if (arg === '--help' || arg === '-h') usage()
    else usage(`unknown argument ${arg}`)
  }
  return options
}

async function replay(options: Options): Promise<number> {
  const name = options.targets?.[0]
  const target = name ? targetByName(name) : undefined
  if (!target || options.targets!.length !== 1) usage('a replay needs exactly one --target')
  await ready()
  const instance = await target.setup(options.seed)
  let input: Uint8Array | undefined
  if (options.replayIndex) {
    if (options.index === undefined) usage('--replay-index needs --index')
    input = instance.generate(inputRng(options.seed, target.name, options.index))
  } else {
    const text = options.replay!.startsWith('@') ? readFileSync(options.replay!.slice(1), 'utf8') : options.replay!
    input = fromHex(text.trim())
    if (!input) usage('--replay takes the input as hex, or @file holding it')
  }
  console.log(`replaying ${target.name}, seed ${options.seed}, ${input.length} bytes`)
  const t0 = performance.now()
  let code = 0
  try {
    const outcome = await instance.run(input)
    console.log(`outcome: ${outcome} (${(performance.now() - t0).toFixed(1)} ms)`)
  } catch (error) {
    console.log(`FAILED after ${(performance.now() - t0).toFixed(1)} ms:`)
    console.log(error instanceof Error ? (error.stack ?? error.message) : String(error))
    code = 1
  }
  await instance.close?.()
  return code
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2))
  if (options.replay !== undefined || options.replayIndex) process.exit(await replay(options))
  console.log(`fuzz seed: ${options.seed} (replay the campaign with --seed ${options.seed})`)
  const result = await runCampaign({
    inputs: options.inputs,
    seed: options.seed,
    workers: options.workers,
    budgetMs: options.budgetMs,
    log: (line) => console.log(line),
    ...(options.targets && { targets: options.targets }),
  })
  console.log(formatReport(result))
  process.exit(result.failureCount > 0 ? 1 : 0)
}

void main()
