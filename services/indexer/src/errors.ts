// What the indexer does about an error, decided from the error alone (pure; table test in errors.test.ts).
//
// The rule: an entry is given up (copied to the dead-letter stream, then acknowledged) only for a fault of
// its own, one that comes back however long we wait. Anything Redis says about itself (memory, a script
// that blocks it, a replica, a restart, a missing group or library, a lost connection) passes once Redis
// is well again: the indexer backs off and keeps the entries. Acknowledging them would turn an outage into
// loss: under `-OOM` with a backlog, the old rule (any reply error three times) emptied the stream.

/** The kind of a failure, as counted in the metrics (`errors:<kind>`). */
export type RedisErrorKind =
  | 'oom'
  | 'busy'
  | 'readonly'
  | 'loading'
  | 'masterdown'
  | 'tryagain'
  | 'clusterdown'
  | 'misconf'
  | 'noreplicas'
  | 'unblocked'
  | 'denied'
  | 'nogroup'
  | 'noscript'
  | 'connection'
  | 'data'
  | 'other'

/**
 * - `back-off`: wait (bounded exponential), stop reading, retry; never acknowledge.
 * - `recreate-group`: the group or the stream is gone (a Redis that restarted empty, FLUSHALL, XGROUP
 *   DESTROY): create it again, then as `back-off`.
 * - `reload`: Redis lost the function library; the writer loads it again with its next call (as `back-off`).
 * - `isolate`: about the data of an entry of the batch: split the batch until one entry fails alone, and
 *   give that one up.
 */
export type RedisErrorAction = 'back-off' | 'recreate-group' | 'reload' | 'isolate'

export interface RedisErrorClass {
  kind: RedisErrorKind
  action: RedisErrorAction
}

const BACK_OFF = (kind: RedisErrorKind): RedisErrorClass => ({ kind, action: 'back-off' })

/** Reply error codes (the first word of the message) and what they say. */
const BY_CODE: Record<string, RedisErrorClass> = {
  OOM: BACK_OFF('oom'),
  // a script or function over busy-reply-threshold: everyone else is refused until it ends or is killed
  BUSY: BACK_OFF('busy'),
  READONLY: BACK_OFF('readonly'),
  LOADING: BACK_OFF('loading'),
  MASTERDOWN: BACK_OFF('masterdown'),
  TRYAGAIN: BACK_OFF('tryagain'),
  CLUSTERDOWN: BACK_OFF('clusterdown'),
  // an RDB save failed and stop-writes-on-bgsave-error refuses writes until one succeeds
  MISCONF: BACK_OFF('misconf'),
  NOREPLICAS: BACK_OFF('noreplicas'),
  // a blocked XREADGROUP whose stream was deleted (the next read says NOGROUP)
  UNBLOCKED: BACK_OFF('unblocked'),
  NOPERM: BACK_OFF('denied'),
  NOAUTH: BACK_OFF('denied'),
  WRONGPASS: BACK_OFF('denied'),
  NOGROUP: { kind: 'nogroup', action: 'recreate-group' },
  NOSCRIPT: { kind: 'noscript', action: 'reload' },
  // A key of the wrong type is named by the entry (an account's log, its purge mark, its DID table bucket):
  // waiting does not repair it, and every other entry can still be applied. So it is the entry's fault, as
  // far as the indexer can tell. If the key is shared by many entries (a DID table bucket, an hour index
  // shard), the batch's consecutive dead letters trip the breaker in batch.ts, which then backs off.
  WRONGTYPE: { kind: 'data', action: 'isolate' },
}

/** Error names of a connection that failed or was given up (ioredis, redis-errors, the writer's wire). */
const CONNECTION_NAMES = new Set([
  'WireError',
  'AbortError',
  'InterruptError',
  'MaxRetriesPerRequestError',
  'ParserError',
])
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
])
const CONNECTION_MESSAGES = /^(Connection is closed|Stream isn't writeable|Command timed out)/

export function classifyRedisError(err: unknown): RedisErrorClass {
  if (!(err instanceof Error)) return BACK_OFF('other')
  // EXECABORT of a MULTI: ioredis keeps the errors of the commands Redis refused to queue (OOM...)
  const previous = (err as { previousErrors?: unknown }).previousErrors
  if (Array.isArray(previous) && previous[0] instanceof Error)
    return classifyRedisError(previous[0])
  if (err.name === 'ReplyError') return classifyReply(err.message)
  const code = (err as { code?: unknown }).code
  if (
    CONNECTION_NAMES.has(err.name) ||
    (typeof code === 'string' && CONNECTION_CODES.has(code)) ||
    CONNECTION_MESSAGES.test(err.message)
  ) {
    return BACK_OFF('connection')
  }
  // Not from Redis (a bug of ours): retrying is all that is safe; the entries stay pending meanwhile.
  return BACK_OFF('other')
}

function classifyReply(message: string): RedisErrorClass {
  const code = /^[A-Z]+/.exec(message)?.[0] ?? ''
  const known = BY_CODE[code]
  if (known) return known
  if (code === 'ERR') {
    // FCALL of a library the server no longer has (FUNCTION FLUSH, a restart without persistence)
    if (/^ERR Function not found/i.test(message)) return { kind: 'noscript', action: 'reload' }
    // A runtime error raised inside the index function: it runs the same way on the same data and the
    // same keys, so it repeats on that entry and not on others (the breaker covers a broken library).
    if (/@user_(function|script)\b|\buser_(function|script):\d+/.test(message))
      return { kind: 'data', action: 'isolate' }
  }
  // Unknown: back off. A stall is visible (lag, the log, `errors:other`); an entry wrongly given up is not.
  return BACK_OFF('other')
}
