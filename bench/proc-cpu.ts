/**
 * Another process's CPU time and memory, read from Linux's /proc, for benches that measure a
 * relay (or PostgreSQL, Redis) in its own process: its cost is then its own, not this process's.
 * Linux only; the readers throw when the process is gone (callers that expect that catch it).
 *
 * @module
 */
import { readdirSync, readFileSync } from 'node:fs'

/** Linux's USER_HZ: /proc/<pid>/stat counts CPU time in these ticks per second. */
export const CLOCK_TICKS_PER_S = 100

/** What {@link procStat} reads from /proc/<pid>/stat. */
export interface ProcStat {
  /** The parent's pid. */
  ppid: number
  /** User + system CPU so far, in ticks ({@link CLOCK_TICKS_PER_S}). */
  cpuTicks: number
  /** User + system CPU of its children that exited and were waited for, in ticks. */
  reapedChildrenTicks: number
}

/**
 * Read /proc/<pid>/stat; throws when the process does not exist (any more).
 *
 * @example
 * ```ts
 * const { cpuTicks } = procStat(relay.child.pid!)
 * ```
 */
export function procStat(pid: number | string): ProcStat {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces and parentheses) start at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return {
    ppid: Number(fields[1]),
    cpuTicks: Number(fields[11]) + Number(fields[12]),
    reapedChildrenTicks: Number(fields[13]) + Number(fields[14]),
  }
}

/**
 * User + system CPU of a process so far, in milliseconds; `children` adds its reaped children's.
 * Throws when the process is gone.
 *
 * @example
 * ```ts
 * const before = cpuMs(pid)
 * await workload()
 * const relayCpuMs = cpuMs(pid) - before
 * ```
 */
export function cpuMs(pid: number, options: { children?: boolean } = {}): number {
  const stat = procStat(pid)
  const ticks = options.children ? stat.cpuTicks + stat.reapedChildrenTicks : stat.cpuTicks
  return (ticks * 1000) / CLOCK_TICKS_PER_S
}

/**
 * Resident memory now and its peak (MiB), from /proc/<pid>/status (`VmRSS`, `VmHWM`).
 *
 * @example
 * ```ts
 * const { rssMiB, peakMiB } = procMemory(relay.child.pid!)
 * ```
 */
export function procMemory(pid: number): { rssMiB: number; peakMiB: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)![1])
  return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 }
}

/**
 * User + system CPU so far (ms) of the live processes whose parent is `ppid` (e.g. PostgreSQL's
 * backends under its postmaster). One that exits during the scan is left out: once reaped it
 * counts in its parent's `children` figure of {@link cpuMs}.
 *
 * @example
 * ```ts
 * const clusterCpuMs = cpuMs(postmaster, { children: true }) + liveChildrenCpuMs(postmaster)
 * ```
 */
export function liveChildrenCpuMs(ppid: number): number {
  let ticks = 0
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = procStat(entry)
      if (stat.ppid === ppid) ticks += stat.cpuTicks
    } catch {
      // exited meanwhile
    }
  }
  return (ticks * 1000) / CLOCK_TICKS_PER_S
}
