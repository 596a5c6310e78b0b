import { DidCache } from '@circles/interaction-index'
import { wireFor } from '@circles/redis-wire'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply } from 'fastify'
import { etagOf, GONE_BODY, hiddenActorAnswer } from '../circle-entry.js'
import type { AppContext } from '../context.js'
import { readHistory } from '../history.js'
import { createHistoryMemo } from '../history-memo.js'
import { etagMatches } from './circles.js'
import { ActorParams, ErrorBody, HistoryBody, HistoryQuery, Unavailable } from './schemas.js'

const JSON_TYPE = 'application/json; charset=utf-8'

export function historyRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  // Id -> DID lasts as long as the id is in a day blob: shared by every request of this process.
  const cache = new DidCache(100_000)
  const days = ctx.config.historyMemoDays
  const memo = days > 0 ? createHistoryMemo(days) : undefined
  return async (app) => {
    // The partners' checks in one frame each (history.ts, `judge`); its reply timeout is the API's.
    const wire = wireFor(ctx.redis, undefined, { commandTimeout: ctx.config.redisTimeoutMs })
    app.addHook('onClose', () => wire.close())
    const { redis, schema, profiles, now } = ctx
    const deps = { redis, schema, profiles, now, cache, memo, wire }
    app.get(
      '/v1/accounts/:actor/history',
      {
        schema: {
          summary: 'An account’s interactions per day: sent and received by kind, top partners',
          description:
            'From the daily aggregates (the roll-up of the live index and backfilled history, as the 7/30/90-day ' +
            'windows read them), one entry per day, oldest first, zeros for a day with nothing. A day is ' +
            '`complete` once the roll-up folded all its hours; the newest two or three are partial (their ' +
            'latest hours are in the live index, see /v1/interactions). Opted-out accounts get 403, deleted, ' +
            'taken-down or deactivated ones 404; they never appear among anyone’s partners. The ETag is the ' +
            'body’s digest, with `no-cache`: a client revalidates and gets 304 while nothing changed.',
          tags: ['history'],
          params: ActorParams,
          querystring: HistoryQuery,
          response: {
            200: HistoryBody,
            400: ErrorBody,
            403: ErrorBody,
            404: ErrorBody,
            503: Unavailable,
          },
        },
      },
      async (req, reply) => {
        const { did } = await ctx.actors.resolve(req.params.actor)
        // As on the other actor routes: 403 for an opted-out account, 404 once the indexer purged it.
        const hidden = await hiddenActorAnswer(ctx.redis, ctx.schema, did)
        if (hidden)
          return reply
            .code(hidden.code)
            .type(JSON_TYPE)
            .send(hidden.body as never)
        const h = await readHistory(deps, did, {
          days: req.query.days ?? 30,
          top: req.query.top ?? 5,
        })
        if (h === 'gone')
          return reply
            .code(404)
            .type(JSON_TYPE)
            .send(GONE_BODY as never)
        // No generatedAt in the body: the same data gives the same bytes, so the ETag means something.
        const body = Buffer.from(JSON.stringify(h))
        const etag = etagOf(body)
        reply.header('etag', etag).header('cache-control', 'no-cache')
        // Not in the route's schema (no body to describe), hence the plain reply type.
        if (etagMatches(req.headers['if-none-match'], etag)) {
          return (reply as FastifyReply).code(304).send()
        }
        return reply.type(JSON_TYPE).send(body as never)
      },
    )
  }
}
