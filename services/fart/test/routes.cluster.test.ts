import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DAY_MS, HOUR_MS, type StreamEvent, tidFromMs } from '@circles/core'
import { createIndexWriter, rememberDids } from '@circles/interaction-index'
import { rootLogger } from '@circles/logging'
import { encodeDayBlob, kindIndex, packDid } from '@circles/long-term'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import { connectRedis, type RedisTarget, scanPrimaries } from '@circles/redis-wire'
import {
  CROSS_SLOT_ERROR,
  captureLogLines,
  haveRedisCli,
  prng,
  startRedisCluster,
  startRedisServer,
} from '@circles/testkit'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { createFartService } from '../src/service.js'
import { type FakeAppView, startFakeAppView } from './fake-appview.js'
import { ADMIN_TOKEN, did } from './helpers.js'

// The API on a Redis Cluster against one Redis, same data: the real service (createFartService, as
// `main.ts` runs it, REDIS_CLUSTER_NODES or REDIS_URL) over HTTP, every route: circles as JSON, SVG and
// PNG (live and long windows), interactions, history, stats, suggestions, avatars, health, the admin lists
// (read and changed), an admin backfill and the queue board. Same status, same body (bar times), and no
// cross-slot error thrown or logged.

const PREFIX = 'api-cluster:'
const NOW = Date.now()
const TODAY = Math.floor(NOW / DAY_MS)
const KINDS = ['like', 'repost', 'reply', 'quote'] as const
const dids = Array.from({ length: 30 }, (_, i) => did(500 + i))
const [A, B, C] = dids as [string, string, string]
const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }

/** Interactions of the last hours (A and B busy), as the indexer writes them. */
function events(): StreamEvent[] {
  const r = prng(11)
  const pick = () => dids[Math.floor(dids.length * r() ** 2)] as string
  const out: StreamEvent[] = []
  for (let i = 0; i < 600; i++) {
    const author = pick()
    const subject = pick()
    if (author === subject) continue
    const time = NOW - 60_000 - Math.floor((i * 5 * HOUR_MS) / 600)
    const kind = KINDS[Math.floor(r() * 4)] as (typeof KINDS)[number]
    out.push({
      type: 'create',
      kind,
      author,
      subject,
      rkey: tidFromMs(time, i % 1024),
      time,
      chars: 0,
    })
  }
  return out
}

/** The same data on either Redis: live interactions, long-term day blobs, profiles, global stats. */
async function seed(redis: Redis, schema: RedisSchema): Promise<void> {
  const writer = createIndexWriter(redis, schema)
  await writer.apply(events())
  await writer.close()
  for (const [i, owner] of dids.slice(0, 10).entries()) {
    for (const side of ['s', 'r', 'bs'] as const) {
      const records = dids.slice(10, 20).map((p, j) => ({
        kind: kindIndex(KINDS[(i + j) % 4] as (typeof KINDS)[number]),
        partner: packDid(p),
        count: 1 + ((i * j) % 5),
      }))
      for (const ago of [2, 10, 40]) {
        await redis.hset(
          schema.longTerm(owner, side),
          String(TODAY - ago),
          encodeDayBlob(0, records),
        )
      }
    }
  }
  await rememberDids(redis, schema, dids)
  await redis.set(schema.rollupCursor, String(Math.floor(NOW / HOUR_MS) - 3))
  const ranked = dids.slice(0, 5).map((d, i) => ({ did: d, count: 50 - i }))
  const hours = [1, 2].map((ago) => ({
    hour: Math.floor(NOW / HOUR_MS) - ago,
    like: 3,
    repost: 1,
    reply: 1,
    quote: 0,
  }))
  await redis.set(
    schema.globalStats,
    JSON.stringify({
      hours,
      top: { authors: { like: ranked, all: ranked }, subjects: { reply: ranked } },
    }),
  )
}

/** Every route, in one order; each answer as status, type and body (JSON without times, text, or bytes). */
async function askEverything(url: string): Promise<unknown[]> {
  const ask = async (path: string, init: RequestInit = {}) => {
    const res = await fetch(`${url}${path}`, init)
    const type = res.headers.get('content-type') ?? ''
    const bytes = Buffer.from(await res.arrayBuffer())
    const body = type.includes('json')
      ? withoutTimes(JSON.parse(bytes.toString()))
      : type.startsWith('text') || type.includes('svg')
        ? bytes.toString()
        : bytes.toString('base64')
    return { path, method: init.method ?? 'GET', status: res.status, type, body }
  }
  const out: unknown[] = []
  const circles = (d: string) => [
    `/v1/circles/${d}`,
    `/v1/circles/${d}?window=7d`,
    `/v1/circles/${d}?window=90d&direction=received`,
    `/v1/circles/${d}.svg`,
    `/v1/circles/${d}.png`,
  ]
  // Twice: the first round fetches profiles after answering, the second shows them.
  for (let round = 0; round < 2; round++) {
    for (const path of [
      '/healthz',
      '/readyz',
      '/',
      ...circles(A),
      ...circles(B),
      `/v1/interactions/${A}?with=${encodeURIComponent(B)}`,
      `/v1/interactions/${A}`,
      `/v1/accounts/${A}/history?days=30`,
      '/v1/stats',
      '/v1/stats/live',
      '/v1/actors/suggest?q=user',
      `/v1/avatars/${A}`,
    ]) {
      out.push(await ask(path))
    }
    await new Promise((r) => setTimeout(r, 300))
  }
  out.push(await ask(`/admin/opt-outs/${C}`, { method: 'PUT', headers: auth }))
  out.push(await ask(`/v1/circles/${C}`))
  out.push(await ask(`/admin/tracked/${B}`, { method: 'PUT', headers: auth }))
  out.push(await ask('/admin/opt-outs', { headers: auth }))
  out.push(await ask('/admin/tracked', { headers: auth }))
  out.push(await ask(`/admin/backfill/${A}`, { method: 'POST', headers: auth }))
  out.push(await ask(`/admin/opt-outs/${C}`, { method: 'DELETE', headers: auth }))
  out.push(await ask('/admin/queues/api/queues', { headers: auth }))
  // Counters and timings of this process: only that it answers.
  out.push({ metrics: (await fetch(`${url}/metrics`)).status })
  return out
}

/**
 * Pub/sub between API processes: `url` serves F's circle from its in-process copy until `otherUrl`'s
 * opt-out reaches it as a message (the opt-out channel), after which it answers 403. The statuses seen.
 */
async function pubSub(url: string, otherUrl: string): Promise<unknown> {
  const F = dids[5] as string
  const get = async () => (await fetch(`${url}/v1/circles/${F}`)).status
  const before = [await get(), await get()]
  const put = await fetch(`${otherUrl}/admin/opt-outs/${F}`, { method: 'PUT', headers: auth })
  let after = await get()
  for (let i = 0; i < 50 && after !== 403; i++) {
    await new Promise((r) => setTimeout(r, 50))
    after = await get()
  }
  return { pubSub: { before, put: put.status, after } }
}

/** A copy without what differs from run to run: times and durations. */
function withoutTimes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutTimes)
  if (value === null || typeof value !== 'object') return value
  return Object.fromEntries(
    Object.entries(value)
      .filter(([k]) => !/(At|Ms|ms|time|Time|timestamp|processedOn|finishedOn|delay)$/.test(k))
      .map(([k, v]) => [k, withoutTimes(v)]),
  )
}

/** The routes' answers from an API on `target`, and the keys it left (without the prefix). */
async function scenario(
  target: RedisTarget,
  env: Record<string, string>,
  appview: FakeAppView,
): Promise<{ answers: unknown[]; keys: string[] }> {
  const redis = connectRedis(target)
  const schema = createSchema(PREFIX)
  // The admin lists' file, with lists this fresh Redis lacks: the service puts them back at its start.
  const dir = mkdtempSync(join(tmpdir(), 'api-cluster-'))
  const listsFile = join(dir, 'lists.json')
  const [D, E] = dids.slice(20) as [string, string]
  writeFileSync(listsFile, JSON.stringify({ optOuts: [D], admin: [D], tracked: [E] }))
  const config = (lists: string) =>
    toConfig({
      ...env,
      REDIS_PREFIX: PREFIX,
      HOST: '127.0.0.1',
      PORT: '0',
      APPVIEW_URL: appview.url,
      ADMIN_TOKEN,
      API_LISTS_FILE: lists,
      // In-process copies live long: only a pub/sub message from the other process drops them.
      LOCAL_CACHE_MS: '30000',
      RATE_LIMIT_MAX: '0',
      AVATAR_HOSTS: new URL(appview.url).host,
      AVATAR_INSECURE_HOSTS: new URL(appview.url).host,
    })
  const service = createFartService(config(listsFile))
  // A second API process on the same Redis (its lists file its own copy).
  const otherFile = join(dir, 'other.json')
  writeFileSync(otherFile, readFileSync(listsFile))
  const other = createFartService(config(otherFile))
  try {
    await seed(redis, schema)
    const { url } = await service.start()
    const answers = await askEverything(url)
    answers.push(await pubSub(url, (await other.start()).url))
    const keys: string[] = []
    for await (const page of scanPrimaries(redis, `${PREFIX}*`)) {
      for (const k of page.keys) keys.push(k.slice(PREFIX.length))
    }
    // A drawing's cache key names a hash of the circle's body, whose times differ from run to run.
    const named = keys.map((k) => k.replace(/^(circle-img:\{[^}]+\}:)[0-9a-f]+$/, '$1*'))
    return { answers, keys: named.sort() }
  } finally {
    await service.close()
    await other.close()
    redis.disconnect()
    rmSync(dir, { recursive: true, force: true })
  }
}

describe.runIf(haveRedisCli('the API cluster test'))('the API on a Redis Cluster', () => {
  const stops: (() => Promise<void>)[] = []
  let appview: FakeAppView
  let single: { target: RedisTarget; env: Record<string, string> }
  let cluster: { target: RedisTarget; env: Record<string, string> }
  beforeAll(async () => {
    appview = await startFakeAppView()
    stops.push(() => appview.close())
    for (const [i, d] of dids.entries()) {
      appview.profiles.set(d, {
        did: d,
        handle: `user${i}.test`,
        displayName: `User ${i}`,
        avatar: i < 5,
      })
    }
    const one = await startRedisServer()
    stops.push(() => one.stop())
    const many = await startRedisCluster({ replicas: 0 })
    stops.push(() => many.stop())
    single = { target: { redisUrl: one.url, redisClusterNodes: null }, env: { REDIS_URL: one.url } }
    cluster = { target: many.target, env: { REDIS_CLUSTER_NODES: many.seeds } }
  }, 60_000)
  afterAll(async () => {
    for (const stop of stops) await stop()
  })

  it('answers every route as one Redis does, without a cross-slot error', async () => {
    const logs = captureLogLines(rootLogger)
    let one: Awaited<ReturnType<typeof scenario>>
    let many: Awaited<ReturnType<typeof scenario>>
    try {
      one = await scenario(single.target, single.env, appview)
      many = await scenario(cluster.target, cluster.env, appview)
    } finally {
      logs.stop()
    }
    expect(logs.lines.filter((l) => CROSS_SLOT_ERROR.test(l))).toEqual([])
    const failed = (answers: unknown[]) =>
      (answers as { path: string; status: number }[]).filter((a) => a.status >= 500)
    expect(failed(one.answers)).toEqual([])
    expect(failed(many.answers)).toEqual([])
    // The data is there: A's circle names partners.
    expect(JSON.stringify(one.answers[3])).toContain(B)
    // The lists put back from the file: the opted-out account is listed.
    // An opt-out made on one process reached the other's in-process copies by pub/sub.
    expect(one.answers.at(-1)).toEqual({ pubSub: { before: [200, 200], put: 200, after: 403 } })
    const lists = one.answers.find((x) => (x as { path: string }).path === '/admin/opt-outs')
    expect(JSON.stringify(lists)).toContain(dids[20])
    for (const [i, a] of one.answers.entries()) expect(many.answers[i]).toEqual(a)
    expect(many.keys).toEqual(one.keys)
  }, 180_000)
})
