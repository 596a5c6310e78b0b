import { readFileSync } from 'node:fs'

/**
 * User + system CPU seconds a process has used so far (Linux /proc; NaN elsewhere); `children` gives those
 * of its children that have exited and been waited for instead (how a finished wrk's CPU is read). The
 * benchmarks print it beside wall-clock rates: it is what noise on a shared machine disturbs least.
 */
export function processCpuSeconds(pid: number | undefined, children = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces): utime, stime, cutime, cstime are 12th to 15th.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const at = children ? 13 : 11
    return (Number(f[at]) + Number(f[at + 1])) / 100
  } catch {
    return Number.NaN
  }
}
