import { BACKFILL_QUEUE, type BackfillJobData, backfillQueueOptions } from '@circles/backfill'
import { prng, startRedisServer } from '@circles/testkit'
import { Queue } from 'bullmq'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'
import { Redis } from 'ioredis'
import { describe, expect, it } from 'vitest'
import { createLongWindows } from '../src/wiring.js'
import { FUZZ_ACTOR as A, fuzzRequests } from './fuzz-requests.js'
import { buildSecondApp, did, type Harness, startHarness } from './helpers.js'

// A bounded fuzz of every route: thousands of requests made of malformed actors, huge and repeated query
// parameters, bogus cursors, every method, near-miss admin tokens, odd content types and bodies, from a
// seeded PRNG (FUZZ_SEED to vary it; a failure names the seed and the request). Nothing may answer 5xx but
// a documented 503, hang, or show a stack or a source path.

const SEED = Number(process.env.FUZZ_SEED ?? 0x5eed)
const REQUESTS = 4000
const CONCURRENCY = 8
const PER_REQUEST_MS = 5000
const LEAK =
  /\bat \S+ \(|node_modules|\/work\/|\/src\/|\.[jt]s:\d+|ReplyError|SchemaError|TypeError/

/**
 * A 503 the API documents: an error saying so (no stats yet, Redis trouble, handles not resolvable), the
 * readiness probe's `{ ok: false, reason }`, or the bodiless HEAD of either.
 */
function documented503(o: InjectOptions, r: LightMyRequestResponse): boolean {
  if (r.statusCode !== 503) return false
  if (o.method === 'HEAD') return r.body === ''
  try {
    const b = JSON.parse(r.body) as { statusCode?: unknown; ok?: unknown; reason?: unknown }
    if (String(o.url).startsWith('/readyz')) return b.ok === false && typeof b.reason === 'string'
    return b.statusCode === 503 && typeof r.headers['retry-after'] === 'string'
  } catch {
    return false
  }
}

function describeRequest(o: InjectOptions): string {
  const url = String(o.url)
  return `${o.method} ${url.length > 200 ? `${url.slice(0, 200)}...` : url} ${JSON.stringify(o.headers).slice(0, 300)}`
}

async function withTimeout(
  p: Promise<LightMyRequestResponse>,
  what: string,
): Promise<LightMyRequestResponse> {
  let timer: NodeJS.Timeout | undefined
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer within ${PER_REQUEST_MS} ms: ${what}`)),
      PER_REQUEST_MS,
    )
  })
  try {
    return await Promise.race([p, hang])
  } finally {
    clearTimeout(timer)
  }
}

interface FuzzRun {
  statuses: Map<number, number>
  failures: string[]
  unsendable: number
}

/** Sends `n` requests from `seed`, CONCURRENCY at a time, and collects what is wrong with the answers. */
async function fuzz(app: FastifyInstance, seed: number, n: number): Promise<FuzzRun> {
  const next = fuzzRequests(prng(seed))
  const requests = Array.from({ length: n }, next)
  const run: FuzzRun = { statuses: new Map(), failures: [], unsendable: 0 }
  let at = 0
  async function worker() {
    while (at < requests.length && run.failures.length < 10) {
      const o = requests[at++]!
      const what = describeRequest(o)
      let r: LightMyRequestResponse
      try {
        r = await withTimeout(app.inject(o), what)
      } catch (err) {
        // light-my-request refuses to build some (an unparsable URL): no client could send those either.
        if (err instanceof TypeError && /Invalid URL/.test(err.message)) {
          run.unsendable++
          continue
        }
        throw err
      }
      run.statuses.set(r.statusCode, (run.statuses.get(r.statusCode) ?? 0) + 1)
      const isJson = String(r.headers['content-type'] ?? '').includes('json')
      if (r.statusCode >= 500 && !documented503(o, r)) {
        run.failures.push(`${r.statusCode} ${r.body.slice(0, 200)} <- ${what}`)
      } else if ((r.statusCode >= 400 || isJson) && !String(o.url).startsWith('/docs')) {
        if (LEAK.test(r.body)) run.failures.push(`leak ${r.body.slice(0, 300)} <- ${what}`)
      }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker))
  return run
}

/** The seeded account and its partners, the stats document, and an app with every route mounted. */
async function fuzzApp(h: Harness): Promise<{ app: FastifyInstance; close(): Promise<void> }> {
  h.appview.profiles.set(A, { did: A, handle: 'alice.test', displayName: 'Alice' })
  for (let i = 2; i <= 12; i++) {
    await h.link(A, did(i), { like: i, reply: i % 3 })
    h.appview.profiles.set(did(i), { did: did(i), handle: `p${i}.test`, avatar: i % 4 === 0 })
  }
  await h.t.redis.set(h.t.schema.globalStats, JSON.stringify({ interactions24h: 1 }))
  const conn = new Redis(h.t.url, { enableOfflineQueue: false, maxRetriesPerRequest: 1 })
  conn.on('error', () => {}) // the second test stops its Redis
  // The backfill queue on the same producer connection, as the service has it: requests enqueue, and the
  // admin route exists.
  const backfillQueue = new Queue<BackfillJobData>(BACKFILL_QUEUE, {
    connection: conn,
    ...backfillQueueOptions(h.t.schema),
  })
  backfillQueue.on('error', () => {})
  const app = await buildSecondApp(h, {
    queueBoard: { connection: conn },
    longWindows: createLongWindows(h.t.redis, h.t.schema),
    backfillQueue,
  })
  return {
    app,
    async close() {
      await app.close() // closes the board's queues
      await backfillQueue.close()
      conn.disconnect()
    },
  }
}

const ENV = { RATE_LIMIT_MAX: '1000000', TRUST_PROXY: '10.0.0.0/8' }

describe(`fuzz of every route (seed ${SEED})`, () => {
  it(`answers ${REQUESTS} random requests without a 5xx, a hang or a leak`, {
    timeout: 60_000,
  }, async () => {
    const h = await startHarness(ENV)
    const f = await fuzzApp(h)
    try {
      const run = await fuzz(f.app, SEED, REQUESTS)
      expect(run.failures, `seed ${SEED}`).toEqual([])
      expect(run.unsendable).toBeLessThan(REQUESTS / 20)
      // The fuzz reached the routes, not only the 404 handler and the validators.
      const count = (...codes: number[]) =>
        codes.reduce((n, c) => n + (run.statuses.get(c) ?? 0), 0)
      expect(count(200)).toBeGreaterThan(REQUESTS / 10)
      expect(count(400, 404)).toBeGreaterThan(REQUESTS / 10)
      expect(count(401, 403)).toBeGreaterThan(REQUESTS / 100)
      expect(count(503)).toBe(0)
    } finally {
      await f.close()
      await h.close()
    }
  })

  it('answers only documented 503s while Redis is out of memory, then stopped', {
    timeout: 60_000,
  }, async () => {
    const server = await startRedisServer()
    const h = await startHarness(ENV, { redisUrl: server.url })
    const f = await fuzzApp(h)
    try {
      await h.t.redis.config('SET', 'maxmemory', '1')
      const oom = await fuzz(f.app, SEED + 1, REQUESTS / 5)
      expect(oom.failures, `seed ${SEED + 1}, out of memory`).toEqual([])
      expect(oom.statuses.get(200) ?? 0).toBeGreaterThan(REQUESTS / 50)
      await server.stop()
      const down = await fuzz(f.app, SEED + 2, REQUESTS / 5)
      expect(down.failures, `seed ${SEED + 2}, Redis stopped`).toEqual([])
      expect(down.statuses.get(503) ?? 0).toBeGreaterThan(REQUESTS / 50)
    } finally {
      await f.close()
      await h.close()
      await server.stop()
    }
  })
})
