import { REQUIRED_REDIS_SETTINGS } from '@circles/interaction-index'
import { type RedisSchema, type ShardKeys, shardsOf } from '@circles/redis-schema'
import { parseInfo } from '@circles/redis-wire'
import { fieldMap, parseConsumers, parseGroups } from '@circles/stream-info'
import type { Redis } from 'ioredis'
import { WebSocket } from 'ws'
import { checkBackfill } from './doctor-backfill.js'
import { checkBot } from './doctor-bot.js'
import { checkMemory } from './doctor-memory.js'
import { checkMetrics, type MetricsTarget } from './doctor-metrics.js'
import { checkRedisServers } from './doctor-nodes.js'
import { checkRetiredShards, perShard } from './doctor-shards.js'

// `pnpm doctor`: what is wrong, in plain words. Each check returns ok / warn / fail with one sentence a
// newcomer can act on; any fail makes the command exit non-zero.

export type Status = 'ok' | 'warn' | 'fail'

export interface Check {
  name: string
  status: Status
  message: string
}

export interface DoctorThresholds {
  /** Stream entries not yet delivered to the indexer before it is a warning (the firehose's pause bound,
   * FIREHOSE_MAX_LAG) / a failure. @default 2000 / 1000000 */
  lagWarn: number
  lagFail: number
  /** Age of the oldest undelivered entry, ms. @default 60000 / 900000 */
  lagAgeWarnMs: number
  lagAgeFailMs: number
  /** A pending (delivered, unacknowledged) entry idle this long means a consumer died holding it. @default 60000 */
  pendingIdleWarnMs: number
  /** No firehose metrics for this long means it is not running (3 x FIREHOSE_METRICS_MS). @default 30000 */
  firehoseMaxSilenceMs: number
  /** No indexer report for this long means none is running (3 x INDEXER_METRICS_MS). @default 30000 */
  indexerMaxSilenceMs: number
  /** Further behind the relay than this is a warning (catching up). @default 60000 */
  relayLagWarnMs: number
  /** The scheduler's heartbeat older than this means it is not running (3 x SCHEDULER_HEARTBEAT_MS). @default 30000 */
  heartbeatMaxAgeMs: number
  /** Days of daily aggregates the scheduler keeps (ROLLUP_RETENTION_DAYS), for the memory estimate. @default 90 */
  rollupRetentionDays: number
}

export const DEFAULT_THRESHOLDS: DoctorThresholds = {
  lagWarn: 2000,
  lagFail: 1_000_000,
  lagAgeWarnMs: 60_000,
  lagAgeFailMs: 900_000,
  pendingIdleWarnMs: 60_000,
  firehoseMaxSilenceMs: 30_000,
  relayLagWarnMs: 60_000,
  indexerMaxSilenceMs: 30_000,
  heartbeatMaxAgeMs: 30_000,
  rollupRetentionDays: 90,
}

function versionAtLeast(version: string, major: number): boolean {
  const m = /^(\d+)\./.exec(version)
  return m !== null && Number(m[1]) >= major
}

async function configGet(redis: Redis, name: string): Promise<string | undefined> {
  try {
    const reply = (await redis.config('GET', name)) as string[]
    return reply[1]
  } catch {
    // Managed Redis often disables CONFIG; INFO still answers.
    return undefined
  }
}

/** Version, persistence and eviction policy of the Redis the services use. */
export async function checkRedisServer(redis: Redis): Promise<Check[]> {
  const info = parseInfo(await redis.info())
  const checks: Check[] = []
  const version = info.redis_version ?? 'unknown'
  checks.push(
    versionAtLeast(version, 7)
      ? { name: 'redis version', status: 'ok', message: `Redis ${version}` }
      : {
          name: 'redis version',
          status: 'fail',
          message: `Redis ${version} is too old: the services need Redis 7 or newer (stream lag, listpacks).`,
        },
  )

  const aof = info.aof_enabled === '1'
  const save = await configGet(redis, 'save')
  const rdb = save !== undefined && save.trim() !== ''
  if (aof) {
    checks.push({ name: 'redis persistence', status: 'ok', message: 'AOF is on' })
  } else if (rdb) {
    checks.push({
      name: 'redis persistence',
      status: 'warn',
      message: `only RDB snapshots (save "${save}"): a crash loses everything since the last snapshot. Turn on AOF: appendonly yes.`,
    })
  } else {
    checks.push({
      name: 'redis persistence',
      status: 'fail',
      message:
        'persistence is off (no AOF, no RDB snapshots): a Redis restart loses the whole index and every unread stream entry. Set appendonly yes.',
    })
  }

  const low: string[] = []
  for (const [name, wanted] of Object.entries(REQUIRED_REDIS_SETTINGS)) {
    const current = await configGet(redis, name)
    if (current !== undefined && Number(current) < wanted)
      low.push(`${name} ${current} (wants ${wanted})`)
  }
  checks.push(
    low.length === 0
      ? {
          name: 'redis encodings',
          status: 'ok',
          message: 'listpack/intset limits as the index needs',
        }
      : {
          name: 'redis encodings',
          status: 'warn',
          message: `${low.join(', ')}: the index takes several times more memory. The indexer raises these at start (INDEXER_APPLY_REDIS_SETTINGS); put them in redis.conf so a Redis restart keeps them.`,
        },
  )

  const policy = info.maxmemory_policy ?? (await configGet(redis, 'maxmemory-policy')) ?? 'unknown'
  checks.push(
    policy === 'noeviction'
      ? { name: 'redis maxmemory-policy', status: 'ok', message: 'noeviction' }
      : {
          name: 'redis maxmemory-policy',
          status: 'fail',
          message: `maxmemory-policy is ${policy}: when memory runs short Redis silently deletes index keys and stream entries nobody has read yet. Set maxmemory-policy noeviction (full memory then shows as write errors instead).`,
        },
  )
  return checks
}

function idMs(id: string | null | undefined): number | undefined {
  if (!id) return undefined
  const ms = Number(id.split('-')[0])
  return Number.isFinite(ms) && ms > 0 ? ms : undefined
}

function ago(ms: number): string {
  if (ms < 2000) return `${ms} ms`
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`
  if (ms < 7_200_000) return `${Math.round(ms / 60_000)} min`
  return `${(ms / 3_600_000).toFixed(1)} h`
}

/** The event stream, the indexer's consumer group, its lag and its pending entries. */
export async function checkStream(
  redis: Redis,
  schema: RedisSchema,
  t: DoctorThresholds = DEFAULT_THRESHOLDS,
  now = Date.now(),
  shard: ShardKeys = schema.shard(0),
): Promise<Check[]> {
  const key = shard.stream
  const type = await redis.type(key)
  if (type === 'none') {
    return [
      {
        name: 'event stream',
        status: 'warn',
        message: `${key} does not exist yet: the firehose has written nothing (is it running, and can it reach the relay?).`,
      },
    ]
  }
  if (type !== 'stream') {
    return [{ name: 'event stream', status: 'fail', message: `${key} is a ${type}, not a stream.` }]
  }
  const checks: Check[] = []
  const length = await redis.xlen(key)
  const lastId = ((await redis.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[0] ?? null) as
    | string
    | null
  const lastMs = idMs(lastId)
  checks.push({
    name: 'event stream',
    status: 'ok',
    message: `${length} ${length === 1 ? 'entry' : 'entries'}, newest ${lastMs ? `${ago(now - lastMs)} old` : 'none'}`,
  })
  const cursor = await redis.get(shard.cursor)
  checks.push(
    cursor
      ? { name: 'firehose cursor', status: 'ok', message: `relay seq ${cursor}` }
      : {
          name: 'firehose cursor',
          status: 'warn',
          message: 'no saved relay cursor: the firehose has not committed a batch yet.',
        },
  )

  const group = parseGroups(await redis.xinfo('GROUPS', key)).find(
    (g) => g.name === schema.indexerGroup,
  )
  if (!group) {
    checks.push({
      name: 'indexer group',
      status: 'fail',
      message: `consumer group "${schema.indexerGroup}" does not exist on ${key}: the indexer has never started against this Redis and prefix.`,
    })
    return checks
  }
  const consumers = parseConsumers(await redis.xinfo('CONSUMERS', key, schema.indexerGroup))
  const names = consumers.map((c) => c.name)
  checks.push({
    name: 'indexer group',
    status: consumers.length > 0 ? 'ok' : 'fail',
    message:
      consumers.length > 0
        ? `${consumers.length} consumer(s): ${names.join(', ')}`
        : `group "${schema.indexerGroup}" has no consumers: no indexer has read from it yet.`,
  })

  // `lag` is Redis 7's count of entries not yet delivered to the group; null when Redis cannot tell
  // (after XDEL/trimming below the group's position): then fall back to comparing ids.
  const lastDelivered = group.lastDeliveredId
  const lag = group.lag ?? undefined
  let oldestUndeliveredMs: number | undefined
  if (lag === undefined || lag > 0) {
    const next = await redis.xrange(key, `(${lastDelivered}`, '+', 'COUNT', 1)
    oldestUndeliveredMs = idMs(next[0]?.[0])
  }
  const age = oldestUndeliveredMs ? now - oldestUndeliveredMs : 0
  const lagText = `${lag ?? 'unknown'} entries not yet read${age ? `, the oldest written ${ago(age)} ago` : ''}`
  let lagStatus: Status = 'ok'
  if ((lag ?? 0) >= t.lagFail || age >= t.lagAgeFailMs) lagStatus = 'fail'
  else if ((lag ?? 0) >= t.lagWarn || age >= t.lagAgeWarnMs) lagStatus = 'warn'
  checks.push({
    name: 'indexer lag',
    status: lagStatus,
    message:
      lagStatus === 'ok'
        ? lagText
        : `${lagText}: the indexer is behind (stopped, too few instances, or Redis is slow); the firehose pauses reading past FIREHOSE_MAX_LAG.`,
  })

  const pending = group.pending
  if (pending === 0) {
    checks.push({ name: 'pending entries', status: 'ok', message: 'none' })
  } else {
    const stale = consumers.filter((c) => c.pending > 0 && c.idle >= t.pendingIdleWarnMs)
    checks.push(
      stale.length === 0
        ? { name: 'pending entries', status: 'ok', message: `${pending} being processed` }
        : {
            name: 'pending entries',
            status: 'warn',
            message: `${pending} delivered but not acknowledged; consumer(s) ${stale
              .map((c) => `${c.name} (${c.pending} pending, idle ${ago(c.idle)})`)
              .join(
                ', ',
              )} look dead: a running indexer reclaims their entries; if none runs, start one.`,
          },
    )
  }
  return checks
}

/**
 * The firehose mirrors its metrics into a hash every FIREHOSE_METRICS_MS (`updatedAt`, `state`, `lagMs`
 * behind the relay): a stale hash means it is not running, `backoff` that it cannot reach the relay.
 */
export async function checkFirehose(
  redis: Redis,
  schema: RedisSchema,
  t: DoctorThresholds = DEFAULT_THRESHOLDS,
  now = Date.now(),
): Promise<Check> {
  const m = await redis.hgetall(schema.firehoseMetrics)
  const updatedAt = Number(m.updatedAt)
  if (!m.updatedAt || !Number.isFinite(updatedAt)) {
    return {
      name: 'firehose',
      status: 'warn',
      message: `no metrics at ${schema.firehoseMetrics}: the firehose has not reported yet (it does every FIREHOSE_METRICS_MS), or runs against another Redis or prefix.`,
    }
  }
  const age = now - updatedAt
  if (age > t.firehoseMaxSilenceMs) {
    return {
      name: 'firehose',
      status: 'fail',
      message: `last report ${ago(age)} ago (state then: ${m.state || 'unknown'}): the firehose is not running.`,
    }
  }
  const lagMs = m.lagMs ? Number(m.lagMs) : undefined
  const behind =
    lagMs !== undefined && Number.isFinite(lagMs) ? `, ${ago(lagMs)} behind the relay` : ''
  const rate = `${m.eventsPerSecond ?? 0} events/s${behind}`
  switch (m.state) {
    case 'reading':
      return lagMs !== undefined && lagMs > t.relayLagWarnMs
        ? { name: 'firehose', status: 'warn', message: `reading, ${rate}: catching up` }
        : { name: 'firehose', status: 'ok', message: `reading, ${rate}` }
    case 'backoff':
      return {
        name: 'firehose',
        status: 'warn',
        message: `cannot reach the relay, retrying (${m.reconnects ?? '?'} reconnects so far): check RELAY_URL and the network.`,
      }
    case 'paused':
      return {
        name: 'firehose',
        status: 'warn',
        message: `paused: the indexer is too far behind (FIREHOSE_MAX_LAG), ${rate}.`,
      }
    default:
      return { name: 'firehose', status: 'ok', message: `${m.state || 'unknown'}, ${rate}` }
  }
}

/**
 * Every indexer process updates the shared metrics hash each INDEXER_METRICS_MS: `seen:<consumer>` (ms),
 * `rate:<consumer>` and `backoff:<consumer>` (while Redis refuses its work: what it said and since when).
 */
export async function checkIndexers(
  redis: Redis,
  schema: RedisSchema,
  t: DoctorThresholds = DEFAULT_THRESHOLDS,
  now = Date.now(),
): Promise<Check[]> {
  const m = await redis.hgetall(schema.indexerMetrics)
  if (Object.keys(m).length === 0) {
    return [
      {
        name: 'indexers',
        status: 'warn',
        message: `no metrics at ${schema.indexerMetrics}: no indexer has reported yet (each does every INDEXER_METRICS_MS), or they run against another Redis or prefix.`,
      },
    ]
  }
  const live: string[] = []
  const waiting: string[] = []
  let newest = 0
  for (const [k, v] of Object.entries(m)) {
    if (!k.startsWith('seen:')) continue
    const seen = Number(v)
    newest = Math.max(newest, seen)
    if (now - seen > t.indexerMaxSilenceMs) continue
    const name = k.slice('seen:'.length)
    live.push(`${name} (${m[`rate:${name}`] ?? '?'} events/s)`)
    const backoff = backoffOf(m[`backoff:${name}`])
    if (backoff)
      waiting.push(`${name} (${backoff.kind} for ${ago(Math.max(0, now - backoff.since))})`)
  }
  if (live.length === 0) {
    return [
      {
        name: 'indexers',
        status: 'fail',
        message: `no indexer has reported for ${newest ? ago(now - newest) : 'ever'}: none is running, so nothing reads the stream.`,
      },
    ]
  }
  return [
    waiting.length === 0
      ? { name: 'indexers', status: 'ok', message: `${live.length} running: ${live.join(', ')}` }
      : {
          name: 'indexers',
          status: 'warn',
          message: `${live.length} running, backing off because Redis refuses their work: ${waiting.join(', ')}. They keep the entries and go on once Redis takes writes again (see their logs; oom: raise maxmemory).`,
        },
  ]
}

function backoffOf(raw: string | undefined): { kind: string; since: number } | undefined {
  if (!raw) return undefined
  try {
    const b = JSON.parse(raw) as { kind?: unknown; since?: unknown }
    return typeof b.kind === 'string' && typeof b.since === 'number'
      ? { kind: b.kind, since: b.since }
      : undefined
  } catch {
    return undefined
  }
}

/**
 * The indexer's dead letters: stream entries it gave up because their own data cannot be applied, kept in
 * a stream of their own (each with `error`, `id`, `consumer`, `at`). Any is a warning: something wrote
 * entries the indexer does not understand, or a key of the index has the wrong type.
 */
export async function checkDeadLetters(
  redis: Redis,
  schema: RedisSchema,
  now = Date.now(),
  shard: ShardKeys = schema.shard(0),
): Promise<Check> {
  const key = shard.deadLetters
  const length = await redis.xlen(key)
  if (length === 0) return { name: 'dead letters', status: 'ok', message: 'none' }
  const newest = fieldMap((await redis.xrevrange(key, '+', '-', 'COUNT', 1))[0]?.[1])
  const total = Number((await redis.hget(schema.indexerMetrics, 'deadLetters')) ?? length)
  const at = Number(newest.get('at'))
  const when =
    Number.isFinite(at) && at > 0 ? `${ago(Math.max(0, now - at))} ago` : 'at an unknown time'
  return {
    name: 'dead letters',
    status: 'warn',
    message: `${length} stream ${length === 1 ? 'entry' : 'entries'} the indexer could not apply kept in ${key} (${total} given up in all); the newest ${when}, entry ${newest.get('id') ?? '?'}: ${String(newest.get('error') ?? '?').slice(0, 300)}. Read them with XRANGE ${key} - +; once the cause is fixed, an entry's e field can be published again (applying twice changes nothing); DEL the key when done.`,
  }
}

/** The scheduler writes a ms timestamp with a TTL; missing or old means it is not running. */
export async function checkSchedulerHeartbeat(
  redis: Redis,
  schema: RedisSchema,
  t: DoctorThresholds = DEFAULT_THRESHOLDS,
  now = Date.now(),
): Promise<Check> {
  const raw = await redis.get(schema.schedulerHeartbeat)
  if (raw === null) {
    return {
      name: 'scheduler heartbeat',
      status: 'fail',
      message: `no heartbeat at ${schema.schedulerHeartbeat}: the scheduler is not running (or uses another REDIS_URL / REDIS_PREFIX).`,
    }
  }
  const ms = heartbeatMs(raw)
  if (ms === undefined) {
    return {
      name: 'scheduler heartbeat',
      status: 'warn',
      message: `heartbeat is there but unreadable: ${JSON.stringify(raw.slice(0, 80))}`,
    }
  }
  const age = now - ms
  return age <= t.heartbeatMaxAgeMs
    ? { name: 'scheduler heartbeat', status: 'ok', message: `${ago(Math.max(0, age))} ago` }
    : {
        name: 'scheduler heartbeat',
        status: 'fail',
        message: `last heartbeat ${ago(age)} ago: the scheduler has stopped or is stuck.`,
      }
}

function heartbeatMs(raw: string): number | undefined {
  const n = Number(raw)
  if (Number.isFinite(n) && n > 0) return n
  try {
    const doc = JSON.parse(raw) as Record<string, unknown>
    for (const k of ['ms', 'at', 'time', 'ts', 'timestamp']) {
      const v = doc[k]
      if (typeof v === 'number' && v > 0) return v
      if (typeof v === 'string' && Number.isFinite(Date.parse(v))) return Date.parse(v)
    }
  } catch {
    // not JSON either
  }
  return undefined
}

/** The websocket address the firehose subscribes to, from RELAY_URL (a host, or the full endpoint). */
export function subscribeReposUrl(relayUrl: string): string {
  const url = new URL(relayUrl)
  if (!url.pathname.includes('com.atproto.sync.subscribeRepos')) {
    url.pathname = `${url.pathname.replace(/\/+$/, '')}/xrpc/com.atproto.sync.subscribeRepos`
  }
  if (url.protocol === 'https:') url.protocol = 'wss:'
  if (url.protocol === 'http:') url.protocol = 'ws:'
  return url.toString()
}

/** Opens a websocket to the relay's subscribeRepos and closes it at once. */
export function checkRelay(relayUrl: string, timeoutMs = 5000): Promise<Check> {
  let target: string
  try {
    target = subscribeReposUrl(relayUrl)
  } catch {
    return Promise.resolve({
      name: 'relay',
      status: 'fail',
      message: `RELAY_URL ${JSON.stringify(relayUrl)} is not a URL.`,
    })
  }
  return new Promise((done) => {
    const started = Date.now()
    const ws = new WebSocket(target, { handshakeTimeout: timeoutMs })
    let settled = false
    const finish = (check: Check) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      ws.removeAllListeners('message')
      ws.terminate()
      done(check)
    }
    const timer = setTimeout(
      () =>
        finish({
          name: 'relay',
          status: 'fail',
          message: `no answer from ${target} within ${timeoutMs} ms: check the network or RELAY_URL.`,
        }),
      timeoutMs,
    )
    ws.on('open', () =>
      finish({
        name: 'relay',
        status: 'ok',
        message: `${target} accepted a websocket in ${Date.now() - started} ms`,
      }),
    )
    ws.on('unexpected-response', (_req, res) =>
      finish({
        name: 'relay',
        status: 'fail',
        message: `${target} answered HTTP ${res.statusCode} instead of a websocket: is RELAY_URL a relay or PDS?`,
      }),
    )
    ws.on('error', (err) =>
      finish({
        name: 'relay',
        status: 'fail',
        message: `cannot reach ${target}: ${err.message}. Check the network, DNS or RELAY_URL.`,
      }),
    )
  })
}

export interface DoctorOptions {
  redis: Redis
  schema: RedisSchema
  /** Skip the relay check when undefined. */
  relayUrl?: string
  relayTimeoutMs?: number
  thresholds?: DoctorThresholds
  /** Each service's /metrics (doctor-metrics.ts), read when it answers; none read when undefined. */
  metricsTargets?: MetricsTarget[]
  /** The bot's account (BOT_DID): its login and group are checked; undefined: no bot. */
  botDid?: string
  /** FIREHOSE_SHARDS: every shard's stream and dead letters are checked. @default 1 */
  streamShards?: number
}

export async function runDoctor(opts: DoctorOptions): Promise<{ ok: boolean; checks: Check[] }> {
  const t = opts.thresholds ?? DEFAULT_THRESHOLDS
  const checks: Check[] = []
  const guard = async (name: string, fn: () => Promise<Check | Check[]>) => {
    try {
      const r = await fn()
      checks.push(...(Array.isArray(r) ? r : [r]))
    } catch (err) {
      checks.push({ name, status: 'fail', message: `check failed: ${(err as Error).message}` })
    }
  }
  const relay = opts.relayUrl ? checkRelay(opts.relayUrl, opts.relayTimeoutMs) : undefined
  await guard('redis', () => checkRedisServers(opts.redis))
  await guard('firehose', () => checkFirehose(opts.redis, opts.schema, t))
  const shards = shardsOf(opts.schema, opts.streamShards ?? 1)
  for (const shard of shards) {
    const named = perShard(shard, shards.length)
    await guard(named('event stream'), async () =>
      (await checkStream(opts.redis, opts.schema, t, Date.now(), shard)).map(named),
    )
  }
  await guard('retired stream shards', () =>
    checkRetiredShards(opts.redis, opts.schema, shards.length),
  )
  await guard('indexers', () => checkIndexers(opts.redis, opts.schema, t))
  for (const shard of shards) {
    const named = perShard(shard, shards.length)
    await guard(named('dead letters'), async () =>
      named(await checkDeadLetters(opts.redis, opts.schema, Date.now(), shard)),
    )
  }
  await guard('scheduler heartbeat', () => checkSchedulerHeartbeat(opts.redis, opts.schema, t))
  await guard('backfill', () => checkBackfill(opts.redis, opts.schema))
  if (opts.metricsTargets) await guard('metrics', () => checkMetrics(opts.metricsTargets ?? []))
  const botDid = opts.botDid
  if (botDid) await guard('bot', () => checkBot(opts.redis, opts.schema, botDid))
  await guard('redis memory', () => checkMemory(opts.redis, opts.schema, t))
  if (relay) await guard('relay', () => relay)
  return { ok: checks.every((c) => c.status !== 'fail'), checks }
}

export function formatChecks(checks: Check[]): string {
  const mark: Record<Status, string> = { ok: '  ok ', warn: ' WARN', fail: ' FAIL' }
  const width = Math.max(...checks.map((c) => c.name.length))
  return checks.map((c) => `${mark[c.status]}  ${c.name.padEnd(width)}  ${c.message}`).join('\n')
}
