// The client of bench:api's history case, in a process of its own (api-history.ts starts it): the bench's
// own process holds the seeding's ~250 MB, and its incremental mark-compact (a 40 ms pause, ~0.5 s of steps
// over the phase, `--trace-gc`) landed in the measured requests. Asks `url` once (the first request of the
// API process, nothing remembered), `warmup` times unmeasured, then `requests` times one at a time; prints
// one JSON line: the first request's ms and the measured ones', sorted.
const [url, count, warmup] = process.argv.slice(2)
if (!url || !count || !warmup) throw new Error('usage: history-client <url> <requests> <warmup>')

async function once(): Promise<number> {
  const t0 = performance.now()
  const res = await fetch(url as string)
  await res.arrayBuffer()
  if (res.status !== 200) throw new Error(`history: status ${res.status}`)
  return performance.now() - t0
}

const first = await once()
for (let i = 0; i < Number(warmup); i++) await once()
process.stdout.write('measuring\n')
const ms: number[] = []
for (let i = 0; i < Number(count); i++) ms.push(await once())
ms.sort((a, b) => a - b)
process.stdout.write(`${JSON.stringify({ first, ms })}\n`)
