import { isValidDid } from '@circles/core'
import { changeOptOuts } from '@circles/interaction-index'
import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { onSendHookHandler } from 'fastify'
import { adminGuard } from '../admin-guard.js'
import type { AppContext } from '../context.js'
import { type QueueBoardOptions, queueBoard } from '../queue-board.js'
import { RETRY_AFTER_SECONDS, redisFaultOfMessage, unavailableBody } from '../redis-faults.js'
import { ActorParams, BackfillBody, DidParams, ErrorBody, Unavailable } from './schemas.js'

// Admin routes exist only when ADMIN_TOKEN is set; who may read and who may change: admin-guard.ts.

const security = [{ bearerAuth: [] }]

/**
 * bull-board answers its own failures with 500 and the error's message (a Redis reply, say): the board's
 * queue connection is its own, so requireRedis does not cover it. Such an answer becomes ours: 503 with
 * Retry-After for Redis trouble, else a plain 500; the original goes to the log.
 */
function boardFailure(ctx: AppContext): onSendHookHandler {
  return async (req, reply, payload) => {
    // bull-board says 500 for any failure; a 503 here is already ours (requireRedis).
    if (reply.statusCode !== 500) return payload
    let message = ''
    try {
      message = String((JSON.parse(String(payload)) as { message?: unknown }).message ?? '')
    } catch {}
    ctx.log.warn({ url: req.url, status: reply.statusCode, message }, 'queue board request failed')
    const fault = redisFaultOfMessage(message)
    reply.type('application/json; charset=utf-8')
    if (fault === null) {
      reply.code(500)
      return JSON.stringify({
        statusCode: 500,
        error: 'Internal Server Error',
        message: 'internal error',
      })
    }
    reply.code(503).header('retry-after', String(RETRY_AFTER_SECONDS))
    return JSON.stringify(unavailableBody(fault))
  }
}

export function adminRoutes(
  ctx: AppContext,
  token: string,
  board?: Pick<QueueBoardOptions, 'connection'>,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.addHook('onRequest', adminGuard(token))

    const lists = [
      {
        path: 'opt-outs',
        key: ctx.schema.optOuts,
        what: 'Opted-out accounts (by an admin, a block of the service account, or the profile label): no circle of their own, never in anyone else’s',
        change:
          'the admin’s opt-out (an override: the account’s own block or label holds whatever this says)',
        // The script keeps the set the union of the reasons, bumps the version (cached circles made before
        // are not served again) and tells every process. Local copies are cleared here after the bump, so
        // a request racing with it cannot put an old circle back (see local-cache.ts).
        set: async (did: string, on: boolean) => {
          const [o] = await changeOptOuts(ctx.redis, ctx.schema, [{ did, reason: 'admin', on }])
          if (o?.changed) ctx.circles.clearLocal()
          return { member: o?.optedOut ?? on, changed: o?.changed ?? false }
        },
      },
      {
        path: 'tracked',
        key: ctx.schema.tracked,
        what: 'Accounts the scheduler snapshots daily',
        change: 'the accounts the scheduler snapshots daily',
        // A tracked account's circle should be whole: its backfill is queued (at the lowest priority) unless
        // it has one already, or is opted out or deleted.
        set: async (did: string, on: boolean) => {
          const n = on
            ? await ctx.redis.sadd(ctx.schema.tracked, did)
            : await ctx.redis.srem(ctx.schema.tracked, did)
          const backfill = on ? (await ctx.backfill.tracked(did)).state : undefined
          return { member: on, changed: n > 0, backfill }
        },
      },
    ]
    for (const l of lists) {
      app.get(
        `/admin/${l.path}`,
        {
          schema: {
            summary: `List: ${l.what}`,
            tags: ['admin'],
            security,
            response: {
              200: Type.Object({
                count: Type.Integer(),
                dids: Type.Array(Type.String()),
                reasons: Type.Optional(
                  Type.Object(
                    {
                      admin: Type.Array(Type.String()),
                      block: Type.Array(Type.String()),
                      label: Type.Array(Type.String()),
                    },
                    {
                      description:
                        'opt-outs only: who left by which way (one account may have several)',
                    },
                  ),
                ),
              }),
              401: ErrorBody,
              403: ErrorBody,
              503: Unavailable,
            },
          },
        },
        async () => {
          const dids = (await ctx.redis.smembers(l.key)).sort()
          if (l.path !== 'opt-outs') return { count: dids.length, dids }
          const [admin, blocks, labels] = await Promise.all([
            ctx.redis.smembers(ctx.schema.optOutsAdmin),
            ctx.redis.hkeys(ctx.schema.optOutsBlocks),
            ctx.redis.smembers(ctx.schema.optOutsLabels),
          ])
          const reasons = { admin: admin.sort(), block: blocks.sort(), label: labels.sort() }
          return { count: dids.length, dids, reasons }
        },
      )
      for (const method of ['PUT', 'DELETE'] as const) {
        app.route({
          method,
          url: `/admin/${l.path}/:did`,
          schema: {
            summary: `${method === 'PUT' ? 'Add to' : 'Remove from'} ${l.change}`,
            tags: ['admin'],
            security,
            params: DidParams,
            response: {
              200: Type.Object({
                did: Type.String(),
                member: Type.Boolean(),
                changed: Type.Boolean(),
                backfill: Type.Optional(BackfillBody),
              }),
              400: ErrorBody,
              401: ErrorBody,
              403: ErrorBody,
              503: Unavailable,
            },
          },
          handler: async (req, reply) => {
            const { did } = req.params
            if (!isValidDid(did)) {
              return reply.code(400).send({
                statusCode: 400,
                error: 'Bad Request',
                message: 'did must be a valid DID: did:plc:<24 base32 chars> or did:web:<host>',
              })
            }
            const { member, changed, ...rest } = await l.set(did, method === 'PUT')
            req.log.info({ did, list: l.path, method, member, changed }, 'admin list change')
            return { did, member, changed, ...rest }
          },
        })
      }
    }

    if (ctx.backfill.hasQueue) {
      app.post(
        '/admin/backfill/:actor',
        {
          schema: {
            summary: 'Backfill an account again (or for the first time), now',
            description:
              'Queues the backfill of the account’s history from its repo as a circle request would, whatever ' +
              'BACKFILL_ON_REQUEST says and even when it was done (its state is dropped first). `queued` is ' +
              'false when one is already queued or running. 409 for an opted-out or deleted account.',
            tags: ['admin'],
            security,
            params: ActorParams,
            response: {
              200: Type.Object({
                did: Type.String(),
                queued: Type.Boolean(),
                backfill: BackfillBody,
              }),
              400: ErrorBody,
              401: ErrorBody,
              403: ErrorBody,
              404: ErrorBody,
              409: ErrorBody,
              503: Unavailable,
            },
          },
        },
        async (req, reply) => {
          const { did } = await ctx.actors.resolve(req.params.actor)
          if (await ctx.backfill.hidden(did)) {
            return reply.code(409).send({
              statusCode: 409,
              error: 'Conflict',
              message:
                'this account opted out or is deleted, taken down or deactivated: it is not backfilled',
            })
          }
          const { queued, view } = await ctx.backfill.requeue(did)
          req.log.info({ did, queued }, 'admin backfill')
          return { did, queued, backfill: view.state }
        },
      )
    }

    if (board) {
      // bull-board's UI is a document, but needs its own scripts and styles: a document's headers without
      // the page policy, for its routes only, which sit behind the token like every admin route.
      const { 'content-security-policy': _, ...boardHeaders } = ctx.documentHeaders
      await app.register(async (scope) => {
        scope.addHook('onRequest', (_req, reply, done) => {
          reply.headers(boardHeaders)
          done()
        })
        scope.addHook('onSend', boardFailure(ctx))
        await scope.register(queueBoard, {
          connection: board.connection,
          schema: ctx.schema,
          basePath: '/admin/queues',
        })
      })
    }
  }
}
