// bench:api's history case: GET /v1/accounts/:actor/history?days=90 of the heavy account of history-account.ts,
// one request at a time over HTTP to the API child, as a page would ask, from a small client process of its
// own (history-client.ts says why). The first request of the API process (no day remembered yet) apart, then
// BENCH_HISTORY_WARMUP unmeasured requests, then the measured ones; the API's CPU time is read around the measured ones.
import { spawn } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { quantile } from './history-account.js'

const CLIENT = resolve(dirname(fileURLToPath(import.meta.url)), 'history-client.js')
/**
 * Unmeasured requests first: as for the uncached circles (bench-api.ts), a fresh API process compiles the
 * route's once-a-request functions over its first few hundred requests, on the core it answers on.
 */
const WARMUP = Number(process.env.BENCH_HISTORY_WARMUP ?? 200)

export interface HistoryRun {
  firstMs: number
  p50Ms: number
  p99Ms: number
  /** The API process's CPU time per measured request, ms. */
  apiCpuMs: number
}

export async function historyRun(
  base: string,
  actor: string,
  opts: { days: number; requests: number; cpu: () => number },
): Promise<HistoryRun> {
  const url = `${base}/v1/accounts/${actor}/history?days=${opts.days}`
  const child = spawn(process.execPath, [CLIENT, url, String(opts.requests), String(WARMUP)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let cpu0 = Number.NaN
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    if (Number.isNaN(cpu0) && `${out}${d}`.includes('measuring\n')) cpu0 = opts.cpu()
    out += d
  })
  const code = await new Promise<number | null>((done) => child.on('exit', done))
  const cpu = opts.cpu() - cpu0
  const line = out.split('\n').find((l) => l.startsWith('{'))
  if (code !== 0 || !line) throw new Error(`history client failed (exit ${code}): ${out}`)
  const { first, ms } = JSON.parse(line) as { first: number; ms: number[] }
  const round = (x: number) => Math.round(x * 100) / 100
  return {
    firstMs: round(first),
    p50Ms: round(quantile(ms, 0.5)),
    p99Ms: round(quantile(ms, 0.99)),
    apiCpuMs: round((cpu * 1000) / opts.requests),
  }
}
