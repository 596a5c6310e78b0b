import {
  BACKFILL_PRIORITY,
  BACKFILL_QUEUE,
  type BackfillJobData,
  backfillJobId,
  backfillQueueOptions,
  enqueueBackfill,
} from '@circles/backfill'
import { changeOptOuts } from '@circles/interaction-index'
import { Queue, Worker } from 'bullmq'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, buildSecondApp, did, type Harness, startHarness } from './helpers.js'

// Backfills from the API's side: which requests enqueue an account's backfill (once, never for an opted-out
// or deleted account, not past BACKFILL_MAX_WAITING), what circle answers show of its state, and that a circle
// cached before the backfill ended is computed again once it has. Real Redis, a real BullMQ queue.

const auth = { authorization: `Bearer ${ADMIN_TOKEN}` }
const A = did(1)
const B = did(2)

async function seed(h: Harness) {
  h.appview.profiles.set(A, { did: A, handle: 'alice.test' })
  h.appview.profiles.set(B, { did: B, handle: 'bob.test' })
  for (let i = 1; i <= 5; i++) {
    const p = did(100 + i)
    await h.link(A, p, { like: 6 - i })
    h.appview.profiles.set(p, { did: p, handle: `p${i}.test` })
  }
}

async function jobCount(h: Harness): Promise<number> {
  return h.backfillQueue!.count()
}

/** Polls `check` until true; a failure is a broken mechanism, not a slow machine (5 s against ~1 s). */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 250; i++) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`timed out waiting for ${what}`)
}

describe('backfill on request', () => {
  let h: Harness
  afterEach(() => h?.close())

  async function start(env: Record<string, string> = {}) {
    h = await startHarness(env, { backfill: true })
    await seed(h)
  }

  it('enqueues an account’s first backfill once, as a request, and shows it queued', async () => {
    await start()
    const r1 = await h.app.inject(`/v1/circles/${A}`)
    expect(r1.statusCode).toBe(200)
    expect(r1.json().backfill).toEqual({ state: 'queued', progress: 0 })
    const job = await h.backfillQueue!.getJob(backfillJobId(A))
    expect(job?.data).toEqual({ did: A, reason: 'request' })
    expect(job?.opts.priority).toBe(BACKFILL_PRIORITY.request)
    expect(await h.t.redis.hget(h.t.schema.backfillAccount(A), 'state')).toBe('queued')
    // Again, and concurrently: nothing new (the state exists; no queue call is made for it).
    const again = await Promise.all(
      [1, 2, 3].map(() => h.app.inject(`/v1/circles/${A}?window=24h`)),
    )
    for (const r of again) expect(r.json().backfill.state).toBe('queued')
    expect(await jobCount(h)).toBe(1)
    // A drawing is a request too.
    expect((await h.app.inject(`/v1/circles/${B}.svg`)).statusCode).toBe(200)
    expect((await h.backfillQueue!.getJob(backfillJobId(B)))?.data.did).toBe(B)
    expect(await jobCount(h)).toBe(2)
  })

  it('enqueues nothing with BACKFILL_ON_REQUEST off, and shows none', async () => {
    await start({ BACKFILL_ON_REQUEST: 'false' })
    const r = await h.app.inject(`/v1/circles/${A}`)
    expect(r.json().backfill).toEqual({ state: 'none', progress: 0 })
    expect(await jobCount(h)).toBe(0)
    expect(await h.t.redis.exists(h.t.schema.backfillAccount(A))).toBe(0)
  })

  it('never enqueues an opted-out or deleted account', async () => {
    await start()
    await changeOptOuts(h.t.redis, h.t.schema, [{ did: A, reason: 'admin', on: true }])
    await h.t.redis.set(h.t.schema.accountPurged(B), String(Date.now()))
    expect((await h.app.inject(`/v1/circles/${A}`)).statusCode).toBe(403)
    expect((await h.app.inject(`/v1/circles/${A}.png`)).statusCode).toBe(403)
    expect((await h.app.inject(`/v1/circles/${B}`)).statusCode).toBe(404)
    // Unknown to the AppView: a 404 answer, no backfill either.
    const C = did(3)
    expect((await h.app.inject(`/v1/circles/${C}`)).statusCode).toBe(404)
    expect(await jobCount(h)).toBe(0)
    for (const d of [A, B, C]) {
      expect(await h.t.redis.exists(h.t.schema.backfillAccount(d))).toBe(0)
    }
  })

  it('enqueues no request past BACKFILL_MAX_WAITING, and shows none', async () => {
    await start({ BACKFILL_MAX_WAITING: '1' })
    await enqueueBackfill(h.backfillQueue!, did(50), 'request')
    const r = await h.app.inject(`/v1/circles/${A}`)
    expect(r.statusCode).toBe(200)
    expect(r.json().backfill).toEqual({ state: 'none', progress: 0 })
    expect(await h.backfillQueue!.getJob(backfillJobId(A))).toBeUndefined()
    expect(await jobCount(h)).toBe(1)
  })

  it('answers without waiting for a queue whose Redis is away', async () => {
    await start()
    // Nothing listens there: BullMQ would wait for the connection's first `ready` however long it takes.
    const conn = new Redis('redis://127.0.0.1:1', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      retryStrategy: () => 100,
    })
    conn.on('error', () => {})
    const backfillQueue = new Queue<BackfillJobData>(BACKFILL_QUEUE, {
      connection: conn,
      ...backfillQueueOptions(h.t.schema),
    })
    backfillQueue.on('error', () => {})
    const app = await buildSecondApp(h, { backfillQueue })
    try {
      const t0 = Date.now()
      const r = await app.inject(`/v1/circles/${A}`)
      expect(r.statusCode).toBe(200)
      expect(r.json().backfill).toEqual({ state: 'none', progress: 0 })
      expect(Date.now() - t0).toBeLessThan(3000)
    } finally {
      await app.close()
      conn.disconnect()
    }
  })

  it('shows progress and failures, and tags the ETag with the state', async () => {
    await start({ LOCAL_CACHE_MS: '0' })
    const key = h.t.schema.backfillAccount(A)
    await h.t.redis.hset(key, { state: 'running', done: 3, total: 8, at: Date.now() })
    const r1 = await h.app.inject(`/v1/circles/${A}`)
    expect(r1.json().backfill).toEqual({ state: 'running', progress: 0.375 })
    const etag = r1.headers.etag as string
    expect(etag).toMatch(/^"[A-Za-z0-9_-]{27}\.r375"$/)
    const same = await h.app.inject({ url: `/v1/circles/${A}`, headers: { 'if-none-match': etag } })
    expect(same.statusCode).toBe(304)
    await h.t.redis.hset(key, { state: 'failed', reason: 'too-large' })
    const r2 = await h.app.inject({ url: `/v1/circles/${A}`, headers: { 'if-none-match': etag } })
    expect(r2.statusCode).toBe(200)
    expect(r2.json().backfill).toEqual({ state: 'failed', progress: 0.375, reason: 'too-large' })
    // Nothing enqueued: the account had a state.
    expect(await jobCount(h)).toBe(0)
  })

  for (const localMs of ['0', '1000']) {
    it(`computes a circle cached while queued again once done (LOCAL_CACHE_MS=${localMs})`, async () => {
      await start({ LOCAL_CACHE_MS: localMs })
      const first = await h.app.inject(`/v1/circles/${A}`)
      expect(first.json().backfill.state).toBe('queued')
      const cached = await h.app.inject(`/v1/circles/${A}`)
      expect(cached.headers['x-cache']).toBe('hit')
      expect(h.index.calls).toBe(1)
      // The worker ends; a partner it found shows only in a circle computed from now on.
      const late = did(120)
      h.appview.profiles.set(late, { did: late, handle: 'late.test' })
      await h.link(A, late, { reply: 9 })
      await h.t.redis.hset(h.t.schema.backfillAccount(A), {
        state: 'done',
        done: 4,
        total: 4,
        at: Date.now(),
      })
      let done: { backfill: unknown; rings: { members: { did: string }[] }[] } | undefined
      await until('the done state', async () => {
        const r = await h.app.inject(`/v1/circles/${A}`)
        const body = r.json()
        // Never the old circle with the new state.
        if (body.backfill.state === 'done') {
          expect(r.headers['x-cache']).toBe('miss')
          done = body
        }
        return done !== undefined
      })
      expect(done?.backfill).toEqual({ state: 'done', progress: 1 })
      expect(done?.rings[0]?.members[0]?.did).toBe(late)
      expect(h.index.calls).toBe(2)
      // And then it is cached again.
      const after = await h.app.inject(`/v1/circles/${A}`)
      expect(after.headers['x-cache']).toBe('hit')
      expect(after.json().backfill.state).toBe('done')
      expect(h.index.calls).toBe(2)
    })
  }
})

/** Takes the next backfill as a worker would and fails it for good, state and all. */
async function failJob(h: Harness, reason: string): Promise<void> {
  const connection = new Redis(h.t.url, { maxRetriesPerRequest: null })
  const worker = new Worker(BACKFILL_QUEUE, null, {
    connection,
    ...backfillQueueOptions(h.t.schema),
    autorun: false,
  })
  try {
    const job = await worker.getNextJob('test-token')
    if (!job) throw new Error('no job to fail')
    job.discard()
    await job.moveToFailed(new Error(reason), 'test-token')
    await h.t.redis.hset(h.t.schema.backfillAccount(job.data.did), { state: 'failed', reason })
  } finally {
    await worker.close()
    connection.disconnect()
  }
}

describe('backfill admin', () => {
  let h: Harness
  afterEach(() => h?.close())

  it('re-queues an account by the admin route (token needed), whatever its state', async () => {
    h = await startHarness({ BACKFILL_ON_REQUEST: 'false' }, { backfill: true })
    await seed(h)
    const url = '/admin/backfill/alice.test'
    expect((await h.app.inject({ method: 'POST', url })).statusCode).toBe(401)
    const wrong = { authorization: 'Bearer wrong-token-0123456789' }
    expect((await h.app.inject({ method: 'POST', url, headers: wrong })).statusCode).toBe(403)
    expect(await jobCount(h)).toBe(0)

    const key = h.t.schema.backfillAccount(A)
    await h.t.redis.hset(key, { state: 'done', done: 2, total: 2, at: Date.now() - 60_000 })
    const r = await h.app.inject({ method: 'POST', url, headers: auth })
    expect(r.statusCode).toBe(200)
    expect(r.json()).toEqual({ did: A, queued: true, backfill: { state: 'queued', progress: 0 } })
    const job = await h.backfillQueue!.getJob(backfillJobId(A))
    expect(job?.data).toEqual({ did: A, reason: 'request' })
    expect(job?.opts.priority).toBe(BACKFILL_PRIORITY.request)
    expect(await h.t.redis.hgetall(key)).toEqual({ state: 'queued', at: expect.any(String) })
    // Already queued: nothing changes.
    const again = await h.app.inject({ method: 'POST', url, headers: auth })
    expect(again.json()).toMatchObject({ queued: false, backfill: { state: 'queued' } })
    expect(await jobCount(h)).toBe(1)
    // A failed job is kept under its id (an add with it would be ignored): a re-run replaces it.
    await failJob(h, 'timeout')
    expect(await h.backfillQueue!.getJobState(backfillJobId(A))).toBe('failed')
    const rerun = await h.app.inject({ method: 'POST', url, headers: auth })
    expect(rerun.json()).toMatchObject({ queued: true, backfill: { state: 'queued' } })
    expect(await h.backfillQueue!.getJobState(backfillJobId(A))).toBe('prioritized')

    // Opted out: refused, nothing enqueued.
    await changeOptOuts(h.t.redis, h.t.schema, [{ did: B, reason: 'admin', on: true }])
    const out = await h.app.inject({ method: 'POST', url: `/admin/backfill/${B}`, headers: auth })
    expect(out.statusCode).toBe(409)
    expect(await h.backfillQueue!.getJob(backfillJobId(B))).toBeUndefined()
  })

  it('queues a newly tracked account at the tracked priority, unless it has a state', async () => {
    h = await startHarness({ BACKFILL_ON_REQUEST: 'false' }, { backfill: true })
    await seed(h)
    const put = await h.app.inject({ method: 'PUT', url: `/admin/tracked/${A}`, headers: auth })
    expect(put.json()).toEqual({
      did: A,
      member: true,
      changed: true,
      backfill: { state: 'queued', progress: 0 },
    })
    const job = await h.backfillQueue!.getJob(backfillJobId(A))
    expect(job?.data).toEqual({ did: A, reason: 'tracked' })
    expect(job?.opts.priority).toBe(5)
    await h.t.redis.hset(h.t.schema.backfillAccount(B), { state: 'done', at: Date.now() })
    const done = await h.app.inject({ method: 'PUT', url: `/admin/tracked/${B}`, headers: auth })
    expect(done.json().backfill).toEqual({ state: 'done', progress: 1 })
    expect(await h.backfillQueue!.getJob(backfillJobId(B))).toBeUndefined()
    const C = did(3)
    await changeOptOuts(h.t.redis, h.t.schema, [{ did: C, reason: 'admin', on: true }])
    await h.app.inject({ method: 'PUT', url: `/admin/tracked/${C}`, headers: auth })
    expect(await h.backfillQueue!.getJob(backfillJobId(C))).toBeUndefined()
    expect(await h.t.redis.exists(h.t.schema.backfillAccount(C))).toBe(0)
  })
})
