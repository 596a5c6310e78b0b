import { BACKFILL_QUEUE, type BackfillJobData, backfillQueueOptions } from '@circles/backfill'
import { type InteractionKind, type StreamEvent, tidFromMs } from '@circles/core'
import {
  createIndexReader,
  createIndexWriter,
  type IndexWriter,
  rememberDids,
} from '@circles/interaction-index'
import { encodeDayBlob, kindIndex, packDid } from '@circles/long-term'
import { createSchema, type LongTermSide } from '@circles/redis-schema'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { Queue } from 'bullmq'
import type { FastifyInstance } from 'fastify'
import { Redis } from 'ioredis'
import { type AppDeps, buildApp } from '../src/app.js'
import { type FartConfig, toConfig } from '../src/config.js'
import type { LivePartners, Partner, TopPartnersQuery } from '../src/index-source.js'
import type { KindCounts } from '../src/params.js'
import { createLongWindows } from '../src/wiring.js'
import { type FakeAppView, startFakeAppView } from './fake-appview.js'

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'
/** A valid did:plc for a small number. */
export function did(i: number): string {
  let s = ''
  for (let n = i; s.length < 24; n = Math.floor(n / 32)) s = B32.charAt(n % 32) + s
  return `did:plc:${s}`
}

export function counts(c: Partial<KindCounts> = {}): KindCounts {
  return { like: 0, repost: 0, reply: 0, quote: 0, ...c }
}

/** The real index reader, counting calls and optionally slowed down, so single-flight is observable. */
export function countingReader(
  inner: LivePartners,
): LivePartners & { calls: number; delayMs: number; failNext: number } {
  const self = {
    calls: 0,
    delayMs: 0,
    /** The next `failNext` calls throw, as when Redis fails mid-computation. */
    failNext: 0,
    async topPartners(q: TopPartnersQuery): Promise<Partner[]> {
      self.calls++
      if (self.delayMs) await new Promise((r) => setTimeout(r, self.delayMs))
      if (self.failNext > 0) {
        self.failNext--
        throw new Error('index unavailable (test)')
      }
      return inner.topPartners(q)
    },
    partners: (q: Parameters<LivePartners['partners']>[0]) => inner.partners(q),
  }
  return self
}

export interface Harness {
  t: TestRedis
  appview: FakeAppView
  index: ReturnType<typeof countingReader>
  writer: IndexWriter
  app: FastifyInstance
  config: FartConfig
  /** The backfill queue the app enqueues to (`startHarness(env, { backfill: true })`), else undefined. */
  backfillQueue?: Queue<BackfillJobData>
  /** Writes `c` interactions from a to b into the real index (times within the last hour). */
  link(a: string, b: string, c: Partial<KindCounts>): Promise<void>
  close(): Promise<void>
}

let lastTime = Number.MAX_SAFE_INTEGER

export const ADMIN_TOKEN = 'test-admin-token-0123456789'

/**
 * A test Redis on a private server (a test that stops it, fills its memory or makes it a replica), connected
 * as the service connects: commands wait for a reconnection, at most one attempt. `cleanup()` only
 * disconnects: the server's owner stops it.
 */
async function privateTestRedis(url: string, commandTimeout?: number): Promise<TestRedis> {
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, commandTimeout })
  redis.on('error', () => {}) // refused while the test has the server down: expected
  await redis.connect()
  const prefix = 'fart:'
  return {
    redis,
    url,
    prefix,
    schema: createSchema(prefix),
    cleanup: async () => redis.disconnect(),
  }
}

export interface HarnessOptions {
  longWindows?: boolean
  redisUrl?: string
  backfill?: boolean
  /** Adds routes to the app before it is ready (a benchmark's baseline page). */
  routes?: (app: FastifyInstance) => void
}

export async function startHarness(
  env: Record<string, string> = {},
  opts: HarnessOptions = {},
): Promise<Harness> {
  // API_REDIS_TIMEOUT_MS reaches the private connection as it reaches the service's (apiRedisOptions).
  const timeout =
    env.API_REDIS_TIMEOUT_MS === undefined ? undefined : Number(env.API_REDIS_TIMEOUT_MS)
  const t = opts.redisUrl
    ? await privateTestRedis(opts.redisUrl, timeout)
    : await createTestRedis('fart')
  const appview = await startFakeAppView()
  const index = countingReader(createIndexReader(t.redis, t.schema))
  const writer = createIndexWriter(t.redis, t.schema)
  const config = toConfig({
    REDIS_PREFIX: t.prefix,
    APPVIEW_URL: appview.url,
    ADMIN_TOKEN,
    RATE_LIMIT_MAX: '0',
    APPVIEW_TIMEOUT_MS: '1000',
    // The fake AppView is the avatar CDN too: a loopback host over http, allowed as the tests' own only.
    AVATAR_HOSTS: new URL(appview.url).host,
    AVATAR_INSECURE_HOSTS: new URL(appview.url).host,
    ...env,
  })
  const longWindows = opts.longWindows === false ? undefined : createLongWindows(t.redis, t.schema)
  // On the test's connection (BullMQ leaves a connection it was given open).
  const backfillQueue = opts.backfill
    ? new Queue<BackfillJobData>(BACKFILL_QUEUE, {
        connection: t.redis,
        ...backfillQueueOptions(t.schema),
      })
    : undefined
  const app = await buildApp({
    config,
    redis: t.redis,
    schema: t.schema,
    index,
    longWindows,
    backfillQueue,
  })
  opts.routes?.(app)
  await app.ready()
  return {
    t,
    appview,
    index,
    writer,
    app,
    config,
    backfillQueue,
    async link(a, b, c) {
      const events: StreamEvent[] = []
      for (const [kind, n] of Object.entries(c) as [InteractionKind, number][]) {
        for (let i = 0; i < n; i++) {
          // Strictly decreasing times: rkeys (TIDs) must be unique per author, as on the network.
          const time = Math.min(Date.now() - 60_000, lastTime - 1)
          lastTime = time
          events.push({
            type: 'create',
            kind,
            author: a,
            subject: b,
            rkey: tidFromMs(time),
            time,
            chars: 0,
          })
        }
      }
      await writer.apply(events)
    },
    async close() {
      await app.close()
      await backfillQueue?.close()
      await appview.close()
      await t.cleanup()
    },
  }
}

/**
 * Another API process on the harness's Redis, config and index (single-flight, pub/sub and in-process copies
 * across processes). `deps` adds to or replaces them. The caller closes it.
 */
export function buildSecondApp(h: Harness, deps: Partial<AppDeps> = {}): Promise<FastifyInstance> {
  return buildApp({
    config: h.config,
    redis: h.t.redis,
    schema: h.t.schema,
    index: h.index,
    ...deps,
  })
}

/** Rows of a day blob: partner, kind, count. */
export type DayRows = [partner: string, kind: InteractionKind, count: number][]

/** Writes `owner`'s day blob of `side` with the long-term encoder, as a roll-up or a backfill writes one. */
export async function writeDayBlob(
  h: Harness,
  owner: string,
  side: LongTermSide,
  day: number,
  rows: DayRows,
): Promise<void> {
  const records = rows.map(([p, kind, count]) => ({
    kind: kindIndex(kind),
    partner: packDid(p),
    count,
  }))
  await h.t.redis.hset(h.t.schema.longTerm(owner, side), String(day), encodeDayBlob(0, records))
  await rememberDids(h.t.redis, h.t.schema, [owner, ...rows.map(([p]) => p)])
}
