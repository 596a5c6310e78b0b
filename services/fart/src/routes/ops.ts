import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'
import { readPipelineState } from '../metrics.js'
import { RETRY_AFTER_SECONDS, redisFault, unavailableBody } from '../redis-faults.js'

// Liveness, readiness and metrics: not rate limited, and none of them fails for Redis trouble with a 500.
// /healthz never touches Redis (a restart would cure nothing while Redis is away); /readyz says 503 and why.

const noLimit = { rateLimit: false as const }

const NotReady = Type.Object(
  { ok: Type.Boolean(), reason: Type.String() },
  {
    description: 'Not ready: Redis unreachable, loading or busy, or the indexer too far behind',
    headers: { 'retry-after': { type: 'integer', description: 'seconds, when Redis is at fault' } },
  },
)

export function opsRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const { redis, schema, config } = ctx
  return async (app) => {
    app.get(
      '/healthz',
      {
        config: noLimit,
        schema: {
          summary: 'Alive (whatever the state of Redis)',
          tags: ['ops'],
          response: { 200: Type.Object({ ok: Type.Boolean() }) },
        },
      },
      async () => ({ ok: true }),
    )
    app.get(
      '/readyz',
      {
        config: noLimit,
        schema: {
          summary:
            'Ready: Redis answers and the indexer is within READY_MAX_LAG_ENTRIES of the stream',
          tags: ['ops'],
          response: {
            200: Type.Object({
              ok: Type.Boolean(),
              redisMs: Type.Number(),
              indexerLagEntries: Type.Union([Type.Number(), Type.Null()]),
            }),
            503: NotReady,
          },
        },
      },
      async (_req, reply) => {
        const t0 = performance.now()
        let state: Awaited<ReturnType<typeof readPipelineState>>
        let redisMs: number
        try {
          // Not queued behind a reconnection: the probe wants the state now.
          if (redis.status !== 'ready') throw new Error('Connection is closed.')
          await redis.ping()
          redisMs = performance.now() - t0
          state = await readPipelineState(redis, schema, ctx.now(), ctx.config.firehoseShards)
        } catch (err) {
          if (redisFault(err) === null) throw err
          const reason = unavailableBody('unavailable', err).message.split(':')[0]!
          return reply
            .code(503)
            .header('retry-after', String(RETRY_AFTER_SECONDS))
            .send({ ok: false, reason })
        }
        const lag = state.indexer_lag_entries
        if (lag !== null && lag > config.readyMaxLagEntries) {
          return reply.code(503).send({
            ok: false,
            reason: `indexer is ${lag} stream entries behind (max ${config.readyMaxLagEntries})`,
          })
        }
        return { ok: true, redisMs: Math.round(redisMs * 100) / 100, indexerLagEntries: lag }
      },
    )
    app.get('/metrics', { config: noLimit, schema: { hide: true } }, async (_req, reply) =>
      reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.registry.metrics()),
    )
  }
}
