import {
  type BackfillJobData,
  type BackfillReason,
  backfillJobId,
  enqueueBackfill,
  markQueued,
} from '@circles/backfill'
import { isValidDid } from '@circles/core'
import { hiddenAccounts } from '@circles/interaction-index'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Queue } from 'bullmq'
import type { Redis } from 'ioredis'
import { type BackfillView, backfillView } from './backfill-view.js'

// The API's side of backfills: it enqueues an account's first one (on its first circle request, when it is
// tracked, or by an admin) and shows the state the scheduler's worker keeps. Requests stay cheap: the state
// comes with the circle's own reads (circles.ts), or for an in-process copy from a copy of the state kept here
// for LOCAL_CACHE_MS, refreshed as the copies are confirmed (circles.ts); the queue is asked only while an
// account has no state yet.

export interface BackfillTrackerDeps {
  redis: Redis
  schema: RedisSchema
  /** Without it nothing is enqueued (states are still shown). */
  queue?: Queue<BackfillJobData>
  /** Enqueue an account's backfill on its first circle request (BACKFILL_ON_REQUEST). */
  onRequest: boolean
  /** No request enqueues while this many backfills wait (BACKFILL_MAX_WAITING). */
  maxWaiting: number
  /** Life of the in-process copy of a state (LOCAL_CACHE_MS); 0 keeps none. */
  ttlMs: number
  log: Logger
  now: () => number
}

const MAX_STATES = 10_000
/** How long a count of waiting backfills is believed. */
const WAITING_TTL_MS = 1000
/**
 * How long a request waits for its enqueue. BullMQ waits for its connection's first `ready` before any
 * command, however long Redis is away then: the circle is answered meanwhile (state `none`), the enqueue
 * goes on by itself.
 */
const ENQUEUE_WAIT_MS = 1000

/** What an admin re-queue did: `queued` false when a backfill of the account was already queued or running. */
export interface Requeued {
  queued: boolean
  view: BackfillView
}

export function createBackfillTracker(deps: BackfillTrackerDeps) {
  const { redis, schema, queue, log, now } = deps
  const states = new Map<string, { view: BackfillView; until: number }>()
  const reads = new Map<string, Promise<BackfillView>>()
  const enqueues = new Map<string, Promise<BackfillView>>()
  let waiting = { count: 0, until: 0 }
  let lastWarn = 0

  function remember(did: string, view: BackfillView): void {
    if (deps.ttlMs <= 0) return
    states.delete(did)
    states.set(did, { view, until: now() + deps.ttlMs })
    // Oldest first (Map order is insertion order, and a refresh re-inserts).
    if (states.size > MAX_STATES) states.delete(states.keys().next().value as string)
  }

  async function read(did: string): Promise<BackfillView> {
    const view = backfillView(await redis.hgetall(schema.backfillAccount(did)))
    remember(did, view)
    return view
  }

  /** Waiting, prioritized and delayed (retrying) backfills, counted at most once a second. */
  async function waitingCount(q: Queue<BackfillJobData>): Promise<number> {
    if (now() < waiting.until) return waiting.count
    const count = await q.getJobCountByTypes('waiting', 'prioritized', 'delayed')
    waiting = { count, until: now() + WAITING_TTL_MS }
    return count
  }

  /** Enqueue first, then the state: a job id dedupes, but a state without a job would never move. */
  async function enqueue(
    q: Queue<BackfillJobData>,
    did: string,
    reason: BackfillReason,
  ): Promise<BackfillView> {
    await enqueueBackfill(q, did, reason)
    waiting.count++
    // False when the worker was faster and wrote its own state: show that one.
    if (!(await markQueued(redis, schema, did, now()))) return read(did)
    const view: BackfillView = { state: { state: 'queued', progress: 0 }, mark: 'p' }
    remember(did, view)
    return view
  }

  async function firstRequest(
    q: Queue<BackfillJobData>,
    did: string,
    view: BackfillView,
  ): Promise<BackfillView> {
    try {
      // Anonymous requests must not queue the whole network: past the limit they show `none` and try again
      // on a later request.
      if ((await waitingCount(q)) >= deps.maxWaiting) return view
      return await enqueue(q, did, 'request')
    } catch (err) {
      // The circle is answered all the same; a later request tries again.
      if (now() - lastWarn >= 10_000) {
        lastWarn = now()
        log.warn({ err, did }, 'enqueueing a backfill failed')
      }
      return view
    }
  }

  return {
    /** Whether backfills can be enqueued here at all (admin routes). */
    get hasQueue(): boolean {
      return queue !== undefined
    },
    /** Opted out, deleted, taken down or being forgotten: never backfilled. */
    async hidden(did: string): Promise<boolean> {
      return (await hiddenAccounts(redis, schema, [did])).has(did)
    },
    /** Keeps a state read elsewhere (with a circle, or the confirmation of in-process copies). */
    remember,
    /** The state as read within LOCAL_CACHE_MS in this process, if it was. */
    peek(did: string): BackfillView | undefined {
      const s = states.get(did)
      if (s === undefined) return undefined
      if (s.until > now()) return s.view
      states.delete(did)
      return undefined
    },
    /** Reads the state (one HGETALL; concurrent reads of one account share it). */
    read(did: string): Promise<BackfillView> {
      let p = reads.get(did)
      if (!p) {
        p = read(did).finally(() => reads.delete(did))
        reads.set(did, p)
      }
      return p
    },
    /**
     * After a circle request served `did` (not opted out, not deleted: the caller checked) with the state
     * `view` read alongside: enqueues its backfill when it has none (once: concurrent requests share it), and
     * returns the state to show.
     */
    afterRequest(did: string, view: BackfillView): Promise<BackfillView> | BackfillView {
      if (view.state.state !== 'none' || !queue || !deps.onRequest || !isValidDid(did)) return view
      let p = enqueues.get(did)
      if (!p) {
        p = firstRequest(queue, did, view).finally(() => enqueues.delete(did))
        enqueues.set(did, p)
      }
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<BackfillView>((resolve) => {
        timer = setTimeout(() => resolve(view), ENQUEUE_WAIT_MS)
      })
      return Promise.race([p, late]).finally(() => clearTimeout(timer))
    },
    /** A tracked account: enqueued (priority `tracked`) unless it has a state already, or is hidden. */
    async tracked(did: string): Promise<BackfillView> {
      const view = await read(did)
      if (!queue || view.state.state !== 'none') return view
      if ((await hiddenAccounts(redis, schema, [did])).has(did)) return view
      return enqueue(queue, did, 'tracked')
    },
    /**
     * An admin's re-run, whatever the state and BACKFILL_ON_REQUEST say: a finished job record and the state
     * are dropped, then enqueued as a request. Nothing changes while a backfill of the account is queued or
     * running (it would be the same work).
     */
    async requeue(did: string): Promise<Requeued> {
      if (!queue) throw new Error('no backfill queue')
      const job = await queue.getJob(backfillJobId(did))
      if (job) {
        const state = await job.getState()
        // A failed job is kept a day under its id, and an add with that id would be ignored.
        if (state !== 'completed' && state !== 'failed' && state !== 'unknown') {
          return { queued: false, view: await read(did) }
        }
        await job.remove()
      }
      await redis.del(schema.backfillAccount(did))
      return { queued: true, view: await enqueue(queue, did, 'request') }
    },
  }
}

export type BackfillTracker = ReturnType<typeof createBackfillTracker>
