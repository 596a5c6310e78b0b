// bench:api's load generators: wrk (C) rotating over a list of paths for the high-rate phases, autocannon
// (in this process) for one-at-a-time requests and where wrk is missing. Each run reports the API
// process's CPU time per request (from /proc) and the load generator's.
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { processCpuSeconds } from '@circles/testkit'
import autocannon from 'autocannon'

// wrk (C) costs the load generator ~10x less CPU per request than autocannon (JS, measured ~75 us per
// request here: one core of autocannon cannot offer 15k req/s). The high-rate phases use it when installed
// (`apt-get install wrk`), autocannon otherwise, with a warning.
const WRK_SCRIPT = `
local paths = {}
for line in io.lines(os.getenv("BENCH_WRK_PATHS")) do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('\\n{"requests":%d,"duration_us":%d,"errors":%d,"non2xx":%d,"p50_us":%d,"p99_us":%d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
`

export function hasWrk(): boolean {
  const r = spawnSync('wrk', ['--version'], { encoding: 'utf8' })
  return !r.error && /wrk/.test(`${r.stdout}${r.stderr}`)
}

async function wrkRun(
  base: string,
  paths: string[],
  opts: { connections: number; duration: number; pid?: number },
): Promise<Run> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-api-'))
  try {
    writeFileSync(join(dir, 'paths.txt'), `${paths.join('\n')}\n`)
    writeFileSync(join(dir, 'rotate.lua'), WRK_SCRIPT)
    const cpu0 = processCpuSeconds(opts.pid)
    const load0 = processCpuSeconds(process.pid, true)
    const proc = spawn(
      'wrk',
      ['-t1', `-c${opts.connections}`, `-d${opts.duration}s`, '-s', join(dir, 'rotate.lua'), base],
      {
        env: { ...process.env, BENCH_WRK_PATHS: join(dir, 'paths.txt') },
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    )
    let out = ''
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d
    })
    const [code] = (await once(proc, 'exit')) as [number | null]
    const line = out.split('\n').find((l) => l.startsWith('{"requests"'))
    if (code !== 0 || !line) throw new Error(`wrk failed (exit ${code}): ${out}`)
    const w = JSON.parse(line) as {
      requests: number
      duration_us: number
      errors: number
      non2xx: number
      p50_us: number
      p99_us: number
    }
    const cpu = processCpuSeconds(opts.pid) - cpu0
    const load = processCpuSeconds(process.pid, true) - load0
    const per = (s: number) => Math.round((s / Math.max(1, w.requests)) * 1e6 * 10) / 10
    return {
      rps: Math.round(w.requests / (w.duration_us / 1e6)),
      p50: Math.round(w.p50_us / 10) / 100,
      p99: Math.round(w.p99_us / 10) / 100,
      errors: w.errors,
      non2xx: w.non2xx,
      apiCpuUs: per(cpu),
      loadCpuUs: per(load),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

export interface Run {
  rps: number
  p50: number
  p99: number
  errors: number
  non2xx: number
  /** The API process's CPU time per request, microseconds. */
  apiCpuUs: number
  /** This process's (autocannon's) CPU time per request, microseconds: is the load generator the limit? */
  loadCpuUs: number
}

export async function cannon(
  base: string,
  paths: () => string,
  opts: { connections: number; duration?: number; amount?: number; pid?: number },
): Promise<Run> {
  const cpu0 = processCpuSeconds(opts.pid)
  const self0 = process.cpuUsage()
  const result = await autocannon({
    url: base,
    connections: opts.connections,
    ...(opts.duration !== undefined ? { duration: opts.duration } : {}),
    ...(opts.amount !== undefined ? { amount: opts.amount } : {}),
    requests: [
      {
        setupRequest: (req) => {
          req.path = paths()
          return req
        },
      },
    ],
  })
  const cpu = processCpuSeconds(opts.pid) - cpu0
  const self = process.cpuUsage(self0)
  const done = result.requests.total
  return {
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    apiCpuUs: Math.round((cpu / Math.max(1, done)) * 1e6 * 10) / 10,
    loadCpuUs: Math.round(((self.user + self.system) / Math.max(1, done)) * 10) / 10,
  }
}

/** Many connections for a while over `paths` in turn: wrk where installed, else autocannon. */
export async function hammer(
  base: string,
  paths: string[],
  opts: { connections: number; duration: number; pid?: number; wrk: boolean },
): Promise<Run> {
  if (opts.wrk) return wrkRun(base, paths, opts)
  let k = 0
  return cannon(base, () => paths[k++ % paths.length]!, opts)
}
