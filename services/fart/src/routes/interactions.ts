import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { hiddenActorAnswer } from '../circle-entry.js'
import type { AppContext } from '../context.js'
import {
  ActorParams,
  ErrorBody,
  InteractionsBody,
  InteractionsQuery,
  Unavailable,
} from './schemas.js'

export function interactionRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/interactions/:actor',
      {
        schema: {
          summary: 'Per-partner interaction counts by kind, sent and received, paginated',
          description:
            'Partners ordered by total interactions in the window. Opted-out partners are left out of a page, so ' +
            'a page can hold fewer than `limit`; follow `cursor` until it is absent.',
          tags: ['interactions'],
          params: ActorParams,
          querystring: InteractionsQuery,
          response: {
            200: InteractionsBody,
            400: ErrorBody,
            403: ErrorBody,
            404: ErrorBody,
            503: Unavailable,
          },
        },
      },
      async (req, reply) => {
        const { did } = await ctx.actors.resolve(req.params.actor)
        const window = req.query.window ?? '48h'
        const windowHours = Number(window.slice(0, -1))
        // As for circles: an opted-out account answers 403, a deleted or taken-down one (the indexer's purge
        // marker) 404, never an empty list that reads as "no interactions".
        const hidden = await hiddenActorAnswer(ctx.redis, ctx.schema, did)
        if (hidden)
          return reply
            .code(hidden.code)
            .type('application/json')
            .send(hidden.body as never)
        const page = await ctx.index.partners({
          did,
          windowHours,
          limit: req.query.limit ?? 50,
          cursor: req.query.cursor,
        })
        const dids = page.partners.map((p) => p.did)
        const flags = dids.length > 0 ? await ctx.redis.smismember(ctx.schema.optOuts, ...dids) : []
        const visible = page.partners.filter((_, i) => flags[i] !== 1)
        const lookup = await ctx.profiles.get(visible.map((p) => p.did))
        const partners = visible
          .filter((p) => !lookup.missing.has(p.did))
          .map((p) => {
            const prof = lookup.profiles.get(p.did)
            return {
              ...p,
              handle: prof?.handle,
              displayName: prof?.displayName,
              avatar: prof?.avatar,
            }
          })
        return { actor: did, window: `${windowHours}h`, partners, cursor: page.cursor }
      },
    )
  }
}
