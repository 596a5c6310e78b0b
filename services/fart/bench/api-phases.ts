// bench:api's phases beyond the 48-hour circles (issue #20): uncached 90-day circles, the first page of
// /v1/interactions, uncached PNG drawings, and a mixed workload as a user base asks it.
//
// "Uncached" is what the existing uncached phases mean: every request carries a weights variant no request
// asked before (`fresh()`), so it misses the Redis circle cache and the in-process copy and computes (and,
// for a PNG, draws). What stays warm is what a running API has warm anyway: its DID cache, profiles in
// Redis, compiled code (unmeasured requests first, as the other phases).
//
// The mix (mixedPaths), as a user base would ask it: the account by Zipf (s = 1) over the whole population
// of 100k, its rank that of its activity as an author (engaged users look at their circle more); the window
// 48h 60 %, 7d 20 %, 30d 12 %, 90d 8 % (the default first, longer ones as a second look); the format JSON
// 80 % (the explorer page), PNG 12 % (shared images), SVG 8 %; the weights the default 80 %, `nolikes` 10 %,
// one of four slider presets 10 %. The cache is first filled as such a user base leaves it (steadyCache):
// at MIXED_RATE req/s every request of the mix that was asked within the last TTL (an hour) is in it.
import { createWorkloadRandom } from '@circles/testkit/workload'
import { cannon, type Run } from './load.js'

const WINDOWS: [string, number][] = [
  ['', 0.6],
  ['window=7d', 0.2],
  ['window=30d', 0.12],
  ['window=90d', 0.08],
]
const FORMATS: [string, number][] = [
  ['', 0.8],
  ['.png', 0.12],
  ['.svg', 0.08],
]
const WEIGHTS: [string, number][] = [
  ['', 0.8],
  ['nolikes=true', 0.1],
  ['weights=like:0.5,repost:1,reply:5,quote:5', 0.025],
  ['weights=like:1,repost:1,reply:1,quote:1', 0.025],
  ['weights=like:2,repost:3,reply:3,quote:3', 0.025],
  ['weights=reply:10,quote:6,repost:3', 0.025],
]

function pickFrom(table: [string, number][], x: number): [string, number] {
  let acc = 0
  for (const entry of table) {
    acc += entry[1]
    if (x < acc) return entry
  }
  return table[table.length - 1] as [string, number]
}

/** A request of the mix and its probability (that of its account times those of its choices). */
export interface MixedRequest {
  path: string
  p: number
}

/** `count` requests of the mix above; `byRank[r]` is the account of request rank r. */
export function mixedPaths(byRank: readonly string[], count: number, seed: number): MixedRequest[] {
  const r = createWorkloadRandom(seed)
  const zipf = r.zipfSampler(byRank.length, 1)
  let h = 0
  for (let i = 1; i <= byRank.length; i++) h += 1 / i
  const out: MixedRequest[] = []
  for (let i = 0; i < count; i++) {
    const rank = zipf()
    const [window, pw] = pickFrom(WINDOWS, r.rand())
    const [weights, pq] = pickFrom(WEIGHTS, r.rand())
    const [format, pf] = pickFrom(FORMATS, r.rand())
    const query = [window, weights].filter(Boolean)
    const q = query.length > 0 ? `?${query.join('&')}` : ''
    out.push({
      path: `/v1/circles/${byRank[rank] as string}${format}${q}`,
      p: pw * pq * pf * (1 / ((rank + 1) * h)),
    })
  }
  return out
}

/**
 * Fills the cache as a user base asking the mix at `rps` leaves it after `ttlSeconds` (the cache's life):
 * each distinct request of `list` was asked within the last TTL with probability 1 - exp(-rps * ttl * p),
 * and is asked once now (unmeasured, a few at a time) when the draw says it was. Returns how many were,
 * and the statuses other than 200.
 */
export async function steadyCache(
  base: string,
  list: readonly MixedRequest[],
  opts: { rps: number; ttlSeconds: number; seed: number },
): Promise<{ distinct: number; warmed: number; statuses: Record<string, number> }> {
  const r = createWorkloadRandom(opts.seed)
  const seen = new Map<string, number>()
  for (const q of list) seen.set(q.path, q.p)
  const warm = [...seen].filter(([, p]) => r.rand() < 1 - Math.exp(-opts.rps * opts.ttlSeconds * p))
  const statuses: Record<string, number> = {}
  let next = 0
  const worker = async () => {
    while (next < warm.length) {
      const [path] = warm[next++] as [string, number]
      const res = await fetch(`${base}${path}`)
      await res.arrayBuffer()
      if (res.status !== 200) statuses[res.status] = (statuses[res.status] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: 4 }, worker))
  return { distinct: seen.size, warmed: warm.length, statuses }
}

/**
 * Unmeasured `warmup` requests of `warmPath`, then `requests` of `path`, one at a time (a user's request,
 * not a queue of them): p50/p99 and the API's CPU per request.
 */
export async function oneAtATime(
  base: string,
  path: () => string,
  opts: { warmup: number; requests: number; pid?: number; warmPath?: () => string },
): Promise<Run> {
  if (opts.warmup > 0) {
    await cannon(base, opts.warmPath ?? path, { connections: 1, amount: opts.warmup })
  }
  return cannon(base, path, { connections: 1, amount: opts.requests, pid: opts.pid })
}

export interface LongPhases {
  long90Heavy: Run
  long90Random: Run
  interactionsHeavy: Run
  interactionsRandom: Run
  png: Run
  failures: number
}

/**
 * The one-at-a-time phases of issue #20 on the API at `base`: uncached 90-day circles of the heaviest
 * account and of random active ones, the first page of /v1/interactions (which has no cache) of both, and
 * uncached PNGs of the 1,000 most active accounts (full circles: the most drawing). Accounts from a
 * generator of their own, so the phases after these ask what they asked before.
 */
export async function longPhases(
  base: string,
  pid: number | undefined,
  opts: {
    heaviest: string
    active: readonly string[]
    fresh: () => string
    requests: number
    warmup: number
    log: (msg: string) => void
  },
): Promise<LongPhases> {
  const { heaviest, active, fresh, requests, warmup, log } = opts
  const r = createWorkloadRandom(11)
  const anyActive = () => active[Math.floor(r.rand() * active.length)] as string
  const top = () => active[Math.floor(r.rand() * Math.min(1000, active.length))] as string
  const show = (what: string, x: Run) =>
    log(
      `${what}: p50 ${x.p50} ms, p99 ${x.p99} ms, ${x.rps} req/s, API CPU ${x.apiCpuUs} us/req, errors ${x.errors}, non-2xx ${x.non2xx}`,
    )
  const run = { requests, pid }
  const long90Heavy = await oneAtATime(
    base,
    () => `/v1/circles/${heaviest}?window=90d&${fresh()}`,
    { ...run, warmup },
  )
  show('uncached 90d heavy', long90Heavy)
  const long90Random = await oneAtATime(
    base,
    () => `/v1/circles/${anyActive()}?window=90d&${fresh()}`,
    { ...run, requests: requests * 5, warmup: warmup * 10 },
  )
  show('uncached 90d random', long90Random)
  const interactionsHeavy = await oneAtATime(base, () => `/v1/interactions/${heaviest}`, {
    ...run,
    warmup,
  })
  show('interactions first page, heavy', interactionsHeavy)
  const interactionsRandom = await oneAtATime(base, () => `/v1/interactions/${anyActive()}`, {
    ...run,
    requests: requests * 5,
    warmup: warmup * 10,
  })
  show('interactions first page, random', interactionsRandom)
  const png = await oneAtATime(base, () => `/v1/circles/${top()}.png?${fresh()}`, {
    ...run,
    warmup,
  })
  show('uncached PNG', png)
  const all = [long90Heavy, long90Random, interactionsHeavy, interactionsRandom, png]
  return {
    long90Heavy,
    long90Random,
    interactionsHeavy,
    interactionsRandom,
    png,
    failures: all.reduce((n, x) => n + x.errors + x.non2xx, 0),
  }
}
