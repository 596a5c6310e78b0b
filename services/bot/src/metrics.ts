import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'

/** Why a mention got no circle (each is counted; most still get a short reply, see replier.ts). */
export const REFUSALS = [
  'too_old',
  'author_rate',
  'global_rate',
  'opted_out',
  'help',
  'no_circle',
] as const
export type Refusal = (typeof REFUSALS)[number]

/** Counters of one bot process since it started: the one list of their names. */
export function emptyCounters() {
  return {
    mentionsSeen: 0,
    repliesPosted: 0,
    /** Replies found already written (a retry after a crash between the write and its record). */
    repliesFound: 0,
    /** Replies whose own post came back on the firehose. */
    repliesConfirmed: 0,
    failures: 0,
    /** Mention lines that did not decode (skipped). */
    badLines: 0,
    logins: 0,
    refreshes: 0,
    refused: Object.fromEntries(REFUSALS.map((r) => [r, 0])) as Record<Refusal, number>,
  }
}

export type BotCounters = ReturnType<typeof emptyCounters>

function flat(c: BotCounters): Record<string, number> {
  const { refused, ...rest } = c
  const out: Record<string, number> = { ...rest }
  for (const r of REFUSALS) out[`refused:${r}`] = refused[r]
  return out
}

/**
 * Every interval: one log line of the counters, and their increase since the last time added to the shared
 * hash (`botMetrics`), so that several processes sum up there and `pnpm doctor` reads one place.
 */
export function createMetricsPublisher(deps: {
  redis: Redis
  schema: RedisSchema
  counters: BotCounters
  log: Logger
}): () => Promise<void> {
  let last: Record<string, number> = flat(emptyCounters())
  return async () => {
    const now = flat(deps.counters)
    const pipe = deps.redis.pipeline()
    for (const [k, v] of Object.entries(now)) {
      const d = v - (last[k] ?? 0)
      if (d !== 0) pipe.hincrby(deps.schema.botMetrics, k, d)
    }
    try {
      if (pipe.length > 0) await pipe.exec()
      last = now
    } catch (err) {
      deps.log.warn({ err }, 'writing the bot metrics failed')
    }
    deps.log.info({ counters: now }, 'bot counters')
  }
}
