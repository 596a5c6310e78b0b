import { NAME_MAX_CHARS } from '@circles/bsky-client'
import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'
import { skippedWriteLogger } from '../redis-faults.js'
import { suggestActors } from '../suggest.js'
import { ErrorBody, Unavailable } from './schemas.js'

const SuggestQuery = Type.Object({
  q: Type.String({
    minLength: 1,
    maxLength: NAME_MAX_CHARS,
    description: `the start of a handle or display name (1..${NAME_MAX_CHARS} characters: letters, digits, spaces, . _ : -; a leading @ is ignored)`,
  }),
  limit: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 20, default: 8, description: '1..20, default 8' }),
  ),
})

const SuggestBody = Type.Object({
  actors: Type.Array(
    Type.Object({
      did: Type.String(),
      handle: Type.String(),
      displayName: Type.Optional(Type.String()),
      avatar: Type.Optional(Type.String()),
    }),
  ),
})

export function actorRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  const deps = { ...ctx, onSkipped: skippedWriteLogger(ctx.log, 'name index cleanup', ctx.now) }
  return async (app) => {
    app.get(
      '/v1/actors/suggest',
      {
        schema: {
          summary: 'Accounts whose handle or display name starts with a prefix, for suggestions',
          description:
            'From the profiles this service has cached (no AppView call): handles first, then display names ' +
            '(case-insensitive), each account once. Accounts that opted out, were deleted or taken down, or ' +
            'whose profile is no longer cached are left out, so an account the service never looked up is not ' +
            'suggested. Rate limited like every public route.',
          tags: ['actors'],
          querystring: SuggestQuery,
          response: { 200: SuggestBody, 400: ErrorBody, 503: Unavailable },
        },
      },
      async (req) => ({ actors: await suggestActors(deps, req.query.q, req.query.limit ?? 8) }),
    )
  }
}
