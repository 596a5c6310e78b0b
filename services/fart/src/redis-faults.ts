import type { Logger } from '@circles/logging'
import type { onRequestHookHandler } from 'fastify'
import type { Redis } from 'ioredis'

// What Redis really does when it is in trouble, sorted by what the API can still do about it:
// - it refuses writes (OOM past maxmemory, READONLY on a replica, MASTERDOWN, MISCONF when it cannot save,
//   NOREPLICAS): reads still work, so a circle is computed and served without its cache entry;
// - it cannot answer at all (the connection is gone, LOADING its data after a restart, BUSY running a long
//   script, a cluster without a slot): the request answers 503 with Retry-After, never 500.

/** What a client is told to wait: ioredis reconnects within 2 s; a restart reading its AOF takes longer. */
export const RETRY_AFTER_SECONDS = 5

export type RedisFault = 'write-refused' | 'unavailable'

const WRITE_REFUSED = new Set(['OOM', 'READONLY', 'MASTERDOWN', 'MISCONF', 'NOREPLICAS'])
const UNAVAILABLE = new Set(['LOADING', 'BUSY', 'CLUSTERDOWN', 'TRYAGAIN'])
// ioredis's own errors for a lost connection, and the socket's.
const CONNECTION =
  /^(?:Connection is closed\.|Stream isn't writeable|Command timed out|None of startup nodes)/
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'])

/** The first word of a Redis error reply (`OOM command not allowed...` -> `OOM`). */
function replyCode(err: Error): string | undefined {
  if (err.name !== 'ReplyError') return undefined
  return /^[A-Z]+/.exec(err.message)?.[0]
}

/**
 * Which Redis trouble an error message describes, when only its text is left (a library that answered with
 * it, the queue board): a reply's first word, or ioredis's words for a lost connection.
 */
export function redisFaultOfMessage(message: string): RedisFault | null {
  const code = /^[A-Z]+(?= )/.exec(message)?.[0]
  if (code !== undefined && WRITE_REFUSED.has(code)) return 'write-refused'
  if (code !== undefined && UNAVAILABLE.has(code)) return 'unavailable'
  if (CONNECTION.test(message) || /max retries per request/i.test(message)) return 'unavailable'
  return null
}

/** Which Redis trouble `err` is (looking through `cause` too), or null for any other error. */
export function redisFault(err: unknown): RedisFault | null {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = replyCode(e)
    if (code !== undefined) {
      if (WRITE_REFUSED.has(code)) return 'write-refused'
      if (UNAVAILABLE.has(code)) return 'unavailable'
      return null
    }
    if (e.name === 'MaxRetriesPerRequestError' || CONNECTION.test(e.message)) return 'unavailable'
    // redis-wire's connections (the history's partner checks): lost, refused, or no answer in time.
    if (e.name === 'WireError') return 'unavailable'
    const sys = (e as { code?: unknown }).code
    if (typeof sys === 'string' && SOCKET_CODES.has(sys)) return 'unavailable'
  }
  return null
}

/** The 503 body for a Redis fault, in words a client can act on (no Redis reply text, no stack). */
export function unavailableBody(
  fault: RedisFault,
  err?: unknown,
): {
  statusCode: 503
  error: string
  message: string
} {
  const code = err instanceof Error ? replyCode(err) : undefined
  const why =
    fault === 'write-refused'
      ? `Redis refuses writes right now${code ? ` (${code})` : ''}`
      : code === 'LOADING'
        ? 'Redis is loading its data'
        : code === 'BUSY'
          ? 'Redis is busy'
          : 'Redis is unreachable'
  return {
    statusCode: 503,
    error: 'Service Unavailable',
    message: `${why}: try again in ${RETRY_AFTER_SECONDS} s`,
  }
}

/**
 * The values of a pipeline's replies, or the first error among them. ioredis puts each command's error in
 * its slot rather than rejecting, and a reply read as a value when it was an error would end as a TypeError
 * (a 500) far from the cause.
 */
export function pipelineValues(res: [Error | null, unknown][] | null): unknown[] {
  if (res === null) throw new Error('Connection is closed.')
  const failed = res.find(([err]) => err)
  if (failed) throw failed[0]
  return res.map(([, v]) => v)
}

/**
 * 503 at once while the connection is not ready (reconnecting, or waiting for a restarted Redis to finish
 * loading): without it each request's commands would wait in ioredis's offline queue for reconnection
 * attempts, seconds, and then fail anyway.
 */
export function requireRedis(...clients: Pick<Redis, 'status'>[]): onRequestHookHandler {
  return (_req, reply, done) => {
    if (clients.every((c) => c.status === 'ready')) return done()
    reply
      .code(503)
      .header('retry-after', String(RETRY_AFTER_SECONDS))
      .send(unavailableBody('unavailable'))
  }
}

/**
 * A logger for writes the API skips when Redis refuses them (cache entries, locks): one line per 10 s at
 * most, since under OOM every request would log one.
 */
export function skippedWriteLogger(log: Logger, what: string, now: () => number = Date.now) {
  let last = Number.NEGATIVE_INFINITY
  return (err: unknown) => {
    if (now() - last < 10_000) return
    last = now()
    log.warn({ err }, `${what} not stored (Redis refused the write): served all the same`)
  }
}
