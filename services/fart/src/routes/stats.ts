import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'
import { readPipelineState } from '../metrics.js'
import { hideFromStats } from '../stats-privacy.js'
import { Unavailable } from './schemas.js'

const NumOrNull = Type.Union([Type.Number(), Type.Null()])

export function statsRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/stats',
      {
        schema: {
          summary: 'Global statistics computed by the scheduler',
          description:
            'The scheduler’s latest global stats document, without accounts that opted out or were deleted since it ran (a top list can then hold fewer than its limit). 503 until it has written one.',
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
        const body = await hideFromStats(ctx.redis, ctx.schema, raw)
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
              schedulerHeartbeatAgeSeconds: NumOrNull,
              firehoseState: Type.Union([Type.String(), Type.Null()]),
              firehose: Type.Record(Type.String(), Type.Number()),
            }),
            503: Unavailable,
          },
        },
      },
      async () => {
        const [state, metrics] = await Promise.all([
          readPipelineState(ctx.redis, ctx.schema, ctx.now()),
          ctx.redis.hgetall(ctx.schema.firehoseMetrics),
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
