import type { StreamEvent } from '@circles/core'
import {
  changeOptOuts,
  createIndexReader,
  FOREVER_MS,
  type IndexReader,
} from '@circles/interaction-index'
import { groupInfo } from '@circles/stream-info'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toConfig } from '../src/config.js'
import { createIndexerService, type IndexerService } from '../src/service.js'
import { create, entriesOf, plc, publishEntries, waitUntil } from './helpers.js'

// Self-service opt-out through the stream: a block of the service's account or the profile self-label
// opts an account out, undoing it opts back in, an admin's opt-out holds whatever the account does. An
// opted-out account's interactions are purged (both directions) and no new ones are kept until it returns.

const [A, B, C] = [plc('opt-a'), plc('opt-b'), plc('opt-c')]
const R1 = '3lbbbbbbbbb22'
const R2 = '3lbbbbbbbbc22'
const WEIGHTS = { like: 1, repost: 1, reply: 1, quote: 1 }

let t: TestRedis
let indexer: IndexerService
let reader: IndexReader
let at = Date.now() - 30 * 60_000

/** Publishes events (times moving forward from half an hour ago, unique rkeys) and waits until applied. */
async function publish(...events: StreamEvent[]): Promise<void> {
  await publishEntries(t.redis, t.schema, entriesOf(events, 10))
  await waitUntil('the stream applied', async () => {
    const g = await groupInfo(t.redis, t.schema.eventStream, t.schema.indexerGroup)
    return g?.lag === 0 && g.pending === 0
  })
}

function like(a: string, b: string) {
  at += 1000
  return create(a, b, 'like', at)
}
const block = (author: string, action: 'create' | 'delete', rkey: string): StreamEvent => ({
  type: 'block',
  action,
  author,
  rkey,
  time: Date.now(),
})
const label = (did: string, on: boolean): StreamEvent => ({
  type: 'label',
  did,
  on,
  time: Date.now(),
})

async function partners(did: string): Promise<Record<string, number>> {
  const page = await reader.topPartners({
    did,
    direction: 'both',
    windowHours: 48,
    weights: WEIGHTS,
    limit: 100,
  })
  return Object.fromEntries(page.map((p) => [p.did, p.score]))
}

const optedOut = async (did: string) => (await t.redis.sismember(t.schema.optOuts, did)) === 1
/** Waits until the opt-out is applied: in the set, the index purged both ways and closed. */
async function untilClosed(did: string): Promise<number> {
  const t0 = Date.now()
  await waitUntil(
    `${did} closed`,
    async () =>
      (await t.redis.sismember(t.schema.optOutsApplied, did)) === 1 &&
      Object.keys(await partners(did)).length === 0,
    5000,
  )
  return Date.now() - t0
}
async function untilOpen(did: string): Promise<void> {
  await waitUntil(
    `${did} reopened`,
    async () => (await t.redis.sismember(t.schema.optOutsApplied, did)) === 0,
    5000,
  )
  // What happened before the return stays refused: the next interactions are after it.
  at = Math.max(at, Date.now())
}

beforeAll(async () => {
  t = await createTestRedis('optouts')
  reader = createIndexReader(t.redis, t.schema)
  indexer = createIndexerService(
    toConfig({
      REDIS_URL: process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
      REDIS_PREFIX: t.prefix,
      INDEXER_CONSUMER: 'optouts',
      INDEXER_BLOCK_MS: '50',
      INDEXER_OPT_OUT_SYNC_MS: '50',
      INDEXER_APPLY_REDIS_SETTINGS: 'false',
      INDEXER_METRICS_MS: '100000',
    }),
  )
  await indexer.start()
  await publish(like(A, B), like(A, B), like(B, C), like(C, A))
})

afterAll(async () => {
  await indexer?.close()
  await t?.cleanup()
})

describe('opt-out from the stream', () => {
  it('a block of the service account purges the account both ways within seconds; unblocking keeps only what comes after', async () => {
    expect(await partners(A)).toMatchObject({ [B]: 2, [C]: 1 })
    await publish(block(B, 'create', R1))
    const ms = await untilClosed(B)
    console.info(`opt-out by block applied in ${ms} ms after the batch`)
    expect(await optedOut(B)).toBe(true)
    expect(await partners(A)).toEqual({ [C]: 1 })
    expect(await partners(C)).toEqual({ [A]: 1 })
    expect(await t.redis.get(t.schema.accountPurged(B))).toBe(String(FOREVER_MS / 1000))
    expect(await t.redis.zscore(t.schema.forgetQueue, B)).not.toBeNull()
    // Closed: nothing new is kept, in either direction.
    await publish(like(A, B), like(B, C))
    expect(await partners(B)).toEqual({})
    expect(await partners(A)).toEqual({ [C]: 1 })
    // Deleting another block changes nothing; deleting this one opts back in.
    await publish(block(B, 'delete', R2))
    expect(await optedOut(B)).toBe(true)
    await publish(block(B, 'delete', R1))
    expect(await optedOut(B)).toBe(false)
    await untilOpen(B)
    // Served again, not read as deleted.
    expect(await t.redis.exists(t.schema.accountPurged(B))).toBe(0)
    await publish(like(A, B))
    expect(await partners(B)).toEqual({ [A]: 1 })
  })

  it('the profile self-label opts out while it is there', async () => {
    await publish(label(C, true))
    await untilClosed(C)
    expect(await partners(A)).toEqual({ [B]: 1 })
    await publish(label(C, false))
    await untilOpen(C)
    expect(await optedOut(C)).toBe(false)
    await publish(like(C, A))
    expect(await partners(C)).toEqual({ [A]: 1 })
  })

  it('an admin opt-out holds whatever the account does, and is undone only by an admin', async () => {
    await changeOptOuts(t.redis, t.schema, [{ did: A, reason: 'admin', on: true }])
    await untilClosed(A)
    await publish(label(A, true), label(A, false), block(A, 'create', R1), block(A, 'delete', R1))
    expect(await optedOut(A)).toBe(true)
    const [back] = await changeOptOuts(t.redis, t.schema, [{ did: A, reason: 'admin', on: false }])
    expect(back).toEqual({ did: A, optedOut: false, changed: true })
    await untilOpen(A)
  })

  it('an opt-out from before reasons were kept is an admin one: no event undoes it', async () => {
    const old = plc('opt-legacy')
    await t.redis.sadd(t.schema.optOuts, old)
    await publish(label(old, false), block(old, 'delete', R1))
    expect(await optedOut(old)).toBe(true)
    expect(await t.redis.sismember(t.schema.optOutsAdmin, old)).toBe(1)
  })

  it('a deleted account that is reactivated starts clean and is served again; an opted-out one stays out', async () => {
    const gone = plc('opt-reactivated')
    await publish(like(gone, B), like(B, gone))
    // (after the likes: the test's clock runs a little ahead of the real one)
    const account = (active: boolean): StreamEvent => {
      at += 1000
      return { type: 'account', did: gone, active, status: active ? null : 'deleted', time: at }
    }
    await publish(account(false))
    expect(await t.redis.exists(t.schema.accountPurged(gone))).toBe(1)
    expect(await partners(gone)).toEqual({})
    await publish(account(true))
    expect(await t.redis.exists(t.schema.accountPurged(gone))).toBe(0)
    at = Math.max(at, Date.now())
    await publish(like(gone, B))
    expect(await partners(gone)).toEqual({ [B]: 1 })
    // An opted-out account's mark is not a deletion's: reactivating does not open its index.
    await publish(label(gone, true))
    await untilClosed(gone)
    await publish(account(true))
    expect(await t.redis.get(t.schema.accountPurged(gone))).toBe(String(FOREVER_MS / 1000))
    await publish(label(gone, false))
    await untilOpen(gone)
  })

  it('bad input changes nothing: counted and skipped, never fatal', async () => {
    const before = indexer.counters()
    await t.redis.xadd(
      t.schema.eventStream,
      '*',
      'e',
      ['l\tnot-a-did\t1\t5', 'b\tc\tnobody\tx\t5', 'b\tz\tbad', 'l\tdid:plc:x\tmaybe\t5'].join(
        '\n',
      ),
    )
    await publish(like(B, C))
    const after = indexer.counters()
    expect(after.invalid - before.invalid).toBe(2)
    expect(after.badLines - before.badLines).toBe(2)
    expect(after.optOutsMoved).toBe(before.optOutsMoved)
    expect(await t.redis.smembers(t.schema.optOuts)).toEqual([plc('opt-legacy')])
  })
})
