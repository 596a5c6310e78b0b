import { createLogger, logConnectionErrors } from '@circles/logging'
import { type MetricsServer, startMetricsServer } from '@circles/metrics'
import { createSchema, shardsOf } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import type { FirehoseConfig } from './config.js'
import { CursorMemory } from './cursor-memory.js'
import type { FrameResult } from './frame-result.js'
import { bump, countFrame, type Gauges, MetricsReporter, newCounters } from './metrics.js'
import { createFirehoseRegistry } from './prometheus.js'
import { publishShards } from './publisher.js'
import { RelaySession, type SessionEnd } from './relay-session.js'
import { type Resume, resumeAt, resumeFrom } from './shard-route.js'
import { combineLags, ensureGroup, readHealedLag, trimRead } from './stream-lag.js'

export class FirehoseError extends Error {
  override name = 'FirehoseError'
}

export interface FirehoseDeps {
  /** A connected client to use instead of one from `config.redisUrl`; the service does not close it. */
  redis?: Redis
}

export interface FirehoseService {
  start(): Promise<void>
  close(): Promise<void>
}

/** Exponential backoff with jitter: half fixed, half random, so that many clients do not retry in step. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number): number {
  const cap = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30))
  return Math.round(cap / 2 + (Math.random() * cap) / 2)
}

export function createFirehoseService(
  config: FirehoseConfig,
  deps: FirehoseDeps = {},
): FirehoseService {
  const log = createLogger('firehose')
  const schema = createSchema(config.redisPrefix)
  const shards = shardsOf(schema, config.firehoseShards)
  const ownsRedis = deps.redis === undefined
  // A producer fails fast (no offline queue): a write that cannot happen now ends the session, and the
  // next one restarts from the stored cursor.
  const redis =
    deps.redis ??
    connectRedis(config, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // A Redis that stops answering must end the session (and its stuck batch), not hang it.
      commandTimeout: 15_000,
    })
  if (ownsRedis) logConnectionErrors(redis, log)
  const counters = newCounters()
  const gauges: Gauges = {
    cursor: null,
    lag: null,
    lagSource: 'unknown',
    streamLength: null,
    relayTimeMs: null,
    trimmedUnread: 0,
    shardLag: {},
    state: 'starting',
  }
  const metrics = new MetricsReporter(redis, schema, log, counters, gauges)
  const memory = new CursorMemory(
    config.checkpointFile,
    config.relayUrl,
    config.refillHours * 3_600_000,
  )
  let checkpointTimer: NodeJS.Timeout | null = null
  let prometheus: MetricsServer | null = null
  const subscribeUrl = `${config.relayUrl}/xrpc/com.atproto.sync.subscribeRepos`

  let started = false
  /** start() completed: there is something to report at close. */
  let ready = false
  let closing = false
  let closed: Promise<void> | null = null
  let loop: Promise<void> | null = null
  let session: RelaySession | null = null
  /**
   * Per shard, the cursor Redis should hold for the running session (null: none yet), which its next batch
   * compares and sets: the one read at its start, then the one the batch before wrote. A session that
   * resumed after a loss has stored none yet: a lag check must not call that a loss again.
   */
  let afters: (string | null)[] = shards.map(() => null)
  let lagTimer: NodeJS.Timeout | null = null
  let lagCheck: Promise<void> | null = null
  /** True while the indexer's lag is above the bound: no socket is open. */
  let backpressure = false
  /** The last lag reading plus the entries published since: an upper bound on the unread entries. */
  let lagEstimate = 0
  let wake: (() => void) | null = null
  let warnedNoGroup = false

  function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        wake = null
        resolve()
      }
      wake = done
    })
  }

  async function checkKeyTypes(): Promise<void> {
    const expected: [string, string][] = [[schema.firehoseMetrics, 'hash']]
    for (const s of shards) expected.push([s.stream, 'stream'], [s.cursor, 'string'])
    // One command per key: on a cluster the shards' keys live on different nodes.
    const types = await Promise.all(expected.map(([k]) => redis.type(k)))
    expected.forEach(([key, want], i) => {
      if (types[i] !== 'none' && types[i] !== want) {
        throw new FirehoseError(`${key} holds a ${types[i]}, expected a ${want}`)
      }
    })
  }

  /**
   * Where to resume. Each shard's cursor moves in that shard's own MULTI, so they may differ after a crash:
   * the relay is read from the lowest, and each shard leaves out the frames up to its own (its floor). A
   * shard without a cursor while others have one (FIREHOSE_SHARDS raised, or its node restarted empty)
   * starts at that lowest cursor. With none stored at all: the last cursor Redis held for us (it lost
   * them); else FIREHOSE_CURSOR; else live. A garbled stored cursor is an error.
   */
  async function resumeCursor(): Promise<Resume> {
    const stored = await Promise.all(shards.map((s) => redis.get(s.cursor)))
    let resume: ReturnType<typeof resumeFrom>
    try {
      resume = resumeFrom(
        stored,
        shards.map((s) => s.cursor),
      )
    } catch (err) {
      throw new FirehoseError((err as Error).message)
    }
    if (resume !== null) {
      if (resume.missing.length > 0) {
        log.warn(
          { cursor: resume.cursor, without: resume.missing },
          'some stream shards hold no cursor (FIREHOSE_SHARDS raised, or their Redis lost its data): they start at the lowest cursor of the others',
        )
      }
      memory.note(resume.cursor as number)
      memory.noteStart(resume.cursor as number)
      return resume
    }
    const start = (cursor: number | null) => resumeAt(cursor, stored)
    const fallback = memory.fallback
    if (fallback === null) {
      if (config.startCursor !== null) memory.noteStart(config.startCursor)
      return start(config.startCursor)
    }
    counters.cursorsLost++
    log.error(
      {
        cursor: fallback,
        lastKnown: memory.lastKnown,
        refillHours: config.refillHours,
        checkpoint: config.checkpointFile,
      },
      `the stored cursor${shards.length > 1 ? 's are' : ' is'} gone (Redis lost its data?): reading the relay again from ${fallback} (${config.refillHours > 0 ? `up to ${config.refillHours} h back, to refill the index` : 'the last cursor up to which the indexer had applied everything'})${config.checkpointFile ? `; to start over instead, delete ${config.checkpointFile} too` : ''}`,
    )
    return start(fallback)
  }

  function flushCheckpoint(): void {
    try {
      memory.flush()
    } catch (err) {
      log.warn({ err, file: config.checkpointFile }, 'could not write the cursor checkpoint')
    }
  }

  function onFrame(result: FrameResult): void {
    countFrame(counters, result)
    if (result.kind === 'info' && result.info) {
      if (result.info.name === 'OutdatedCursor') {
        log.warn(
          { cursor: gauges.cursor, message: result.info.message },
          'the relay no longer holds events right after our cursor (OutdatedCursor): it replays from its oldest event, so events in between are missing',
        )
      } else log.info({ info: result.info }, 'relay info frame')
    }
  }

  function reportEnd(end: SessionEnd, delay: number): void {
    const base = { cursor: end.cursor, code: end.code, retryInMs: delay }
    const e = end.errorFrame
    if (e?.error === 'FutureCursor') {
      log.error(
        { ...base, relayMessage: e.message },
        `the relay says our cursor ${end.cursor} is in the future (FutureCursor): it has not produced that seq yet, so the stored cursor probably belongs to another relay; delete ${schema.firehoseCursor} (or set FIREHOSE_CURSOR) to start over. Retrying`,
      )
    } else if (e?.error === 'ConsumerTooSlow') {
      log.warn(
        { ...base, relayMessage: e.message },
        'the relay dropped us for reading too slowly (ConsumerTooSlow); reconnecting from the stored cursor',
      )
    } else if (e) {
      log.warn(
        { ...base, error: e.error, relayMessage: e.message },
        `the relay sent an error frame (${e.error}) and closed the socket`,
      )
    } else if (end.reason === 'stall') {
      log.warn(
        { ...base, stallTimeoutMs: config.stallTimeoutMs },
        'no message from the relay within the stall timeout; reconnecting',
      )
    } else if (end.reason === 'publish-failed') {
      log.warn(base, 'a write to Redis failed; reconnecting from the stored cursor')
    } else {
      log.warn(
        { ...base, err: end.socketError },
        end.socketError ? 'relay connection failed' : 'the relay closed the connection',
      )
    }
  }

  /** One lag check at a time, whether from the timer or from a publish. */
  function runLagCheck(): Promise<void> {
    lagCheck ??= checkLag().finally(() => {
      lagCheck = null
    })
    return lagCheck
  }

  /**
   * Reads every shard's lag. The firehose pauses when any shard's lag passes FIREHOSE_MAX_LAG and resumes
   * once all are at FIREHOSE_RESUME_LAG: a shard's indexers fall behind on their own, and one stream's
   * lag is what its MAXLEN guard trims against.
   */
  async function checkLag(): Promise<void> {
    try {
      // Entries published while this reading is taken are counted again next time: an overestimate
      // costs one extra check, an underestimate could let the stream run past the bound.
      lagEstimate = 0
      // Taken before the reading: whatever was published up to it is in the streams the reading sees.
      const published = memory.lastKnown
      const readings = await Promise.all(
        shards.map((shard) =>
          readHealedLag(redis, schema, shard, (wrong) =>
            log.warn(
              { lag: wrong, stream: shard.stream },
              "the indexer group's lag was wrong (its entries-read counter, after a failover?): set right",
            ),
          ),
        ),
      )
      const { lag, total, length, trimmedUnread } = combineLags(readings)
      if (published !== null && readings.every((r) => r.lag === 0 && r.pending === 0)) {
        memory.noteApplied(published)
      }
      // A quiet relay publishes nothing, so no batch would find a cursor gone: look for them here too.
      // (Only for the session that should have stored them, and still runs: the loss is counted once.)
      const checked = session
      const expected = shards.filter((_, k) => afters[k] !== null)
      if (checked && expected.length > 0) {
        const exist = await Promise.all(expected.map((sh) => redis.exists(sh.cursor)))
        if (exist.includes(0) && checked === session) checked.stop('cursor-lost')
      }
      lagEstimate += lag
      gauges.lag = total
      gauges.lagSource = readings[0]?.source ?? 'unknown'
      gauges.streamLength = length
      gauges.shardLag = Object.fromEntries(readings.map((r, k) => [String(k), r.lag]))
      const groupMissing = readings.some((r) => r.source === 'no-group' && r.length > 0)
      if (groupMissing && !warnedNoGroup) {
        log.warn(
          { group: schema.indexerGroup, length: gauges.streamLength },
          'the indexer group is missing: counting the whole stream as unread',
        )
      }
      warnedNoGroup = groupMissing
      if (trimmedUnread > gauges.trimmedUnread) {
        log.error(
          { trimmedUnread, maxLen: config.maxLen },
          'stream entries were trimmed before the indexer read them: their events are lost (FIREHOSE_MAXLEN too low, or the indexer was stopped while the firehose could not pause)',
        )
      }
      gauges.trimmedUnread = trimmedUnread
      if (lag >= config.maxLen) {
        log.error(
          { lag, maxLen: config.maxLen },
          'the stream is at its MAXLEN guard with unread entries: trimming is dropping events the indexer has not read',
        )
      }
      if (!backpressure && lag > config.maxLag) {
        backpressure = true
        counters.backpressurePauses++
        gauges.state = 'paused'
        log.warn(
          { lag, maxLag: config.maxLag, resumeLag: config.resumeLag },
          'the indexer is behind: pausing the firehose',
        )
        session?.stop('backpressure')
      } else if (backpressure && lag <= config.resumeLag) {
        backpressure = false
        log.info({ lag }, 'the indexer caught up: resuming the firehose')
        wake?.()
      }
      await Promise.all(
        shards.map((shard, k) =>
          readings[k]?.lastDeliveredId === null ? null : trimRead(redis, schema, shard),
        ),
      )
    } catch (err) {
      log.warn({ err }, 'could not read the indexer lag')
    }
  }

  async function runLoop(): Promise<void> {
    let attempt = 0
    let first = true
    while (!closing) {
      if (backpressure) {
        await sleep(config.lagCheckMs)
        continue
      }
      gauges.state = 'connecting'
      let resume: Resume
      try {
        resume = await resumeCursor()
      } catch (err) {
        const delay = backoffDelay(attempt++, config.backoffMinMs, config.backoffMaxMs)
        log.error({ err, retryInMs: delay }, 'could not read the stored cursor')
        gauges.state = 'backoff'
        await sleep(delay)
        continue
      }
      const { cursor, floors } = resume
      gauges.cursor = cursor
      if (first) {
        log.info({ cursor }, cursor === null ? 'starting live' : 'resuming from cursor')
        first = false
      } else counters.reconnects++
      const url = cursor === null ? subscribeUrl : `${subscribeUrl}?cursor=${cursor}`
      afters = resume.stored
      const s = new RelaySession({
        url,
        cursor,
        route: { shards: shards.length, floors },
        batchFrames: config.batchFrames,
        flushIntervalMs: config.flushIntervalMs,
        stallTimeoutMs: config.stallTimeoutMs,
        decode: { serviceDid: config.serviceDid, botDid: config.botDid },
        publish: async (batch) => {
          const entries = await publishShards(redis, shards, batch, floors, afters, config)
          memory.note(batch.seq)
          // Started live: the first batch is where this firehose began.
          memory.noteStart(batch.seq)
          counters.flushes++
          counters.entries += entries
          lagEstimate += entries
          // The timer alone lets a fast catch-up run far past the bound between two checks: when what
          // we have published could have crossed it, read the lag before taking the next batch.
          if (!backpressure && lagEstimate > config.maxLag) await runLagCheck()
          gauges.cursor = batch.seq
          gauges.relayTimeMs = batch.time
        },
        onFrame,
        onStale: () => {
          counters.stale++
        },
        onPause: () => {
          counters.socketPauses++
        },
        log,
      })
      session = s
      gauges.state = 'reading'
      // close() or a lag check may have run while the cursor was being read.
      if (closing) s.stop('stopped')
      else if (backpressure) s.stop('backpressure')
      const end = await s.done
      session = null
      if (closing) break
      if (end.reason === 'backpressure' || end.reason === 'cursor-lost') {
        attempt = 0
        continue
      }
      if (end.reason === 'stall') counters.stalls++
      if (end.errorFrame) bump(counters.errorFrames, end.errorFrame.error)
      if (end.committedFrames > 0) attempt = 0
      const delay = backoffDelay(attempt++, config.backoffMinMs, config.backoffMaxMs)
      reportEnd(end, delay)
      gauges.state = 'backoff'
      await sleep(delay)
    }
  }

  return {
    async start() {
      if (started) throw new FirehoseError('start() called twice')
      started = true
      if (ownsRedis) await redis.connect()
      await checkKeyTypes()
      for (const shard of shards) {
        if (await ensureGroup(redis, schema, shard)) {
          log.info(
            { group: schema.indexerGroup, stream: shard.stream },
            'created the indexer consumer group',
          )
        }
      }
      await checkLag()
      lagTimer = setInterval(() => void runLagCheck(), config.lagCheckMs)
      metrics.start(config.metricsIntervalMs)
      prometheus = await startMetricsServer({
        registry: createFirehoseRegistry(counters, gauges),
        port: config.metricsPort,
        host: config.metricsHost,
        log,
      })
      if (config.checkpointFile) {
        checkpointTimer = setInterval(flushCheckpoint, config.checkpointIntervalMs)
        checkpointTimer.unref()
      }
      loop = runLoop().catch((err) => {
        log.fatal({ err }, 'firehose loop crashed')
        process.exitCode = 1
      })
      ready = true
      log.info(
        {
          relay: config.relayUrl,
          prefix: config.redisPrefix,
          streams: shards.map((s) => s.stream),
        },
        'firehose service ready',
      )
    },

    close() {
      closed ??= (async () => {
        closing = true
        const errors: unknown[] = []
        if (lagTimer) clearInterval(lagTimer)
        metrics.stop()
        session?.stop('stopped')
        wake?.()
        try {
          await loop
          await lagCheck
        } catch (err) {
          errors.push(err)
        }
        gauges.state = 'stopped'
        if (checkpointTimer) clearInterval(checkpointTimer)
        flushCheckpoint()
        if (ready) {
          await metrics
            .report()
            .catch((err) => log.warn({ err }, 'could not store the final firehose metrics'))
        }
        await prometheus?.close()
        if (ownsRedis) {
          await redis.quit().catch(() => redis.disconnect())
        }
        log.info({ cursor: gauges.cursor, ...summary() }, 'firehose service stopped')
        if (errors.length > 0) {
          throw new FirehoseError('firehose close had errors', { cause: errors[0] })
        }
      })()
      return closed
    },
  }

  function summary() {
    return {
      frames: counters.frames,
      events: counters.events,
      reconnects: counters.reconnects,
    }
  }
}
