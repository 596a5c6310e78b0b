import { createIndexWriter, ensureRedisSettings } from '@circles/interaction-index'
import { createLogger, logConnectionErrors } from '@circles/logging'
import { createSchema } from '@circles/redis-schema'
import { Redis, ReplyError } from 'ioredis'
import type { IndexerConfig } from './config.js'
import { type DecodedBatch, decodeEntries, type RawEntry } from './entries.js'
import { addStats, diffCounters, emptyCounters, type IndexerCounters } from './metrics.js'

export interface IndexerDeps {
  /** Clock for the index (tests move it). @default Date.now */
  now?: () => number
}

export interface IndexerService {
  start(): Promise<void>
  /** Stops reading, finishes the batch in hand, acknowledges it, closes connections. Idempotent. */
  close(): Promise<void>
  counters(): IndexerCounters
}

const log = createLogger('indexer:service')

/**
 * Batches applied at once by one process (see run). Three, not two: with two, the batch after next was
 * prepared only once Redis had written the next one (4 paired bench runs, 2026-11-22 11:55-12:00 UTC:
 * 37.7-51.4k interactions/s, mean 45.0k, against 36.9-42.5k, mean 39.7k).
 */
const IN_FLIGHT = 3

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref())
}

export function createIndexerService(
  config: IndexerConfig,
  deps: IndexerDeps = {},
): IndexerService {
  const schema = createSchema(config.redisPrefix)
  const stream = schema.eventStream
  const group = schema.indexerGroup
  const me = config.consumer
  // `reads` carries XREADGROUP (it may block), `redis` the acknowledgements, claims and the writer's reads
  // (its writes go on a connection of its own), `control` the metrics: a blocked read delays none of them.
  const reads = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null })
  const redis = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: null })
  const control = new Redis(config.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 3 })
  logConnectionErrors(reads, log, 'Redis connection (stream reads)')
  logConnectionErrors(redis, log)
  logConnectionErrors(control, log, 'Redis connection (metrics)')
  const writer = createIndexWriter(redis, schema, {
    now: deps.now,
    mainLogBytes: config.mainLogBytes,
    rollupGraceHours: config.rollupGraceHours,
  })
  const counters = emptyCounters()
  let published = emptyCounters()
  let lastRate = { at: Date.now(), events: 0 }
  let running = false
  let loop: Promise<void> | null = null
  let metricsTimer: NodeJS.Timeout | null = null
  let closing: Promise<void> | null = null

  async function applyEntries(entries: RawEntry[]): Promise<void> {
    if (entries.length === 0) return
    const batch = decodeEntries(entries)
    counters.badLines += batch.badLines
    counters.badEntries += batch.badEntries
    for (;;) {
      const losses = await writeBatch(entries, batch)
      if (losses === null) return
      // Only now: the writes succeeded (or the entry was given up as poison), so the entries can go.
      await redis.xack(stream, group, ...batch.ids)
      // And only if the acknowledgement reached the Redis that answered the writes: one that restarted in
      // between may have lost them (appendfsync everysec) while the XACK, queued by ioredis, reached it.
      if (writer.connectionLosses() === losses) break
      counters.retries++
      log.warn('a connection to Redis was lost while a batch was written: writing it again')
    }
    counters.entries += entries.length
    counters.events += batch.events.length
    counters.batches++
  }

  /**
   * Applies a batch, retrying. Returns the writer's connection losses counted before the attempt that
   * went through, or null when the batch was split and its entries applied one by one instead.
   */
  async function writeBatch(entries: RawEntry[], batch: DecodedBatch): Promise<number | null> {
    for (let attempt = 1; ; attempt++) {
      const losses = writer.connectionLosses()
      try {
        addStats(counters, await writer.applyColumns(batch.events))
        return losses
      } catch (err) {
        counters.retries++
        // A reply error that repeats is about the data, not the connection: isolate the entry at fault.
        if (err instanceof ReplyError && attempt >= 3) {
          if (entries.length > 1) {
            log.warn({ err }, 'batch keeps failing, applying its entries one by one')
            for (const entry of entries) await applyEntries([entry])
            return null
          }
          counters.failedEntries++
          log.error(
            { err, id: entries[0]?.[0].toString() },
            'entry failed three times, acknowledging it unapplied',
          )
          return losses
        }
        log.error({ err, attempt }, 'applying a batch failed, retrying')
        await sleep(config.retryMs)
      }
    }
  }

  async function ensureGroup(): Promise<void> {
    try {
      await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM')
    } catch (err) {
      if (!(err instanceof ReplyError && (err as Error).message.startsWith('BUSYGROUP'))) throw err
    }
  }

  /**
   * Deletes consumers that left nothing pending and have been idle for `consumerPruneIdleMs`: processes
   * that ended (a restart outside PM2 takes a new name), so that the group does not fill up with them.
   * A consumer with pending entries stays: XAUTOCLAIM takes its entries over first.
   */
  async function pruneConsumers(): Promise<void> {
    const list = (await redis.call('XINFO', 'CONSUMERS', stream, group)) as unknown[][]
    const dead: string[] = []
    for (const c of list) {
      const info: Record<string, unknown> = {}
      for (let i = 0; i + 1 < c.length; i += 2) info[String(c[i])] = c[i + 1]
      const name = String(info.name)
      if (name === me || info.pending !== 0 || Number(info.idle) < config.consumerPruneIdleMs)
        continue
      dead.push(name)
    }
    if (dead.length === 0) return
    const pipe = redis.pipeline()
    for (const name of dead) pipe.xgroup('DELCONSUMER', stream, group, name)
    await pipe.exec()
    log.info({ consumers: dead }, 'deleted idle consumers without pending entries')
  }

  type ReadReply = [Buffer, RawEntry[]][] | null

  async function read(id: string, block: boolean): Promise<RawEntry[]> {
    const args: (string | number)[] = ['GROUP', group, me, 'COUNT', config.batchEntries]
    if (block) args.push('BLOCK', config.blockMs)
    args.push('STREAMS', stream, id)
    const reply = (await reads.callBuffer('XREADGROUP', ...args)) as ReadReply
    return reply?.[0]?.[1] ?? []
  }

  /** Takes over entries another consumer left pending too long (it died or hangs). */
  async function claim(): Promise<void> {
    let start = '0-0'
    for (let round = 0; round < 100 && running; round++) {
      const reply = (await redis.callBuffer(
        'XAUTOCLAIM',
        stream,
        group,
        me,
        config.claimIdleMs,
        start,
        'COUNT',
        config.batchEntries,
      )) as [Buffer, (RawEntry | null)[], Buffer[]?]
      const entries = reply[1].filter((e): e is RawEntry => e !== null && Array.isArray(e[1]))
      if (entries.length > 0) {
        counters.claimed += entries.length
        log.info({ count: entries.length }, 'reclaimed pending entries')
        await applyEntries(entries)
      }
      start = reply[0].toString()
      if (start === '0-0') break
    }
  }

  async function run(): Promise<void> {
    // First this consumer's own pending entries (a restart under the same name), then new ones.
    let pendingOwn = true
    let nextClaim = 0
    // Up to IN_FLIGHT batches in flight: the next one is read and prepared while Redis works on the ones
    // before (the writer runs their phases in order). Each is acknowledged when its own writes are done.
    const inflight: Promise<void>[] = []
    // And the batch after them is read ahead: Redis sends a reply of ~10 MB 64 KB per turn of its event
    // loop, between chunks of the writes in hand, so a read made once the writes were sent took a second
    // (2026-11-22), which this process spent idle. Entries read ahead are this consumer's pending ones:
    // applied next, or taken back by a restart or XAUTOCLAIM if the process dies first.
    let ahead: Promise<RawEntry[]> | null = null
    const drain = async () => {
      while (inflight.length > 0) await inflight.shift()
    }
    while (running) {
      try {
        if (Date.now() >= nextClaim) {
          await drain()
          nextClaim = Date.now() + config.claimIntervalMs
          await claim()
        }
        if (pendingOwn) {
          await drain()
          const own = await read('0', false)
          if (own.length === 0) pendingOwn = false
          else await applyEntries(own)
          continue
        }
        const reading = ahead ?? read('>', true)
        ahead = null
        const entries = await reading
        if (entries.length === 0) continue
        if (running) {
          ahead = read('>', true)
          // awaited later; until then a failure must not count as unhandled
          ahead.catch(() => {})
        }
        const job = applyEntries(entries)
        // awaited in turn; one that fails while an older one is awaited must not count as unhandled
        job.catch(() => {})
        inflight.push(job)
        while (inflight.length >= IN_FLIGHT) await inflight.shift()
      } catch (err) {
        if (!running) break
        log.error({ err }, 'indexer loop error, retrying')
        await sleep(config.retryMs)
      }
    }
    await drain()
    const last = ahead ? await (ahead as Promise<RawEntry[]>).catch(() => []) : []
    if (last.length > 0) await applyEntries(last)
  }

  // One publication at a time: two in flight would both add the same delta to the shared counters.
  let publishing: Promise<void> = Promise.resolve()
  function publishMetrics(): Promise<void> {
    publishing = publishing.then(publishOnce, publishOnce)
    return publishing
  }

  async function publishOnce(): Promise<void> {
    const nowMs = Date.now()
    const rate = ((counters.events - lastRate.events) * 1000) / Math.max(1, nowMs - lastRate.at)
    lastRate = { at: nowMs, events: counters.events }
    let lag: number | null = null
    let pending: number | null = null
    try {
      const groups = (await control.call('XINFO', 'GROUPS', stream)) as unknown[][]
      for (const g of groups) {
        const info: Record<string, unknown> = {}
        for (let i = 0; i + 1 < g.length; i += 2) info[String(g[i])] = g[i + 1]
        if (info.name === group) {
          lag = typeof info.lag === 'number' ? info.lag : null
          pending = typeof info.pending === 'number' ? info.pending : null
        }
      }
      const snapshot = { ...counters }
      const delta = diffCounters(snapshot, published)
      const pipe = control.pipeline()
      for (const [k, v] of Object.entries(delta)) pipe.hincrby(schema.indexerMetrics, k, v)
      pipe.hset(schema.indexerMetrics, {
        lag: lag ?? -1,
        pending: pending ?? -1,
        [`rate:${me}`]: Math.round(rate),
        [`seen:${me}`]: nowMs,
        updatedAt: nowMs,
      })
      const res = await pipe.exec()
      for (const [err] of res ?? []) if (err) throw err
      published = snapshot
    } catch (err) {
      log.warn({ err }, 'publishing metrics failed')
    }
    log.info(
      {
        rate: Math.round(rate),
        lag,
        pending,
        events: counters.events,
        added: counters.added,
        refused: counters.refused,
      },
      'indexer metrics',
    )
  }

  return {
    counters: () => ({ ...counters }),

    async start() {
      if (running || closing) return
      await reads.connect()
      await redis.connect()
      await control.connect()
      if (config.applyRedisSettings) {
        const report = await ensureRedisSettings(control)
        if (Object.keys(report.changed).length > 0)
          log.info({ changed: report.changed }, 'raised Redis settings')
        if (Object.keys(report.unmet).length > 0) {
          log.warn(
            { unmet: report.unmet },
            'Redis settings below what the layout needs: memory per interaction will be higher',
          )
        }
      }
      await ensureGroup()
      await pruneConsumers().catch((err) => log.warn({ err }, 'pruning idle consumers failed'))
      running = true
      loop = run()
      metricsTimer = setInterval(() => void publishMetrics(), config.metricsIntervalMs)
      metricsTimer.unref()
      log.info({ consumer: me, stream, group, prefix: config.redisPrefix }, 'indexer ready')
    },

    close() {
      closing ??= (async () => {
        running = false
        if (metricsTimer) clearInterval(metricsTimer)
        const errors: unknown[] = []
        // The loop notices `running` after the batch in hand (or after one BLOCK period).
        await loop?.catch((err) => errors.push(err))
        if (loop) await publishMetrics().catch((err) => errors.push(err))
        await writer.close().catch((err) => errors.push(err))
        for (const c of [reads, redis, control]) {
          await c.quit().catch(() => c.disconnect())
        }
        log.info(
          { consumer: me, events: counters.events, entries: counters.entries },
          'indexer stopped',
        )
        if (errors.length > 0) throw new AggregateError(errors, 'indexer close failed')
      })()
      return closing
    },
  }
}
