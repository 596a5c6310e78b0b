import { BACKFILL_QUEUE, backfillQueueOptions, enqueueBackfill } from '@circles/backfill'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import { Queue } from 'bullmq'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { checkBackfill } from './doctor-backfill.js'

let tr: TestRedis
beforeEach(async () => {
  tr = await createTestRedis('doctor-backfill')
})
afterEach(() => tr.cleanup())

describe('the doctor’s backfill line', () => {
  it('says what was fetched and queued, and warns of refused repos with their reasons', async () => {
    expect(await checkBackfill(tr.redis, tr.schema)).toEqual({
      name: 'backfill',
      status: 'ok',
      message:
        '0 repos fetched (0.0 MB), 0 interactions folded; queue: 0 waiting, 0 running, 0 failed jobs',
    })
    await tr.redis.hset(tr.schema.backfillStats, { repos: 3, bytes: 3_145_728, folded: 120 })
    await tr.redis.hincrby(tr.schema.backfillStats, 'failed:bad_signature', 2)
    const queue = new Queue(BACKFILL_QUEUE, {
      connection: tr.redis,
      ...backfillQueueOptions(tr.schema),
    })
    try {
      await enqueueBackfill(queue, 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 'request')
    } finally {
      await queue.close()
    }
    const c = await checkBackfill(tr.redis, tr.schema)
    expect(c.status).toBe('warn')
    expect(c.message).toContain('3 repos fetched (3.0 MB), 120 interactions folded')
    expect(c.message).toContain('bad_signature 2')
    expect(c.message).toContain('queue: 1 waiting, 0 running, 0 failed jobs')
  })
})
