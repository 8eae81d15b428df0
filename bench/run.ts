/**
 * `npm run bench`: every figure side by side with its baseline, in the same run.
 * Select suites with BENCH=core,relay (default: all available).
 */
import { benchCore } from './core.js'

const suites: Record<string, () => Promise<void>> = { core: benchCore }
const selected = (process.env.BENCH ?? Object.keys(suites).join(',')).split(',')
console.log(`contextsync benchmarks — node ${process.version}, ${new Date().toISOString()}`)
for (const name of selected) {
  const suite = suites[name]
  if (!suite) {
    console.error(`unknown bench suite '${name}'; known: ${Object.keys(suites).join(', ')}`)
    process.exitCode = 2
    continue
  }
  await suite()
}
