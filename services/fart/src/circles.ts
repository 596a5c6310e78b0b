import { randomBytes } from 'node:crypto'
import type { ProfileCache } from '@circles/bsky-client'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { type BackfillView, backfillView, isStaleMark } from './backfill-view.js'
import { type Computed, computeCircle } from './circle-compute.js'
import {
  entryBytes,
  etagOf,
  GONE_BYTES,
  HEAD_UNLESS_PURGED,
  headOf,
  OPTED_OUT_BYTES,
  RELEASE_LOCK,
  splitEntry,
} from './circle-entry.js'
import type { LivePartners, LongPartners } from './index-source.js'
import { createLocalCache, type LocalEntry } from './local-cache.js'
import type { Notifier } from './notify.js'
import { type CircleParams, variantOf } from './params.js'
import { pipelineValues, redisFault, skippedWriteLogger } from './redis-faults.js'

export { type Circle, type CircleMember, memberInitials } from './circle-compute.js'
export { etagOf, GONE_BODY, OPTED_OUT_BODY } from './circle-entry.js'

// Circles: computed from the index, cached in Redis as ready-to-send JSON, computed once per actor and
// parameter set at a time (single-flight). The original system kept a non-atomic "computing" flag that locked
// a user out forever after one error; here the lock is SET NX PX with a random token, released only by its
// owner, and it expires by itself, so a crashed computation delays waiters by at most `lockMs`.
// The entry's format is in circle-entry.ts, the computation in circle-compute.ts. The account's backfill state
// is read with the entry (same round trip): a circle made before its backfill ended is made again once it has.

/** A body ready to send (bytes, so the hot path neither encodes nor decodes it) and its ETag. */
export type CircleResult =
  | {
      status: 200 | 404 | 501
      body: Buffer
      etag: string
      /** `uncached`: computed here but not stored, since Redis refused the write (OOM, READONLY). */
      cache: 'hit' | 'miss' | 'shared' | 'uncached'
      /** The account's backfill now (read with the entry). */
      backfill: BackfillView
      /** The backfill mark the circle was made under (`backfill.mark`, or older for a cached one). */
      mark: string
    }
  | { status: 403 | 404; body: Buffer; etag?: undefined; cache: 'none' }

/** A computed or cached answer, before the backfill state is added (`mark` when it came from an entry). */
interface Computation {
  status: 200 | 404 | 501
  body: Buffer
  etag: string
  cache: 'hit' | 'miss' | 'shared' | 'uncached'
  mark?: string
}

export interface CircleServiceDeps {
  redis: Redis
  schema: RedisSchema
  index: LivePartners
  longWindows?: LongPartners
  profiles: ProfileCache
  ttlSeconds: number
  partialTtlSeconds: number
  lockMs: number
  log: Logger
  /** Wakes requests waiting for another process's computation; without it they poll every `pollMs`. */
  notifier?: Notifier
  now?: () => number
  /**
   * Poll interval of requests waiting for another's computation: with a notifier only a fallback for a lost
   * notification or a holder that died. @default 15 without a notifier, 250 with one
   */
  pollMs?: number
  /** Life of the in-process copy of served circles; 0 disables it. @default 0 */
  localMs?: number
  /**
   * Told each account's backfill state as read with a circle or with the confirmation of its in-process
   * copies: the hot path shows it without a read of its own (backfill-tracker.ts).
   */
  onBackfill?: (did: string, view: BackfillView) => void
}

export function createCircleService(deps: CircleServiceDeps) {
  const { redis, schema, log } = deps
  const { notifier } = deps
  const now = deps.now ?? Date.now
  const computeDeps = { ...deps, now }
  const pollMs = deps.pollMs ?? (notifier ? 250 : 15)
  // In-process single-flight in front of the Redis one: concurrent requests in this process share a promise.
  const inflight = new Map<string, Promise<Computation>>()
  // A very short-lived copy of served circles in this process, keyed by request URL (see local-cache.ts).
  const local = createLocalCache({ ttlMs: deps.localMs ?? 0, now })
  notifier?.onOptOutChange(() => local.clear())

  // Copies served lately are confirmed against Redis in the background, shortly before they expire (in their
  // last quarter of LOCAL_CACHE_MS): a hot circle then never waits for Redis, yet is never served more than
  // LOCAL_CACHE_MS after Redis last said it still stands (not opted out, not purged, same opt-out version,
  // same ETag, so not past its Redis TTL either). A copy not served since its last confirmation just expires.
  // Each confirmation costs the API ~20 us (measured), so each hot copy is confirmed about once per life.
  // Only the entry's head is read back (GETRANGE, unless purged, in one script per copy), not the body.
  // The accounts' backfill states come along (one HGETALL per account): a copy made before its account's
  // backfill ended is dropped, and the hot path finds the states it shows fresh.
  const HEAD_BYTES = 128
  // In slices, each its own round trip: a thousand hot copies at once would stall the event loop for
  // milliseconds, which every request in flight would wait out (it showed in p99).
  const CONFIRM_SLICE = 25
  async function confirmCopies(): Promise<void> {
    const soon = now() + local.ttlMs / 4
    const due = local.entries().filter(([, e]) => e.used && e.until <= soon)
    for (let i = 0; i < due.length; i += CONFIRM_SLICE) {
      await confirmSlice(due.slice(i, i + CONFIRM_SLICE))
    }
  }
  async function confirmSlice(due: [string, LocalEntry][]): Promise<void> {
    const t0 = now()
    const generation = local.generation
    const dids = [...new Set(due.map(([, e]) => e.did))]
    const pipe = pipelineFor(redis)
      .get(schema.optOutsVersion)
      .smismember(schema.optOuts, ...dids)
    for (const [, e] of due) {
      // One command per copy (each costs the API more than Redis): both keys are in the DID's slot.
      pipe.eval(
        HEAD_UNLESS_PURGED,
        2,
        schema.accountPurged(e.did),
        schema.circle(e.did, e.variant),
        HEAD_BYTES - 1,
      )
    }
    for (const d of dids) pipe.hgetall(schema.backfillAccount(d))
    const res = await pipe.exec()
    if (!res || local.generation !== generation) return
    const failed = res.find(([err]) => err)
    if (failed) throw failed[0]
    const version = (res[0]![1] as string | null) ?? '0'
    const optedOut = new Set(dids.filter((_, i) => (res[1]![1] as number[])[i] === 1))
    const marks = new Map<string, string>()
    dids.forEach((d, j) => {
      const view = backfillView(res[2 + due.length + j]![1] as Record<string, string>)
      marks.set(d, view.mark)
      deps.onBackfill?.(d, view)
    })
    due.forEach(([key, e], i) => {
      const raw = res[2 + i]![1] as string | null
      const head = raw === null ? null : headOf(Buffer.from(raw, 'latin1'))
      if (
        optedOut.has(e.did) ||
        head?.version !== version ||
        head.etag !== e.etag ||
        isStaleMark(e.mark, marks.get(e.did) ?? 'p')
      ) {
        local.drop(key, e)
      } else {
        e.until = t0 + local.ttlMs
        e.used = false
      }
    })
  }
  let confirming = false
  let lastWarn = 0
  const confirmFailed = (err: unknown) => {
    // Once per 10 s at most: with Redis away this would fail on every tick (the copies then just expire).
    if (now() - lastWarn < 10_000) return
    lastWarn = now()
    log.warn({ err }, 'confirming in-process circle copies failed (they expire instead)')
  }
  const confirmTimer =
    local.ttlMs > 0
      ? setInterval(
          () => {
            if (confirming) return
            confirming = true
            confirmCopies()
              .catch(confirmFailed)
              .finally(() => {
                confirming = false
              })
          },
          Math.max(20, Math.floor(local.ttlMs / 8)),
        )
      : undefined
  confirmTimer?.unref()

  const skipped = skippedWriteLogger(log, 'circle cache entry', now)
  const releaseFailed = (err: unknown) => {
    log.warn({ err }, 'circle lock release failed (it expires by itself)')
  }

  /** Computes with neither lock nor cache entry: Redis refuses writes (OOM, READONLY), yet reads answer. */
  async function uncached(
    did: string,
    params: CircleParams,
    optOuts: readonly string[],
  ): Promise<Computation> {
    const r = await computeCircle(computeDeps, did, params, optOuts)
    return { status: r.status, body: r.body, etag: etagOf(r.body), cache: 'uncached' }
  }

  /** This request holds the lock: compute, then write, record, release and announce in one round trip. */
  async function computeHeld(
    did: string,
    params: CircleParams,
    keys: { cache: string; lock: string; token: string; version: string; mark: string },
    optOuts: readonly string[] | Error,
  ): Promise<Computation> {
    let r: Computed
    try {
      if (optOuts instanceof Error) throw optOuts
      r = await computeCircle(computeDeps, did, params, optOuts)
    } catch (err) {
      // Released and announced: waiters wake, find no entry and no lock, and try themselves.
      await pipelineFor(redis)
        .eval(RELEASE_LOCK, 1, keys.lock, keys.token)
        .publish(schema.circleReadyChannel, keys.cache)
        .exec()
        .catch(releaseFailed)
      throw err
    }
    const etag = etagOf(r.body)
    // Written, recorded for the scheduler's snapshots (at most once per cache TTL per variant), released
    // and announced in one round trip: waiters wake and find the entry.
    const res = await pipelineFor(redis)
      .set(
        keys.cache,
        entryBytes({ version: keys.version, status: r.status, mark: keys.mark, etag }, r.body),
        'EX',
        r.ttl,
      )
      .zadd(schema.circleRequests, now(), did)
      .eval(RELEASE_LOCK, 1, keys.lock, keys.token)
      .publish(schema.circleReadyChannel, keys.cache)
      .exec()
      .catch((err: unknown) => [[err as Error, null]] as [Error | null, unknown][])
    const setErr = res ? res[0]?.[0] : new Error('no reply to the cache write')
    const releaseErr = res?.[2]?.[0]
    if (releaseErr) releaseFailed(releaseErr)
    // The circle is computed and sound: whatever became of its entry (Redis out of memory, or gone since
    // the reads), it is served; waiters find no entry once the lock expires and compute their own.
    if (setErr) {
      skipped(setErr)
      return { status: r.status, body: r.body, etag, cache: 'uncached' }
    }
    return { status: r.status, body: r.body, etag, cache: 'miss' }
  }

  async function viaLock(
    did: string,
    params: CircleParams,
    variant: string,
    version: string,
    mark: string,
  ): Promise<Computation> {
    const cacheKey = schema.circle(did, variant)
    const lockKey = schema.circleLock(did, variant)
    const deadline = now() + deps.lockMs
    for (;;) {
      const token = randomBytes(8).toString('hex')
      // Each Redis round trip costs this process more CPU than the commands cost Redis (a socket write
      // and the wake-up of a reader on another core): a miss makes as few as it can. The opt-out set
      // comes with the lock (wasted only when someone else holds it).
      const [[lockErr, got], [optErr, optOuts]] = (await pipelineFor(redis)
        .set(lockKey, token, 'PX', deps.lockMs, 'NX')
        .smembers(schema.optOuts)
        .exec()) as [[Error | null, string | null], [Error | null, string[]]]
      if (lockErr) {
        // No lock without writes: every request computes for itself, which beats answering none.
        if (redisFault(lockErr) !== 'write-refused') throw lockErr
        if (optErr) throw optErr
        skipped(lockErr)
        return uncached(did, params, optOuts)
      }
      if (got === 'OK') {
        const keys = { cache: cacheKey, lock: lockKey, token, version, mark }
        return computeHeld(did, params, keys, optErr ?? optOuts)
      }
      const shared = await waitForOther(cacheKey, lockKey, { version, mark }, deadline)
      if (shared) return shared
      if (now() >= deadline) {
        // The holder is alive but slow beyond the lock's life: compute ourselves rather than wait longer.
        const [[optErr, optOuts]] = (await pipelineFor(redis)
          .smembers(schema.optOuts)
          .zadd(schema.circleRequests, now(), did)
          .exec()) as [[Error | null, string[]]]
        if (optErr) throw optErr
        const r = await computeCircle(computeDeps, did, params, optOuts)
        return { status: r.status, body: r.body, etag: etagOf(r.body), cache: 'miss' }
      }
    }
  }

  /**
   * Someone else computes: waits for their entry (returned), or for their lock to vanish (they failed:
   * undefined, and the caller tries itself), at most until `deadline`. Each wait is registered before the
   * look, so an announcement in between is not lost; the poll is what is left when there is no notifier or
   * an announcement went missing.
   */
  async function waitForOther(
    cacheKey: string,
    lockKey: string,
    { version, mark }: { version: string; mark: string },
    deadline: number,
  ): Promise<Computation | undefined> {
    while (now() < deadline) {
      const wake = notifier?.waitFor(cacheKey, pollMs)
      let raw: Buffer | null
      let locked: number
      try {
        ;[raw, locked] = pipelineValues(
          await pipelineFor(redis).getBuffer(cacheKey).exists(lockKey).exec(),
        ) as [Buffer | null, number]
      } catch (err) {
        wake?.cancel()
        throw err
      }
      const e = raw === null ? null : splitEntry(raw)
      if (e && e.version === version && !isStaleMark(e.mark, mark)) {
        wake?.cancel()
        return { status: e.status, body: e.body, etag: e.etag, cache: 'shared', mark: e.mark }
      }
      if (locked === 0) {
        wake?.cancel()
        return undefined
      }
      if (wake) await wake.promise
      else await new Promise((r) => setTimeout(r, pollMs))
    }
    return undefined
  }

  return {
    /**
     * This process's copy of the answer to a request URL, if it served one within LOCAL_CACHE_MS: the hot
     * path, with no parsing, no Redis and no hashing. Only 200s are kept.
     */
    local(url: string): LocalEntry | undefined {
      return local.get(url)
    },
    /**
     * Serves a circle: cache, else one computation shared by every concurrent request. `url` names the
     * in-process copy of a 200 (see `local`); without it none is kept.
     */
    async get(did: string, params: CircleParams, url?: string): Promise<CircleResult> {
      const variant = variantOf(params)
      const generation = local.generation
      const [optedOut, purged, version, raw, backfill] = pipelineValues(
        await pipelineFor(redis)
          .sismember(schema.optOuts, did)
          .exists(schema.accountPurged(did))
          .get(schema.optOutsVersion)
          .getBuffer(schema.circle(did, variant))
          .hgetall(schema.backfillAccount(did))
          .exec(),
      ) as [number, number, string | null, Buffer | null, Record<string, string>]
      if (optedOut === 1) return { status: 403, body: OPTED_OUT_BYTES, cache: 'none' }
      // The indexer marks accounts it purged on a deleted/taken-down event: no circle, whatever the cache says.
      if (purged === 1) return { status: 404, body: GONE_BYTES, cache: 'none' }
      const v = version ?? '0'
      const bf = backfillView(backfill)
      deps.onBackfill?.(did, bf)
      const e = raw === null ? null : splitEntry(raw)
      let r: Computation
      if (e && e.version === v && !isStaleMark(e.mark, bf.mark)) {
        r = { status: e.status, body: e.body, etag: e.etag, cache: 'hit', mark: e.mark }
      } else {
        const key = `${did}|${variant}|${v}|${bf.mark}`
        let p = inflight.get(key)
        if (!p) {
          p = viaLock(did, params, variant, v, bf.mark).finally(() => inflight.delete(key))
          inflight.set(key, p)
        }
        r = await p
      }
      const mark = r.mark ?? bf.mark
      // An answer Redis would not keep is not kept here either: it is confirmed against the Redis entry.
      if (url !== undefined && r.status === 200 && r.cache !== 'uncached') {
        local.set(url, { did, variant, body: r.body, etag: r.etag, mark }, generation)
      }
      return { ...r, backfill: bf, mark }
    },
    /** Forgets this process's short-lived copies (after an opt-out change made here). */
    clearLocal() {
      local.clear()
    },
    /** Stops confirming copies in the background. */
    close() {
      clearInterval(confirmTimer)
      local.clear()
    },
  }
}

export type CircleService = ReturnType<typeof createCircleService>
