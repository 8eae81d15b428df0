/** Helpers to print benchmark results as aligned tables with ratios. */

/** Median of numbers. */
export function median(values: number[]): number {
  return percentile(values, 50)
}

/** The p-th percentile (nearest rank) of numbers. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank]!
}

/** Format a number with a unit and sensible precision. */
export function fmt(value: number, unit = ''): string {
  if (!Number.isFinite(value)) return String(value)
  const abs = Math.abs(value)
  const digits = abs >= 100 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3
  return `${value.toFixed(digits)}${unit ? ` ${unit}` : ''}`
}

/** Print a table: a title, a header row and rows of cells. */
export function printTable(title: string, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')
  console.log(`\n${title}`)
  console.log(line(header))
  console.log(widths.map((w) => '─'.repeat(w)).join('  '))
  for (const row of rows) console.log(line(row))
}

/** Run `fn` `runs` times and return each run's result. */
export async function repeat<T>(runs: number, fn: (run: number) => Promise<T>): Promise<T[]> {
  const out: T[] = []
  for (let i = 0; i < runs; i++) out.push(await fn(i))
  return out
}
