import { createIndexWriter } from '@circles/interaction-index'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import { clockAnchor, type PrivateRedis, startRedisServer } from '@circles/testkit'
import { Redis } from 'ioredis'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import type { IndexerCounters } from '../src/metrics.js'
import { createIndexerService, type IndexerService } from '../src/service.js'
import {
  type Answers,
  answerDiff,
  create,
  entriesOf,
  everyAnswer,
  groupCounts,
  mixedEvents,
  plc,
  publishEntries,
  tally,
  waitDrained,
  waitUntil,
} from './helpers.js'

// What Redis really does to the indexer, one fault per case, each on a private redis-server (the faults
// change server settings or wipe it): the indexer runs in this process over the same entries as an
// undisturbed run, the fault strikes while it works through a backlog, and every answer of the resulting
// index (partners and counts of every account, every hour's roll-up rows) must equal the undisturbed
// run's. Each case prints its figures: events in, events applied (redeliveries included), interactions
// held, lost and doubled against the undisturbed run, and the indexer's fault counters.

const PREFIX = 'faults:'
const DIDS = Array.from({ length: 40 }, (_, i) => plc(`user${i}`))
const EVENTS = mixedEvents(6000, clockAnchor(), 21)
const ENTRIES = entriesOf(EVENTS, 20)
/** Entries indexed before the fault; the rest is the backlog it strikes in. */
const HEAD = 60

let reference: Answers
let cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {})
  cleanups = []
})

interface Ctl {
  redis: Redis
  server: PrivateRedis
  schema: RedisSchema
  indexer: IndexerService
  /** Appends the backlog (the entries after HEAD) or any other entries. */
  publish(entries?: readonly (string | Buffer)[][]): Promise<void>
  /** Resolves once the indexer has applied this many more entries than when the fault started. */
  applied(entries: number): Promise<void>
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms))
}

/**
 * Indexes HEAD entries, then calls `fault`, which publishes the backlog and disturbs Redis, then waits
 * until the group has read and acknowledged the whole stream, and returns the index's answers.
 */
async function runCase(name: string, fault: (ctl: Ctl) => Promise<void>, extraArgs: string[] = []) {
  const server = await startRedisServer(['--enable-debug-command', 'yes', ...extraArgs])
  // SIGKILL: a Lua loop that was not killed keeps redis-server from handling SIGTERM
  cleanups.push(() => server.crash())
  const redis = new Redis(server.url, { maxRetriesPerRequest: 0 })
  redis.on('error', () => {})
  cleanups.push(async () => redis.disconnect())
  const schema = createSchema(PREFIX)
  const indexer = createIndexerService(
    toConfig({
      REDIS_URL: server.url,
      REDIS_PREFIX: PREFIX,
      INDEXER_CONSUMER: 'faulty',
      INDEXER_BATCH_ENTRIES: '2',
      INDEXER_BLOCK_MS: '100',
      INDEXER_RETRY_MS: '20',
      INDEXER_BACKOFF_MAX_MS: '200',
      INDEXER_METRICS_MS: '200',
      INDEXER_DEAD_LETTER_MAXLEN: '100',
    }),
  )
  await publishEntries(redis, schema, ENTRIES.slice(0, HEAD))
  await indexer.start()
  cleanups.push(() => indexer.close())
  await waitDrained(redis, schema.eventStream, schema.indexerGroup)
  const started = indexer.counters().entries
  await fault({
    redis,
    server,
    schema,
    indexer,
    publish: (entries = ENTRIES.slice(HEAD)) => publishEntries(redis, schema, entries),
    async applied(n) {
      // in this process: no round trip, so the fault lands where it should, not a batch later
      const deadline = Date.now() + 30_000
      while (indexer.counters().entries < started + n) {
        if (Date.now() > deadline) throw new Error(`${name}: fewer than ${n} entries applied`)
        await new Promise((r) => setImmediate(r))
      }
    },
  })
  await waitDrained(redis, schema.eventStream, schema.indexerGroup, 30_000)
  await indexer.close()
  const answers = await everyAnswer(redis, schema, DIDS)
  const deadLetters = (await redis.xrange(schema.indexerDeadLetters, '-', '+')).map(
    ([, fields]) => {
      const o: Record<string, string> = {}
      for (let i = 0; i + 1 < fields.length; i += 2)
        o[fields[i] as string] = fields[i + 1] as string
      return o
    },
  )
  return { answers, counters: indexer.counters(), deadLetters }
}

function report(name: string, eventsIn: number, answers: Answers, c: IndexerCounters) {
  const t = tally(answers, reference)
  const figures = {
    fault: name,
    eventsIn,
    eventsApplied: c.events,
    interactions: t.held,
    lost: t.lost,
    doubled: t.doubled,
    deadLetters: c.deadLetters,
    lostEntries: c.lostEntries,
    groupRecreated: c.groupRecreated,
    ackMissed: c.ackMissed,
    errors: c.errors,
  }
  // the figures the issue asks for, one line per fault
  console.log(`fault figures ${JSON.stringify(figures)}`)
  return t
}

function expectSameAnswers(answers: Answers) {
  expect(answerDiff(answers, reference)).toEqual([])
  expect(answers).toEqual(reference)
}

beforeAll(async () => {
  const calm = await runCase('none', (ctl) => ctl.publish())
  reference = calm.answers
  expect(calm.counters.errors).toEqual({})
  // the input has something to lose: most accounts have partners
  expect(
    Object.values(reference.partners).filter((p) => (p as unknown[]).length > 0).length,
  ).toBeGreaterThan(30)
  report('none', EVENTS.length, calm.answers, calm.counters)
  // and the undisturbed indexer agrees with the writer applied in one go
  const server = await startRedisServer()
  const redis = new Redis(server.url)
  try {
    const schema = createSchema('whole:')
    const writer = createIndexWriter(redis, schema)
    await writer.apply(EVENTS)
    await writer.close()
    expect(answerDiff(await everyAnswer(redis, schema, DIDS), reference)).toEqual([])
  } finally {
    redis.disconnect()
    await server.stop()
  }
}, 120_000)

describe('the indexer under what Redis really does', () => {
  it('OOM with a backlog: backs off, acknowledges nothing unapplied, then indexes it all', async () => {
    let during: IndexerCounters | undefined
    let pendingDuring = 0
    const run = await runCase('oom', async ({ redis, schema, indexer }) => {
      const before = indexer.counters()
      const used = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1])
      // The backlog and the limit in one transaction: the indexer sees the entries only with the limit.
      const multi = redis.multi()
      for (const fields of ENTRIES.slice(HEAD)) multi.xadd(schema.eventStream, '*', ...fields)
      multi.config('SET', 'maxmemory', String(Math.floor(used / 2)))
      await multi.exec()
      await waitUntil(
        'OOM back-off',
        async () => (indexer.counters().errors.oom ?? 0) >= 10,
        10_000,
      )
      expect(indexer.backoff()).toMatchObject({ kind: 'oom' })
      await sleep(1000)
      during = indexer.counters()
      pendingDuring = (await groupCounts(redis, schema.eventStream, schema.indexerGroup)).pending
      // nothing acknowledged while Redis refused the writes, nothing given up
      expect(during.entries).toBe(before.entries)
      expect(during.deadLetters).toBe(0)
      await redis.config('SET', 'maxmemory', '0')
    })
    // read but kept pending, not acknowledged
    expect(pendingDuring).toBeGreaterThan(0)
    // bounded exponential: ~1 s at up to 200 ms per wait and three batches in flight
    expect(during?.errors.oom).toBeLessThan(200)
    const t = report('oom', EVENTS.length, run.answers, run.counters)
    expect(t).toMatchObject({ lost: 0, doubled: 0 })
    expect(run.deadLetters).toEqual([])
    expect(run.counters.deadLetters).toBe(0)
    expectSameAnswers(run.answers)
  })

  it('XGROUP DESTROY mid-run: creates the group again by itself and loses nothing', async () => {
    let recoveryMs = 0
    const run = await runCase('xgroup-destroy', async ({ redis, schema, publish, applied }) => {
      await publish()
      await applied(40)
      await redis.xgroup('DESTROY', schema.eventStream, schema.indexerGroup)
      const t0 = Date.now()
      await waitDrained(redis, schema.eventStream, schema.indexerGroup, 10_000)
      recoveryMs = Date.now() - t0
    })
    const t = report('xgroup-destroy', EVENTS.length, run.answers, run.counters)
    console.log(`xgroup-destroy: drained again ${recoveryMs} ms after the group was destroyed`)
    expect(recoveryMs).toBeLessThan(5000)
    expect(run.counters.groupRecreated).toBe(1)
    // the stream was read again from its start: applied twice, counted once
    expect(run.counters.events).toBeGreaterThan(EVENTS.length)
    expect(t).toMatchObject({ lost: 0, doubled: 0 })
    expectSameAnswers(run.answers)
  })

  it('FLUSHALL mid-run, the input published again from the start: recovers by itself', async () => {
    let recoveryMs = 0
    const run = await runCase('flushall', async ({ redis, schema, publish, applied }) => {
      await publish()
      await applied(40)
      await redis.flushall()
      const t0 = Date.now()
      // as the firehose would from its fallback cursor: the whole input again
      await publish(ENTRIES)
      await waitDrained(redis, schema.eventStream, schema.indexerGroup, 10_000)
      recoveryMs = Date.now() - t0
    })
    const t = report('flushall', EVENTS.length, run.answers, run.counters)
    console.log(`flushall: drained again ${recoveryMs} ms after FLUSHALL`)
    expect(recoveryMs).toBeLessThan(5000)
    expect(run.counters.groupRecreated).toBe(1)
    expect(t).toMatchObject({ lost: 0, doubled: 0 })
    expectSameAnswers(run.answers)
  })

  it('CLIENT PAUSE WRITE during the writes: nothing lost or doubled', async () => {
    const run = await runCase(
      'client-pause-write',
      async ({ redis, indexer, publish, applied }) => {
        await publish()
        await applied(40)
        await redis.call('CLIENT', 'PAUSE', '1500', 'WRITE')
        const at = indexer.counters().entries
        await sleep(1000)
        // every write waits (FCALL, XACK, XREADGROUP too): at most the batches already written finish
        expect(indexer.counters().entries - at).toBeLessThanOrEqual(6)
      },
    )
    const t = report('client-pause-write', EVENTS.length, run.answers, run.counters)
    expect(t).toMatchObject({ lost: 0, doubled: 0 })
    expect(run.counters.deadLetters).toBe(0)
    expectSameAnswers(run.answers)
  })

  it('DEBUG SLEEP during the writes: nothing lost or doubled', async () => {
    const run = await runCase('debug-sleep', async ({ redis, publish, applied }) => {
      await publish()
      await applied(40)
      await redis.call('DEBUG', 'SLEEP', '1.5')
    })
    const t = report('debug-sleep', EVENTS.length, run.answers, run.counters)
    expect(t).toMatchObject({ lost: 0, doubled: 0 })
    expectSameAnswers(run.answers)
  })

  it('BUSY from a long script during the writes: backs off, nothing lost or doubled', async () => {
    const run = await runCase('busy-script', async ({ server, indexer, publish, applied }) => {
      // Connected before the script runs: a connection made while Redis is BUSY fails its handshake.
      const looper = new Redis(server.url)
      const killer = new Redis(server.url)
      cleanups.push(async () => {
        looper.disconnect()
        killer.disconnect()
      })
      await Promise.all([looper.ping(), killer.ping()])
      await killer.config('SET', 'busy-reply-threshold', '100')
      await publish()
      await applied(40)
      const busy = looper.eval('while true do end', 0).catch((err: Error) => err)
      await waitUntil(
        'BUSY back-off',
        async () => (indexer.counters().errors.busy ?? 0) >= 3,
        10_000,
      )
      await sleep(1000)
      await killer.script('KILL')
      expect(String(await busy)).toMatch(/killed/i)
    })
    const t = report('busy-script', EVENTS.length, run.answers, run.counters)
    expect(run.counters.errors.busy).toBeGreaterThan(0)
    expect(t).toMatchObject({ lost: 0, doubled: 0 })
    expect(run.counters.deadLetters).toBe(0)
    expectSameAnswers(run.answers)
  })

  it('poison entries: copied to the dead-letter stream with the error, acknowledged, the rest indexed', async () => {
    const a = plc('poison-a')
    const b = plc('poison-b')
    const time = EVENTS[0]?.time as number
    const poison: (string | Buffer)[][] = [
      ['e', Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('not\tan\tevent')])],
      ['x', 'no events field'],
      // an account whose log key holds a hash: WRONGTYPE on that entry only
      ['e', entriesOf([create(a, b, 'like', time)], 1)[0]?.[1] as string],
    ]
    const rest = ENTRIES.slice(HEAD)
    const mid = Math.floor(rest.length / 2)
    const run = await runCase('poison', async ({ redis, schema, publish }) => {
      await redis.hset(schema.accountLog(a), 'not', 'a log')
      await publish([...rest.slice(0, mid), ...poison, ...rest.slice(mid)])
    })
    const figures = report('poison', EVENTS.length + 1, run.answers, run.counters)
    expect(run.counters.deadLetters).toBe(3)
    expect(run.deadLetters.map((d) => d.error)).toEqual([
      expect.stringMatching(/^1 of 1 event lines do not decode .*malformed event line/),
      'entry has no `e` field',
      expect.stringMatching(/^WRONGTYPE/),
    ])
    for (const d of run.deadLetters) {
      expect(d).toMatchObject({ consumer: 'faulty', id: expect.stringMatching(/^\d+-\d+$/) })
      expect(Math.abs(Number(d.at) - Date.now())).toBeLessThan(60_000)
    }
    expect(run.deadLetters[1]).toMatchObject({ x: 'no events field' })
    expect(figures).toMatchObject({ lost: 0, doubled: 0 })
    expectSameAnswers(run.answers)
  })
})
