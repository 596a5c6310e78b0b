// bench:api's history case: GET /v1/accounts/:actor/history?days=90 of the heavy account of history-account.ts,
// one request at a time over HTTP to the API child, as a page would ask. The first request of the process
// (no day remembered yet) apart, then unmeasured warm-up, then the measured requests.
import { quantile } from './history-account.js'

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
  const once = async () => {
    const t0 = performance.now()
    const res = await fetch(url)
    await res.arrayBuffer()
    if (res.status !== 200) throw new Error(`history: status ${res.status}`)
    return performance.now() - t0
  }
  const firstMs = await once()
  for (let i = 0; i < 20; i++) await once()
  const cpu0 = opts.cpu()
  const ms: number[] = []
  for (let i = 0; i < opts.requests; i++) ms.push(await once())
  const cpu = opts.cpu() - cpu0
  ms.sort((a, b) => a - b)
  const round = (x: number) => Math.round(x * 100) / 100
  return {
    firstMs: round(firstMs),
    p50Ms: round(quantile(ms, 0.5)),
    p99Ms: round(quantile(ms, 0.99)),
    apiCpuMs: round((cpu * 1000) / opts.requests),
  }
}
