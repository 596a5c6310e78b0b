import { HOUR_MS, type StreamEvent } from '@circles/core'
import { createSchema } from '@circles/redis-schema'
import { connectRedis, primaries } from '@circles/redis-wire'
import {
  createTestRedis,
  dumpByPrefix,
  haveRedisCli,
  type PrivateRedisCluster,
  startRedisCluster,
  type TestRedis,
} from '@circles/testkit'
import { createWorkloadRandom, tidFromMicros } from '@circles/testkit/workload'
import type { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createIndexWriter } from '../src/index.js'

// The index writer's own RESP path on a Redis Cluster: its frames cut by slot and sent to each primary,
// the function library loaded on every primary. The proof: the same events applied on one Redis and on a
// 3-primary cluster leave the same keys with the same bytes (the writer throws on any error reply, so a
// CROSSSLOT or a MOVED it failed to follow fails the test too).

const ACCOUNTS = 400
const CREATES = 12_000

/** Interactions over the last 47 hours (anchored on now), with deletes later in the stream. */
function workload(nowMs: number): StreamEvent[] {
  const { randomDid, zipfSampler, pickKind, rand } = createWorkloadRandom(7)
  const dids = Array.from({ length: ACCOUNTS }, randomDid)
  const zipf = zipfSampler(ACCOUNTS, 1)
  const start = nowMs - 47 * HOUR_MS
  const events: StreamEvent[] = []
  for (let i = 0; i < CREATES; i++) {
    const author = dids[zipf()] as string
    const subject = dids[Math.floor(rand() * ACCOUNTS)] as string
    if (subject === author) continue
    const micros = Math.floor((start + (i / CREATES) * 47 * HOUR_MS) * 1000) + i
    const time = Math.floor(micros / 1000)
    const kind = pickKind()
    const rkey = tidFromMicros(micros, i % 1024)
    events.push({ type: 'create', kind, author, subject, rkey, time, chars: 0 })
    if (rand() < 0.05) {
      const record = kind === 'like' ? 'like' : kind === 'repost' ? 'repost' : 'post'
      events.push({ type: 'delete', record, author, rkey, time: time + 1000 })
    }
  }
  return events
}

async function applyAll(redis: Redis, prefix: string, events: StreamEvent[]): Promise<void> {
  const writer = createIndexWriter(redis, createSchema(prefix))
  try {
    for (let i = 0; i < events.length; i += 500) await writer.apply(events.slice(i, i + 500))
  } finally {
    await writer.close()
  }
}

describe.runIf(haveRedisCli('the index writer cluster test'))('index writer on a cluster', () => {
  let cluster: PrivateRedisCluster
  let redis: Redis
  let single: TestRedis
  beforeAll(async () => {
    cluster = await startRedisCluster()
    redis = connectRedis(cluster.target)
    single = await createTestRedis('writer-cluster')
  })
  afterAll(async () => {
    await single?.cleanup()
    redis?.disconnect()
    await cluster?.stop()
  })

  it('writes the same keys and bytes on 3 primaries as on one Redis', async () => {
    const events = workload(Date.now())
    const prefix = single.prefix
    await applyAll(single.redis, prefix, events)
    await applyAll(redis, prefix, events)
    const one = await dumpByPrefix([single.redis], prefix)
    const spread = await dumpByPrefix(primaries(redis), prefix)
    expect(one.size).toBeGreaterThan(ACCOUNTS)
    expect([...spread.keys()]).toEqual([...one.keys()])
    expect(spread).toEqual(one)
    // the keys are spread: every primary holds part of the index
    const sizes = await Promise.all(primaries(redis).map((n) => n.dbsize()))
    expect(sizes.filter((s) => s > 0)).toHaveLength(3)
  })
})
