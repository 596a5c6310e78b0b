import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeEvents, type StreamEvent, tidFromMs } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  type IndexReader,
  type KindCounts,
} from '@circles/interaction-index'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import { parseConsumers } from '@circles/stream-info'
import { type PrivateRedis, startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { createIndexerService } from '../src/service.js'
import {
  canonicalExport,
  groupCounts,
  indexPart,
  mixedEvents,
  plc,
  waitDrained,
} from './helpers.js'

const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/src/main.js')
const ALL: KindCounts = { like: 1, repost: 1, reply: 1, quote: 1 }
const DIDS = Array.from({ length: 40 }, (_, i) => plc(`user${i}`))

let server: PrivateRedis
let redis: Redis

async function publish(
  schema: RedisSchema,
  events: StreamEvent[],
  perEntry: number,
): Promise<number> {
  const pipe = redis.pipeline()
  let n = 0
  for (let i = 0; i < events.length; i += perEntry) {
    pipe.xadd(schema.eventStream, '*', 'e', encodeEvents(events.slice(i, i + perEntry)))
    n++
  }
  await pipe.exec()
  return n
}

/** What the API would see for every account: summaries and full partner lists. */
async function view(reader: IndexReader) {
  const out: Record<string, unknown> = {}
  for (const did of DIDS) {
    out[did] = {
      summary: await reader.summary(did, 48),
      top: await reader.topPartners({
        did,
        direction: 'both',
        windowHours: 48,
        weights: ALL,
        limit: 100,
      }),
    }
  }
  return out
}

function spawnIndexer(
  prefix: string,
  consumer: string,
  extra: Record<string, string> = {},
): ChildProcess {
  return spawn(process.execPath, [MAIN], {
    env: {
      ...process.env,
      REDIS_URL: server.url,
      REDIS_PREFIX: prefix,
      INDEXER_CONSUMER: consumer,
      LOG_LEVEL: 'silent',
      ...extra,
    },
    stdio: 'ignore',
  })
}

beforeAll(async () => {
  server = await startRedisServer()
  redis = new Redis(server.url)
})

afterAll(async () => {
  redis?.disconnect()
  await server?.stop()
})

describe('indexer service', () => {
  it('two processes at once index the stream exactly like one ordered apply', async () => {
    const now = Date.now()
    // No purge here: a purge racing a create of the same account in another process is a documented limit.
    const events = mixedEvents(3000, now, 7, false)
    const a = createSchema('two:')
    const entries = await publish(a, events, 40)
    const config = (consumer: string) =>
      toConfig({
        REDIS_URL: server.url,
        REDIS_PREFIX: 'two:',
        INDEXER_CONSUMER: consumer,
        INDEXER_BATCH_ENTRIES: '3',
        INDEXER_METRICS_MS: '100',
      })
    const s1 = createIndexerService(config('one'))
    const s2 = createIndexerService(config('two'))
    await Promise.all([s1.start(), s2.start()])
    await waitDrained(redis, a.eventStream, a.indexerGroup)
    await Promise.all([s1.close(), s2.close()])
    await s1.close() // idempotent
    const c1 = s1.counters()
    const c2 = s2.counters()
    expect(c1.entries + c2.entries).toBe(entries)
    expect(c1.entries).toBeGreaterThan(0)
    expect(c2.entries).toBeGreaterThan(0)
    const metrics = await redis.hgetall(a.indexerMetrics)
    expect(Number(metrics.entries)).toBe(entries)
    expect(Number(metrics.lag)).toBeGreaterThanOrEqual(0)

    const b = createSchema('ref:')
    await createIndexWriter(redis, b).apply(events)
    expect(await view(createIndexReader(redis, a))).toEqual(await view(createIndexReader(redis, b)))
  })

  it('shutdown finishes and acknowledges the batch in hand', async () => {
    const schema = createSchema('stop:')
    const entries = await publish(schema, mixedEvents(20_000, Date.now(), 5), 50)
    const service = createIndexerService(
      toConfig({
        REDIS_URL: server.url,
        REDIS_PREFIX: 'stop:',
        INDEXER_CONSUMER: 'stopper',
        INDEXER_BATCH_ENTRIES: '20',
      }),
    )
    await service.start()
    for (;;) {
      const { pending } = await groupCounts(redis, schema.eventStream, schema.indexerGroup)
      if (pending > 0) break
      await new Promise((r) => setTimeout(r, 2))
    }
    await service.close()
    const { lag, pending } = await groupCounts(redis, schema.eventStream, schema.indexerGroup)
    expect(pending).toBe(0)
    expect(service.counters().entries).toBe(entries - lag)
    expect(lag).toBeGreaterThan(0)
  })

  it('an identity event on the stream drops the API caches it makes stale, with the writes around it', async () => {
    const schema = createSchema('ident:')
    const [alice, bob, carol] = DIDS as [string, string, string]
    await redis.set(schema.profile(alice), JSON.stringify({ did: alice, handle: 'old.test' }))
    await redis.set(schema.handleDid('new.test'), bob)
    await redis.set(schema.profile(bob), JSON.stringify({ did: bob, handle: 'bob.test' }))
    const now = Date.now()
    const like = { type: 'create', kind: 'like', author: bob, subject: carol, chars: 0 } as const
    await publish(
      schema,
      [
        { type: 'identity', did: alice, handle: 'new.test', time: now },
        { ...like, rkey: tidFromMs(now - 1000), time: now - 1000 },
      ],
      2,
    )
    const service = createIndexerService(
      toConfig({ REDIS_URL: server.url, REDIS_PREFIX: 'ident:', INDEXER_CONSUMER: 'ident' }),
    )
    await service.start()
    await waitDrained(redis, schema.eventStream, schema.indexerGroup)
    await service.close()
    expect(service.counters().identities).toBe(1)
    expect(await redis.exists(schema.profile(alice), schema.handleDid('new.test'))).toBe(0)
    expect(await redis.exists(schema.profile(bob))).toBe(1)
    expect((await createIndexReader(redis, schema).summary(bob, 48)).sent.like).toBe(1)
  })

  it('at start, deletes idle consumers that left nothing pending, and only those', async () => {
    const schema = createSchema('prune:')
    await publish(schema, mixedEvents(50, Date.now(), 6), 10)
    await redis.xgroup('CREATE', schema.eventStream, schema.indexerGroup, '0')
    const consume = (name: string, count: number) =>
      redis.xreadgroup(
        'GROUP',
        schema.indexerGroup,
        name,
        'COUNT',
        count,
        'STREAMS',
        schema.eventStream,
        '>',
      )
    // "gone": ended after acknowledging everything; "crashed": ended with an entry pending
    await redis.xgroup('CREATECONSUMER', schema.eventStream, schema.indexerGroup, 'gone')
    await consume('crashed', 1)
    await new Promise((r) => setTimeout(r, 1200))
    // "recent": no pending entries, but active within the idle limit
    await redis.xgroup('CREATECONSUMER', schema.eventStream, schema.indexerGroup, 'recent')
    const service = createIndexerService(
      toConfig({
        REDIS_URL: server.url,
        REDIS_PREFIX: 'prune:',
        INDEXER_CONSUMER: 'pruner',
        INDEXER_PRUNE_IDLE_MS: '1000',
        INDEXER_CLAIM_IDLE_MS: '3600000',
      }),
    )
    await service.start()
    try {
      const consumers = parseConsumers(
        await redis.call('XINFO', 'CONSUMERS', schema.eventStream, schema.indexerGroup),
      )
      // (the service's own consumer appears with its first read)
      const names = consumers.map((c) => c.name).filter((n) => n !== 'pruner')
      expect(names.sort()).toEqual(['crashed', 'recent'])
    } finally {
      await service.close()
    }
  })

  it('pending entries deleted from the stream are counted as lost, the others applied', async () => {
    const schema = createSchema('trimmed:')
    await publish(schema, mixedEvents(300, Date.now(), 8), 10)
    await redis.xgroup('CREATE', schema.eventStream, schema.indexerGroup, '0')
    const take = async (consumer: string, count: number) => {
      const reply = (await redis.xreadgroup(
        'GROUP',
        schema.indexerGroup,
        consumer,
        'COUNT',
        count,
        'STREAMS',
        schema.eventStream,
        '>',
      )) as [string, [string, string[]][]][]
      return (reply[0]?.[1] ?? []).map(([id]) => id)
    }
    // a dead consumer's pending entries and this consumer's own from an earlier life, some of each
    // trimmed away meanwhile
    const theirs = await take('dead', 5)
    const mine = await take('again', 5)
    await redis.xdel(
      schema.eventStream,
      theirs[1] as string,
      theirs[3] as string,
      mine[0] as string,
    )
    const run = async (claimIdleMs: number, until: () => Promise<boolean>) => {
      const service = createIndexerService(
        toConfig({
          REDIS_URL: server.url,
          REDIS_PREFIX: 'trimmed:',
          INDEXER_CONSUMER: 'again',
          INDEXER_CLAIM_IDLE_MS: String(claimIdleMs),
          INDEXER_BLOCK_MS: '100',
        }),
      )
      await service.start()
      try {
        while (!(await until())) await new Promise((r) => setTimeout(r, 20))
      } finally {
        await service.close()
      }
      return service.counters()
    }
    const info = () => groupCounts(redis, schema.eventStream, schema.indexerGroup)
    // XAUTOCLAIM drops deleted entries from the group whatever their idle time (Redis 7.0): the first
    // scan, at start, finds all three, while the dead consumer's others are not idle long enough
    const first = await run(3_600_000, async () => {
      const { lag, pending } = await info()
      return lag === 0 && pending === 3
    })
    expect(first.lostEntries).toBe(3)
    expect(first.claimed).toBe(0)
    expect(first.entries).toBe((await redis.xlen(schema.eventStream)) - 3)
    // then the dead consumer's others, taken over
    const second = await run(1, async () => (await info()).pending === 0)
    expect(second.lostEntries).toBe(0)
    expect(second.claimed).toBe(3)
    expect(second.entries).toBe(3)
    expect(first.deadLetters + second.deadLetters).toBe(0)
  })

  it('kill -9 in mid-batch, reclaim by another process: final state identical key for key', async () => {
    const now = Date.now()
    const events = mixedEvents(20_000, now, 11)
    const victimSchema = createSchema('kill:')
    const refSchema = createSchema('whole:')
    const entries = await publish(victimSchema, events, 100)
    await publish(refSchema, events, 100)

    const victim = spawnIndexer('kill:', 'victim', { INDEXER_BATCH_ENTRIES: '2' })
    const exited = once(victim, 'exit')
    let killedWithPending = 0
    for (;;) {
      const { lag, pending } = await groupCounts(
        redis,
        victimSchema.eventStream,
        victimSchema.indexerGroup,
      )
      if (lag >= 0 && lag < entries * 0.7 && pending > 0) {
        victim.kill('SIGKILL')
        break
      }
      if (lag === 0 && pending === 0) throw new Error('finished before it could be killed')
      await new Promise((r) => setTimeout(r, 2))
    }
    await exited
    const left = (await redis.xpending(victimSchema.eventStream, victimSchema.indexerGroup)) as [
      number,
    ]
    killedWithPending = left[0]
    expect(killedWithPending).toBeGreaterThan(0)

    const rescuer = spawnIndexer('kill:', 'rescuer', {
      INDEXER_CLAIM_IDLE_MS: '1',
      INDEXER_CLAIM_INTERVAL_MS: '50',
    })
    const whole = spawnIndexer('whole:', 'whole')
    try {
      await waitDrained(redis, victimSchema.eventStream, victimSchema.indexerGroup, 60_000)
      await waitDrained(redis, refSchema.eventStream, refSchema.indexerGroup, 60_000)
    } finally {
      rescuer.kill('SIGTERM')
      whole.kill('SIGTERM')
      await Promise.all([once(rescuer, 'exit'), once(whole, 'exit')])
    }
    const got = indexPart(await canonicalExport(redis, 'kill:'), 'kill:')
    const want = indexPart(await canonicalExport(redis, 'whole:'), 'whole:')
    expect(Object.keys(got).length).toBeGreaterThan(50)
    expect(got).toEqual(want)
  })

  it('no multi-key command crosses a slot: service, writer and reader on a cluster-mode node', async () => {
    const cluster = await startRedisServer([], { cluster: true })
    const c = new Redis(cluster.url)
    try {
      const schema = createSchema('slots:')
      const now = Date.now()
      const events = mixedEvents(1500, now, 3)
      const pipe = c.pipeline()
      for (let i = 0; i < events.length; i += 50) {
        pipe.xadd(schema.eventStream, '*', 'e', encodeEvents(events.slice(i, i + 50)))
      }
      await pipe.exec()
      const service = createIndexerService(
        toConfig({ REDIS_URL: cluster.url, REDIS_PREFIX: 'slots:', INDEXER_METRICS_MS: '100' }),
      )
      await service.start()
      await waitDrained(c, schema.eventStream, schema.indexerGroup)
      await service.close()
      expect(service.counters().added).toBeGreaterThan(100)
      expect(service.counters().retries).toBe(0)
      // reads, the roll-up scan and purges too (CROSSSLOT would throw)
      const reader = createIndexReader(c, schema)
      const seen = await view(reader)
      expect(Object.keys(seen)).toHaveLength(DIDS.length)
      const page = await reader.partners({ did: DIDS[0] as string, windowHours: 48, limit: 3 })
      expect(page.partners.length).toBeGreaterThan(0)
      const hours = await reader.hours()
      let rows = 0
      for (const h of hours) {
        await reader.scanHour(h, async (batch) => {
          rows += batch.length
        })
      }
      expect(rows).toBeGreaterThan(0)
      await reader.dropHour(hours[0] as number)
      await createIndexWriter(c, schema).purge(DIDS[0] as string, now)
      expect(await reader.summary(DIDS[0] as string, 48)).toMatchObject({
        partnersSent: 0,
        partnersReceived: 0,
      })
    } finally {
      c.disconnect()
      await cluster.stop()
    }
  })
})
