/**
 * Text report of a campaign: per target the inputs, rate, slowest input, largest allocation and
 * the outcome histogram (refusal codes by number and name), then every failure with its seed,
 * index and input as hex, and the command that replays it (inputs over 2 KiB are written to a file
 * in the temp folder, named in the command).
 *
 * @module
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CampaignResult } from './campaign.js'
import type { Failure } from './engine.js'

/** Inputs longer than this (bytes) go to a file instead of the terminal. */
const INLINE_HEX_BYTES = 2048

/** The command that replays a failure; long inputs are written under `dir` first. */
export function replayCommand(f: Failure, dir = join(tmpdir(), 'contextsync-fuzz-failures')): string {
  if (f.inputHex.length === 0) return `npm run fuzz -- --target ${f.target} --seed ${f.seed} --index ${f.index} --replay-index`
  if (f.inputHex.length <= INLINE_HEX_BYTES * 2) return `npm run fuzz -- --target ${f.target} --seed ${f.seed} --replay ${f.inputHex}`
  mkdirSync(dir, { recursive: true })
  const file = join(dir, `${f.target}-${f.seed}-${f.index}.hex`)
  writeFileSync(file, `${f.inputHex}\n`)
  return `npm run fuzz -- --target ${f.target} --seed ${f.seed} --replay @${file}`
}

/** Format a campaign result. */
export function formatReport(result: CampaignResult): string {
  const lines: string[] = []
  const seconds = result.wallMs / 1000
  lines.push(
    `fuzz campaign: seed ${result.seed}, ${result.inputs} inputs in ${seconds.toFixed(1)} s ` +
      `(${(result.inputs / Math.max(seconds, 0.001)).toFixed(0)} inputs/s, ${result.workers} worker${result.workers === 1 ? '' : 's'}), ` +
      `${result.failureCount} failure${result.failureCount === 1 ? '' : 's'}`,
  )
  for (const s of result.perTarget) {
    const rate = s.runMs > 0 ? (s.inputs / (s.runMs / 1000)).toFixed(0) : '∞'
    lines.push(
      `  ${s.target.padEnd(12)} ${String(s.inputs).padStart(8)} inputs  ${rate.padStart(7)}/s per thread  ` +
        `slowest ${s.maxMs.toFixed(1)} ms  most allocated ${(s.maxAllocBytes / 2 ** 20).toFixed(1)} MiB`,
    )
    for (const [outcome, n] of Object.entries(s.histogram).sort((a, b) => b[1] - a[1])) lines.push(`      ${String(n).padStart(8)}  ${outcome}`)
  }
  for (const f of result.failures) {
    lines.push(`FAIL ${f.target} input #${f.index} seed ${f.seed} — ${f.kind}: ${f.message}`)
    if (f.inputHex.length > 0 && f.inputHex.length <= INLINE_HEX_BYTES * 2) lines.push(`  input (${f.inputHex.length / 2} bytes): ${f.inputHex}`)
    lines.push(`  replay: ${replayCommand(f)}`)
  }
  if (result.failureCount > result.failures.length) lines.push(`… and ${result.failureCount - result.failures.length} more failures`)
  return lines.join('\n')
}
