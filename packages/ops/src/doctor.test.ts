import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { createSchema } from '@circles/redis-schema'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  checkDeadLetters,
  checkFirehose,
  checkIndexers,
  checkRedisServer,
  checkSchedulerHeartbeat,
  checkStream,
  DEFAULT_THRESHOLDS,
  runDoctor,
  subscribeReposUrl,
} from './doctor.js'
import { type PrivateRedis, startPrivateRedis } from './private-redis.js'
import { freePort, tempDir } from './test-helpers.js'

// Each case runs against its own redis-server on a free port: the doctor reads server settings
// (maxmemory-policy, persistence) that must not be changed on the shared Redis.

async function withServer(extraArgs: string[]) {
  const dir = tempDir('doctor')
  const server = await startPrivateRedis({
    port: await freePort(),
    dataDir: join(dir, 'data'),
    logFile: join(dir, 'redis.log'),
    extraArgs,
  })
  const redis = new Redis(server.url, { maxRetriesPerRequest: 1 })
  return { dir, server, redis }
}

describe('doctor against a private redis-server', () => {
  let good: { dir: string; server: PrivateRedis; redis: Redis }
  let lru: { dir: string; server: PrivateRedis; redis: Redis }

  beforeAll(async () => {
    ;[good, lru] = await Promise.all([
      withServer([]),
      withServer(['--maxmemory-policy', 'allkeys-lru', '--appendonly', 'no']),
    ])
  })

  afterAll(async () => {
    for (const s of [good, lru]) {
      if (!s) continue
      s.redis.disconnect()
      await s.server.stop()
      rmSync(s.dir, { recursive: true, force: true })
    }
  })

  it('passes the Redis checks on noeviction with AOF', async () => {
    const checks = await checkRedisServer(good.redis)
    expect(checks.map((c) => [c.name, c.status])).toEqual([
      ['redis version', 'ok'],
      ['redis persistence', 'ok'],
      ['redis encodings', 'ok'],
      ['redis maxmemory-policy', 'ok'],
    ])
  })

  it('fails on allkeys-lru and on no persistence, saying why', async () => {
    const checks = await checkRedisServer(lru.redis)
    const policy = checks.find((c) => c.name === 'redis maxmemory-policy')
    expect(policy?.status).toBe('fail')
    expect(policy?.message).toMatch(/allkeys-lru.*noeviction/)
    expect(checks.find((c) => c.name === 'redis persistence')?.status).toBe('fail')
  })

  it('warns when the encodings the index relies on are below its needs', async () => {
    await lru.redis.config('SET', 'set-max-intset-entries', '512')
    const check = (await checkRedisServer(lru.redis)).find((c) => c.name === 'redis encodings')
    expect(check?.status).toBe('warn')
    expect(check?.message).toMatch(/set-max-intset-entries 512 \(wants \d+\)/)
  })

  it('runDoctor: fails on allkeys-lru, passes on a healthy system', async () => {
    const schema = createSchema('doctor:')
    // A healthy system: a stream with its group fully read and acked, and a fresh heartbeat.
    for (const { redis } of [good, lru]) {
      await redis.xadd(schema.eventStream, '*', 'e', 'x')
      await redis.xgroup('CREATE', schema.eventStream, schema.indexerGroup, '0')
      const read = (await redis.xreadgroup(
        'GROUP',
        schema.indexerGroup,
        'indexer-0',
        'COUNT',
        10,
        'STREAMS',
        schema.eventStream,
        '>',
      )) as [string, [string, string[]][]][]
      const ids = read[0]?.[1].map(([id]) => id) ?? []
      await redis.xack(schema.eventStream, schema.indexerGroup, ...ids)
      await redis.set(schema.firehoseCursor, '42')
      await redis.set(schema.schedulerHeartbeat, String(Date.now()), 'PX', 60_000)
      await redis.hset(schema.firehoseMetrics, {
        state: 'reading',
        updatedAt: Date.now(),
        lagMs: 500,
      })
      await redis.hset(schema.indexerMetrics, {
        'seen:indexer-0': Date.now(),
        'rate:indexer-0': 10,
      })
    }
    const bad = await runDoctor({ redis: lru.redis, schema })
    expect(bad.ok).toBe(false)
    const ok = await runDoctor({ redis: good.redis, schema })
    expect(ok.checks.filter((c) => c.status !== 'ok')).toEqual([])
    expect(ok.ok).toBe(true)
  })

  it('reports a missing group, lag and a dead consumer holding entries', async () => {
    const schema = createSchema('lag:')
    const r = good.redis
    const now = Date.now()
    expect((await checkStream(r, schema)).map((c) => c.status)).toEqual(['warn'])

    // Entries written 20 minutes ago, one delivered to a consumer that then died.
    for (let i = 1; i <= 5; i++)
      await r.xadd(schema.eventStream, `${now - 1_200_000}-${i}`, 'e', 'x')
    let checks = await checkStream(r, schema, DEFAULT_THRESHOLDS, now)
    expect(checks.find((c) => c.name === 'indexer group')?.status).toBe('fail')

    await r.xgroup('CREATE', schema.eventStream, schema.indexerGroup, '0')
    await r.xreadgroup(
      'GROUP',
      schema.indexerGroup,
      'dead-1',
      'COUNT',
      1,
      'STREAMS',
      schema.eventStream,
      '>',
    )
    checks = await checkStream(r, schema, { ...DEFAULT_THRESHOLDS, pendingIdleWarnMs: 0 }, now)
    const lag = checks.find((c) => c.name === 'indexer lag')
    expect(lag?.status).toBe('fail')
    expect(lag?.message).toMatch(/^4 entries not yet read, the oldest written 20 min ago/)
    const pending = checks.find((c) => c.name === 'pending entries')
    expect(pending?.status).toBe('warn')
    expect(pending?.message).toMatch(/dead-1 \(1 pending/)
  })

  it('reads the firehose state from its metrics hash', async () => {
    const schema = createSchema('fh:')
    const r = good.redis
    const now = Date.now()
    const check = () => checkFirehose(r, schema, DEFAULT_THRESHOLDS, now)
    expect((await check()).status).toBe('warn')
    await r.hset(schema.firehoseMetrics, { state: 'reading', updatedAt: now - 5000, lagMs: 800 })
    expect(await check()).toMatchObject({
      status: 'ok',
      message: expect.stringMatching(/^reading/),
    })
    await r.hset(schema.firehoseMetrics, { lagMs: 600_000 })
    expect(await check()).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/10 min behind/),
    })
    await r.hset(schema.firehoseMetrics, { state: 'backoff', reconnects: 7 })
    expect(await check()).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/7 reconnects/),
    })
    await r.hset(schema.firehoseMetrics, { updatedAt: now - 120_000 })
    expect(await check()).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/not running/),
    })
  })

  it('finds the running indexers and poison entries in their metrics hash', async () => {
    const schema = createSchema('ix:')
    const r = good.redis
    const now = Date.now()
    expect((await checkIndexers(r, schema, DEFAULT_THRESHOLDS, now))[0]?.status).toBe('warn')
    await r.hset(schema.indexerMetrics, {
      'seen:a-0': now - 5000,
      'rate:a-0': 120,
      'seen:b-1': now - 600_000,
      updatedAt: now - 5000,
    })
    let checks = await checkIndexers(r, schema, DEFAULT_THRESHOLDS, now)
    expect(checks).toEqual([
      { name: 'indexers', status: 'ok', message: '1 running: a-0 (120 events/s)' },
    ])
    await r.hset(schema.indexerMetrics, {
      'backoff:a-0': JSON.stringify({
        kind: 'oom',
        since: now - 40_000,
        failures: 9,
        delayMs: 30_000,
      }),
    })
    checks = await checkIndexers(r, schema, DEFAULT_THRESHOLDS, now)
    expect(checks).toEqual([
      {
        name: 'indexers',
        status: 'warn',
        message: expect.stringMatching(/^1 running, backing off .*: a-0 \(oom for 40 s\)/),
      },
    ])
    await r.hset(schema.indexerMetrics, { 'seen:a-0': now - 100_000 })
    checks = await checkIndexers(r, schema, DEFAULT_THRESHOLDS, now)
    expect(checks.map((c) => c.status)).toEqual(['fail'])
    expect(checks[0]?.message).toMatch(/no indexer has reported for 100 s/)
  })

  it('warns of dead letters with their number and the newest error', async () => {
    const schema = createSchema('dl:')
    const r = good.redis
    const now = Date.now()
    expect(await checkDeadLetters(r, schema, now)).toEqual({
      name: 'dead letters',
      status: 'ok',
      message: 'none',
    })
    const letter = (id: string, error: string) =>
      r.xadd(schema.indexerDeadLetters, '*', 'e', 'x', 'id', id, 'error', error, 'at', now - 5000)
    await letter('1-0', 'entry has no `e` field')
    await letter('2-0', 'WRONGTYPE Operation against a key holding the wrong kind of value')
    await r.hset(schema.indexerMetrics, { deadLetters: 7 })
    const check = await checkDeadLetters(r, schema, now)
    expect(check.status).toBe('warn')
    expect(check.message).toMatch(
      /^2 stream entries .* kept in dl:\{fh\}:dead-letters \(7 given up in all\); the newest 5 s ago, entry 2-0: WRONGTYPE Operation/,
    )
  })

  it('fails on a missing or stale scheduler heartbeat', async () => {
    const schema = createSchema('hb:')
    const r = good.redis
    expect((await checkSchedulerHeartbeat(r, schema)).status).toBe('fail')
    await r.set(schema.schedulerHeartbeat, String(Date.now() - 600_000))
    expect((await checkSchedulerHeartbeat(r, schema)).status).toBe('fail')
    await r.set(schema.schedulerHeartbeat, String(Date.now()))
    expect((await checkSchedulerHeartbeat(r, schema)).status).toBe('ok')
  })
})

describe('relay address', () => {
  it('adds the subscribeRepos path to a bare relay URL', () => {
    expect(subscribeReposUrl('wss://bsky.network')).toBe(
      'wss://bsky.network/xrpc/com.atproto.sync.subscribeRepos',
    )
    expect(subscribeReposUrl('http://localhost:2583/')).toBe(
      'ws://localhost:2583/xrpc/com.atproto.sync.subscribeRepos',
    )
    expect(subscribeReposUrl('ws://h/xrpc/com.atproto.sync.subscribeRepos')).toBe(
      'ws://h/xrpc/com.atproto.sync.subscribeRepos',
    )
  })
})
