import { isValidDid } from '@circles/core'
import { FOREVER_MS, type IndexWriter } from '@circles/interaction-index'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { IndexerCounters } from './metrics.js'

// An opted-out account has no stored interactions (the stronger promise: nothing to leak, nothing to show
// by mistake). The opt-out set moves by the firehose's events (applied with their batch) or by an admin;
// this brings the index in line: a new opt-out is purged up to FOREVER_MS (its index stays closed, both
// directions, and the scheduler forgets the rest), a return reopens it to what happens from then on.
// `optOutsApplied` remembers what was done, so a restart or another indexer process picks up the rest.

export interface OptOutSync {
  /**
   * Brings the index in line when the opt-out version moved since the last time (one GET otherwise): an
   * admin's change, or a batch whose events moved the set (the script bumps the version then). One at a
   * time: the caller waits for a tick before starting the next.
   */
  tick(): Promise<void>
}

export function createOptOutSync(deps: {
  redis: Redis
  schema: RedisSchema
  writer: IndexWriter
  counters: IndexerCounters
  log: Logger
}): OptOutSync {
  const { redis, schema, writer, counters, log } = deps
  let synced: string | null | undefined

  return {
    async tick() {
      const version = await redis.get(schema.optOutsVersion)
      if (version === synced) return
      const [fresh, back] = await Promise.all([
        redis.sdiff(schema.optOuts, schema.optOutsApplied),
        redis.sdiff(schema.optOutsApplied, schema.optOuts),
      ])
      for (const did of fresh) {
        // Members come from validated routes and events; anything else cannot name a key, and is left.
        if (!isValidDid(did)) continue
        await writer.purgeInTurn(did, FOREVER_MS)
        await redis.sadd(schema.optOutsApplied, did)
        counters.optOutPurges++
        log.info({ did }, 'opted out: its interactions are purged and no more are kept')
      }
      for (const did of back) {
        if (isValidDid(did)) await writer.reopen(did)
        await redis.srem(schema.optOutsApplied, did)
        counters.optOutReopens++
        log.info({ did }, 'opted back in: interactions from now on are kept')
      }
      // Only once done: a tick that failed half-way is tried again whole by the next.
      synced = version
    },
  }
}

export interface OptOutTicker {
  /** No more ticks; resolves when the one running (if any) has ended. */
  stop(): Promise<void>
}

/** Ticks `sync` now and every `everyMs`, one at a time: while a tick runs, the timer's turn is skipped. */
export function tickOptOuts(sync: OptOutSync, everyMs: number, log: Logger): OptOutTicker {
  let tick: Promise<void> = Promise.resolve()
  let busy = false
  const check = () => {
    if (busy) return
    busy = true
    tick = sync
      .tick()
      .catch((err) => {
        // the next tick tries again: a failed sync leaves its version unsynced
        log.warn({ err }, 'bringing the index in line with the opt-outs failed')
      })
      .finally(() => {
        busy = false
      })
  }
  check()
  const timer = setInterval(check, everyMs)
  timer.unref()
  return {
    stop() {
      clearInterval(timer)
      return tick
    },
  }
}
