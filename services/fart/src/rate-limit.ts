import type { Logger } from '@circles/logging'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'

// Redis-backed rate limiting per client IP, in fixed windows (`<prefix><ip>:<window number>`, INCRBY +
// PEXPIRE), shared by every API process. @fastify/rate-limit made one Redis round trip per request: ~22 us
// of API CPU on a cached circle that costs ~70 us in all. Here a process learns a client's count from Redis
// on the client's first request in a window, then counts locally and adds its local count to Redis every
// `syncMs`, reading back the total of all processes.
// Within one process the limit is exact. Across P processes a client can get at most what the other
// processes admitted in one `syncMs` beyond it (their counts arrive that late); with one process, none.
// Redis trouble does not take the API down: the process then limits on its own counts alone.

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `false`: this route is not rate limited (health, readiness, metrics). */
    rateLimit?: false
  }
}

export interface RateLimitOptions {
  redis: Redis
  /** Key prefix (redis-schema `rateLimitPrefix`). */
  prefix: string
  /** Requests per window per client. */
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
  const { redis, prefix, max, windowMs, log } = opts
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

  const keyOf = (ip: string, window: number) => `${prefix}${ip}:${window}`

  async function sync(): Promise<void> {
    const window = Math.floor(now() / windowMs)
    const batch: [string, Client, number][] = []
    for (const [ip, c] of clients) {
      if (c.window < window) clients.delete(ip)
      else if (c.pending > 0 && c.first === undefined) batch.push([ip, c, c.pending])
    }
    if (batch.length === 0) return
    const pipe = redis.pipeline()
    for (const [ip, c, n] of batch) {
      pipe.incrby(keyOf(ip, c.window), n).pexpire(keyOf(ip, c.window), windowMs * 2)
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

  app.addHook('onRequest', (req: FastifyRequest, reply: FastifyReply, done) => {
    // Exempt routes, and unknown URLs (a 404 costs nothing worth limiting), are not counted.
    // (routeOptions builds and freezes a new object on every read: read it once.)
    const route = req.routeOptions
    if (route.config?.rateLimit === false || route.url === undefined) return done()
    const window = Math.floor(now() / windowMs)
    const c = clients.get(req.ip)
    if (c === undefined || c.window !== window) {
      // This client's first request here in this window: count it in Redis and learn the total.
      const fresh: Client = { window, total: 0, pending: 1 }
      const key = keyOf(req.ip, window)
      fresh.first = redis
        .pipeline()
        .incrby(key, 1)
        .pexpire(key, windowMs * 2)
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
      clients.set(req.ip, fresh)
      fresh.first.then(() => {
        // It was counted (pending or in Redis) when it came in: admit it unless it went over.
        if (fresh.total > max) reject(reply, window)
        else decideCounted(reply, fresh, done)
      })
      return
    }
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
