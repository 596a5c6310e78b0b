import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'
import { readPipelineState } from '../metrics.js'
import { statsForServing, statsProfiles } from '../stats-privacy.js'
import { Unavailable } from './schemas.js'

const NumOrNull = Type.Union([Type.Number(), Type.Null()])

/** A consumer silent this long has stopped: its last rate is not today's. */
const CONSUMER_SILENT_MS = 60_000

/**
 * The indexer's rate from its metrics hash, where each consumer writes `rate:<name>` and `seen:<name>` (ms)
 * every report: the sum over the consumers seen lately, null when none is.
 */
export function indexerRate(hash: Record<string, string>, now: number): number | null {
  let sum: number | null = null
  for (const [k, v] of Object.entries(hash)) {
    if (!k.startsWith('rate:')) continue
    const seen = Number(hash[`seen:${k.slice(5)}`])
    const rate = Number(v)
    if (!Number.isFinite(rate) || !(now - seen <= CONSUMER_SILENT_MS)) continue
    sum = (sum ?? 0) + rate
  }
  return sum
}

export function statsRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const profiles = statsProfiles(ctx.profiles, 30_000, ctx.now, ctx.log)
  return async (app) => {
    app.get(
      '/v1/stats',
      {
        schema: {
          summary: 'Global statistics computed by the scheduler',
          description:
            'The scheduler’s latest global stats document, without accounts that opted out or were deleted since it ran (a top list can then hold fewer than its limit). Top-list entries carry `handle`, `displayName` and `avatar` when the account’s profile is cached; an entry may have its DID alone (its profile is then fetched in the background, once per stats run, for the next request). 503 until it has written one.',
          tags: ['stats'],
          response: { 200: Type.Object({}, { additionalProperties: true }), 503: Unavailable },
        },
      },
      async (_req, reply) => {
        const raw = await ctx.redis.get(ctx.schema.globalStats)
        if (raw === null) {
          return reply.code(503).send({
            statusCode: 503,
            error: 'NotReady',
            message: 'no global stats yet: the scheduler has not run',
          })
        }
        // JSON written by the scheduler, less the accounts that opted out or left since it ran.
        const body = await statsForServing(ctx.redis, ctx.schema, profiles, raw)
        return reply.type('application/json').send(body as never)
      },
    )

    app.get(
      '/v1/stats/live',
      {
        schema: {
          summary: 'Live pipeline state: event rate, lag, cursor',
          tags: ['stats'],
          response: {
            200: Type.Object({
              cursor: NumOrNull,
              rate: NumOrNull,
              lagMs: NumOrNull,
              streamLength: NumOrNull,
              indexerLagEntries: NumOrNull,
              indexerPending: NumOrNull,
              indexerRate: Type.Union([Type.Number(), Type.Null()], {
                description:
                  'Stream entries indexed per second, summed over the indexer consumers that reported in the last minute',
              }),
              schedulerHeartbeatAgeSeconds: NumOrNull,
              firehoseState: Type.Union([Type.String(), Type.Null()]),
              firehose: Type.Record(Type.String(), Type.Number()),
            }),
            503: Unavailable,
          },
        },
      },
      async () => {
        const [state, metrics, indexer] = await Promise.all([
          readPipelineState(ctx.redis, ctx.schema, ctx.now(), ctx.config.firehoseShards),
          ctx.redis.hgetall(ctx.schema.firehoseMetrics),
          ctx.redis.hgetall(ctx.schema.indexerMetrics),
        ])
        const firehose: Record<string, number> = {}
        for (const [k, v] of Object.entries(metrics)) {
          const n = Number(v)
          if (v !== '' && Number.isFinite(n)) firehose[k] = n
        }
        const pick = (...names: string[]) => {
          for (const n of names) if (firehose[n] !== undefined) return firehose[n]!
          return null
        }
        return {
          cursor: state.firehose_cursor ?? pick('cursor', 'seq'),
          rate: pick('rate', 'eventsPerSecond', 'events_per_second', 'rate_per_s'),
          lagMs: pick('lagMs', 'lag_ms', 'lag'),
          streamLength: state.stream_length,
          indexerLagEntries: state.indexer_lag_entries,
          indexerPending: state.indexer_pending,
          indexerRate: indexerRate(indexer, ctx.now()),
          schedulerHeartbeatAgeSeconds: state.scheduler_heartbeat_age_seconds,
          firehoseState:
            typeof metrics.state === 'string' && metrics.state !== ''
              ? metrics.state.slice(0, 64)
              : null,
          firehose,
        }
      },
    )
  }
}
