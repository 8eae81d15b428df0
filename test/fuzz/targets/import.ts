/**
 * Whole memory export files through a real device's `memory.import` (src/facade/memory-file/import.ts,
 * WIRE.md "Memory export"): untrusted input never throws — the import resolves with a report
 * whose every refusal carries a RejectCode. The genuine files are exports of the device's own
 * account (so they are trusted and reach the line checks); inputs cut, drop, repeat, reorder and
 * splice their lines, and mutate single lines as text and as JSON structure.
 *
 * @module
 */
import { ContextSync, createAccount, memoryStorage } from '../../../src/index.js'
import { fromUtf8, utf8 } from '../../../src/util/bytes.js'
import { mutateJson, mutateJsonText, toText } from '../json-mutators.js'
import { mutate } from '../mutators.js'
import { chance, int, pick, setupRng, weighted, type Rng } from '../rng.js'
import { expectThat, isRejectCode, type Target } from '../target.js'

function parsed(line: string): unknown {
  try {
    return JSON.parse(line)
  } catch {
    return undefined
  }
}

function mutateLine(gen: Rng, line: string): string {
  return weighted<() => string>(gen, [
    [3, () => fromUtf8(mutate(gen, utf8(line)))],
    [1, () => mutateJsonText(gen, line)],
    [
      3,
      () => {
        // A line an earlier round already broke (or nested too deep to walk) is mutated as text.
        const value = line.length < 65_536 ? parsed(line) : undefined
        if (value === undefined) return mutateJsonText(gen, line)
        try {
          return toText(gen, mutateJson(gen, value))
        } catch {
          return mutateJsonText(gen, line)
        }
      },
    ],
  ])()
}

export const importTarget: Target = {
  name: 'import',
  description: 'whole export files through a real device: memory.import (src/facade/memory-file/import.ts)',
  weight: 1.5,
  budgetMs: 1000,
  async setup(seed) {
    const gen0 = setupRng(seed, 'import')
    const account = await createAccount()
    const dev = await ContextSync.open({ account, device: { kind: 'phone', name: 'Fuzz phone' }, storage: memoryStorage(), transports: [] })
    for (let i = 0; i < 6; i++) {
      await dev.memory.remember({ text: `fuzz import ${i} ${int(gen0, 0, 1e9)}`, kind: i === 5 ? 'instruction' : 'fact', tags: ['fuzz'], confidence: 0.5 })
    }
    const files = [await dev.memory.export({ scope: 'personal' }).text(), await dev.memory.export({ scope: 'personal', includeHistory: false }).text()]
    const lineSets = files.map((f) => f.split('\n').filter((l) => l.length > 0))
    return {
      generate(gen) {
        const lines = [...pick(gen, lineSets)]
        const rounds = chance(gen, 0.7) ? 1 : int(gen, 2, 3)
        for (let r = 0; r < rounds && lines.length > 0; r++) {
          const at = int(gen, 0, lines.length - 1)
          weighted<() => void>(gen, [
            [6, () => (lines[at] = mutateLine(gen, lines[at]!))],
            [1, () => lines.splice(at, 1)],
            [1, () => lines.splice(at, 0, lines[at]!)],
            [1, () => lines.splice(int(gen, 0, lines.length), 0, pick(gen, pick(gen, lineSets)))],
            [1, () => lines.reverse()],
            [1, () => (lines.length = at)],
            [1, () => lines.splice(at, 0, '', '   ', '\r')],
          ])()
        }
        return utf8(lines.join(chance(gen, 0.9) ? '\n' : '\r\n'))
      },
      async run(input) {
        const report = await dev.memory.import(input)
        for (const r of report.rejected) {
          expectThat(isRejectCode(r.code) && typeof r.reason === 'string' && Number.isSafeInteger(r.line), `import refused line ${r.line} with ${String(r.code)}`)
        }
        const codes = [...new Set(report.rejected.map((r) => r.code))].sort((a, b) => a - b)
        return `imported ${report.imported > 0 ? 'some' : 'none'}, refused codes [${codes.join(',')}]`
      },
      close: () => dev.close(),
    }
  },
}
