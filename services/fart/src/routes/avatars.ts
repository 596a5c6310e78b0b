import { isValidDid } from '@circles/core'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { hiddenActorAnswer } from '../circle-entry.js'
import type { AppContext } from '../context.js'
import { DidParams, ErrorBody, Unavailable } from './schemas.js'

// An account's avatar thumbnail through this service, for the pages (the network page's top lists): the page
// makes no request to a third party, and the bytes come from the same fetcher and Redis cache as the drawn
// circles' (its host allow-list, size and time limits). Only an account whose profile is already cached is
// answered, so a visitor cannot make the service ask the AppView for arbitrary DIDs.

const DATA_URI = /^data:(image\/(?:png|jpeg|gif));base64,(.+)$/

export function avatarRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/avatars/:did',
      {
        schema: {
          summary: 'An account’s avatar thumbnail (PNG, JPEG or GIF)',
          description:
            'The small avatar of an account whose profile the service has cached (one that appeared in a circle or a stats list), fetched from the AppView’s CDN once and kept a day. 404 when there is none, when the profile is not cached, or when the account opted out or was deleted.',
          tags: ['accounts'],
          params: DidParams,
          response: { 400: ErrorBody, 404: ErrorBody, 503: Unavailable },
        },
      },
      async (req, reply) => {
        const { did } = req.params
        const none = (message: string) =>
          reply.code(404).send({ statusCode: 404, error: 'Not Found', message })
        if (!isValidDid(did)) {
          const message = `not a DID: ${(did as string).slice(0, 64)}`
          return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message })
        }
        if (await hiddenActorAnswer(ctx.redis, ctx.schema, did)) return none('no avatar')
        const url = (await ctx.profiles.peek([did])).profiles.get(did)?.avatar
        if (!url) return none('no cached profile with an avatar')
        const data = (await ctx.avatars.fetch([url])).get(url)
        const m = data ? DATA_URI.exec(data) : null
        if (!m) return none('the avatar could not be fetched')
        return reply
          .type(m[1] as string)
          .header('cache-control', 'public, max-age=3600')
          .send(Buffer.from(m[2] as string, 'base64') as never)
      },
    )
  }
}
