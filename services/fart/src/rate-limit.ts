import type { Logger } from '@circles/logging'
import { pipelineFor } from '@circles/redis-wire'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import { requestBucket } from './client-address.js'

// Redis-backed rate limiting per client address, in fixed windows (redis-schema `rateLimit`: address bucket
// and window number, INCRBY + PEXPIRE of one window), shared by every API process. The address is checked
// and bucketed first (client-address.ts): an IPv6 client counts by its /64, and no text a client wrote in
// X-Forwarded-For becomes part of a key. @fastify/rate-limit made one Redis round trip per request: ~22 us
// of API CPU on a cached circle that costs ~70 us in all. Here a process learns a client's count from Redis
// on the client's first request in a window, then counts locally and adds its local count to Redis every
// `syncMs`, reading back the total of all processes.
// Within one process the limit is exact. Across P processes a client can get at most what the other
// processes admitted in one `syncMs` beyond it (their counts arrive that late); with one process, none.
// Redis trouble does not take the API down: the process then limits on its own counts alone, and while the
// connection is not ready it does not even ask (a command would wait in ioredis's offline queue).

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: this route is not rate limited (health, readiness, metrics). */
    rateLimit?: false
  }
}

export interface RateLimitOptions {
  redis: Redis
  /** The counter's key (redis-schema `rateLimit`): it validates the bucket again. */
  key: (bucket: string, window: number) => string
  /** Requests per window per client address (IPv6: per /64). */
  max: number
  windowMs: number
  /** How often local counts go to Redis (and the others' come back). @default 100 */
  syncMs?: number
  log: Logger
  now?: () => number
}

interface Client {
  window: number
  /** Count in Redis (every process) when last read. */
  total: number
  /** Admitted here since then, not yet in Redis. */
  pending: number
  /** Set while the first round trip of this window is under way; requests meanwhile wait for it. */
  first?: Promise<void>
}

export function registerRateLimit(app: FastifyInstance, opts: RateLimitOptions): void {
  const { redis, max, windowMs, log } = opts
  const keyOf = opts.key
  const now = opts.now ?? Date.now
  const syncMs = opts.syncMs ?? 100
  const clients = new Map<string, Client>()
  const limit = String(max)
  let lastWarn = 0
  const warn = (err: unknown) => {
    // One line per 10 s at most: Redis down would otherwise log on every sync.
    if (now() - lastWarn < 10_000) return
    lastWarn = now()
    log.warn({ err }, 'rate limiter cannot reach Redis: limiting on this process’s counts only')
  }

  async function sync(): Promise<void> {
    const window = Math.floor(now() / windowMs)
    const batch: [string, Client, number][] = []
    for (const [bucket, c] of clients) {
      if (c.window < window) clients.delete(bucket)
      else if (c.pending > 0 && c.first === undefined) batch.push([bucket, c, c.pending])
    }
    if (batch.length === 0 || redis.status !== 'ready') return
    const pipe = pipelineFor(redis)
    for (const [bucket, c, n] of batch) {
      // A TTL of one window, renewed by each count: a key outlives its window by less than one window.
      pipe.incrby(keyOf(bucket, c.window), n).pexpire(keyOf(bucket, c.window), windowMs)
    }
    const res = await pipe.exec().catch((err: unknown) => {
      warn(err)
      return null
    })
    batch.forEach(([, c, n], i) => {
      const [err, total] = res?.[i * 2] ?? [new Error('no reply')]
      if (err) warn(err)
      else {
        c.pending -= n
        c.total = Number(total)
      }
    })
  }
  let syncing = false
  const timer = setInterval(() => {
    if (syncing) return
    syncing = true
    sync()
      .catch(warn)
      .finally(() => {
        syncing = false
      })
  }, syncMs)
  timer.unref()
  app.addHook('onClose', (_app, done) => {
    clearInterval(timer)
    // Hand the last counts over, so a restart does not reset them; not waited for (with Redis away it would
    // hold the shutdown up): the commands are queued before whoever owns the connection closes it.
    sync().catch(warn)
    done()
  })

  function reject(reply: FastifyReply, window: number): void {
    const retry = Math.max(1, Math.ceil(((window + 1) * windowMs - now()) / 1000))
    reply
      .code(429)
      .header('retry-after', String(retry))
      .send({
        statusCode: 429,
        error: 'Too Many Requests',
        message: `rate limit exceeded (${max} requests per ${windowMs / 1000} s): retry in ${retry} s`,
      })
  }

  /** Admits or rejects one request of a client whose count is known. */
  function decide(reply: FastifyReply, c: Client, done: () => void): void {
    const used = c.total + c.pending
    if (used >= max) {
      reject(reply, c.window)
      return
    }
    c.pending++
    reply.headers({
      'x-ratelimit-limit': limit,
      'x-ratelimit-remaining': String(max - used - 1),
      'x-ratelimit-reset': String(Math.ceil(((c.window + 1) * windowMs - now()) / 1000)),
    })
    done()
  }

  /** A client's first request here in this window: counted in Redis, which tells the total so far. */
  function firstOfWindow(bucket: string, window: number, reply: FastifyReply, done: () => void) {
    const fresh: Client = { window, total: 0, pending: 1 }
    clients.set(bucket, fresh)
    if (redis.status !== 'ready') {
      // Redis away: counted here alone (and handed over by a sync once it is back).
      decideCounted(reply, fresh, done)
      return
    }
    const key = keyOf(bucket, window)
    fresh.first = redis
      .pipeline()
      .incrby(key, 1)
      .pexpire(key, windowMs)
      .exec()
      .then((res) => {
        const [err, total] = res?.[0] ?? [new Error('no reply')]
        if (err) throw err
        fresh.total = Number(total)
        fresh.pending--
      })
      .catch(warn)
      .finally(() => {
        fresh.first = undefined
      })
    fresh.first.then(() => {
      // It was counted (pending or in Redis) when it came in: admit it unless it went over.
      if (fresh.total > max) reject(reply, window)
      else decideCounted(reply, fresh, done)
    })
  }

  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done) => {
    // Exempt routes, and unknown URLs (a 404 costs nothing worth limiting), are not counted.
    // (routeOptions builds and freezes a new object on every read: read it once.)
    const route = req.routeOptions
    if (route.config?.rateLimit === false || route.url === undefined) return done()
    const window = Math.floor(now() / windowMs)
    const bucket = requestBucket(req)
    const c = clients.get(bucket)
    if (c === undefined || c.window !== window) return firstOfWindow(bucket, window, reply, done)
    if (c.first !== undefined) {
      const waiting = c
      c.first.then(() => decide(reply, waiting, done))
      return
    }
    decide(reply, c, done)
  })

  /** The first request of a window, already counted: only the headers are left. */
  function decideCounted(reply: FastifyReply, c: Client, done: () => void): void {
    const used = c.total + c.pending
    reply.headers({
      'x-ratelimit-limit': limit,
      'x-ratelimit-remaining': String(Math.max(0, max - used)),
      'x-ratelimit-reset': String(Math.ceil(((c.window + 1) * windowMs - now()) / 1000)),
    })
    done()
  }
}
