import { createHash } from 'node:crypto'
import type { BackfillState } from '@circles/backfill'
import type { Static } from '@fastify/type-provider-typebox'
import { type FastifyPluginAsyncTypebox, Type } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'
import {
  type BackfillView,
  backfillTag,
  etagWithBackfill,
  isStaleMark,
  withBackfill,
} from '../backfill-view.js'
import type { Circle } from '../circle-compute.js'
import type { AppContext } from '../context.js'
import type { LocalEntry } from '../local-cache.js'
import { type CircleParams, parseRings, parseWeights, parseWindow } from '../params.js'
import { skippedWriteLogger } from '../redis-faults.js'
import { renderPng, renderSvg } from '../render.js'
import { ActorParams, CircleBody, CircleQuery, ErrorBody, Unavailable } from './schemas.js'

function paramsOf(q: Static<typeof CircleQuery>): CircleParams {
  return {
    window: parseWindow(q.window),
    direction: q.direction ?? 'both',
    weights: parseWeights(q.weights, q.nolikes),
    rings: parseRings(q.rings),
  }
}

/**
 * The explorer page's parameters for a drawing's query, as the page writes them (defaults left out, `nolikes`
 * as 1): a member's link in the SVG opens that member's circle drawn the same way.
 */
export function pageQuery(q: Static<typeof CircleQuery>): URLSearchParams {
  const out = new URLSearchParams()
  if (q.window && q.window !== '48h') out.set('window', q.window)
  if (q.direction && q.direction !== 'both') out.set('direction', q.direction)
  if (q.weights) out.set('weights', q.weights)
  if (q.nolikes) out.set('nolikes', '1')
  return out
}

const errors = { 400: ErrorBody, 403: ErrorBody, 404: ErrorBody, 501: ErrorBody, 503: Unavailable }

const JSON_TYPE = 'application/json; charset=utf-8'

/** If-None-Match against one strong ETag: exact, weak (W/) or in a list, or `*`. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false
  if (header === etag) return true
  return header.split(',').some((t) => {
    const tag = t.trim()
    return tag === '*' || tag === etag || tag === `W/${etag}`
  })
}

/**
 * A circle answer. 200s carry the ETag and `no-cache` (a client may keep the body but asks again each time,
 * so an opt-out still takes effect at once); a matching If-None-Match gets 304 and no body. The body and
 * ETag of a 200 already carry the backfill state (`shown`).
 */
function sendCircle(
  req: FastifyRequest,
  reply: FastifyReply,
  r: { status: number; body: Buffer; etag?: string; cache: string },
) {
  reply.header('x-cache', r.cache)
  if (r.status === 200 && r.etag !== undefined) {
    reply.header('etag', r.etag).header('cache-control', 'no-cache')
    if (etagMatches(req.headers['if-none-match'], r.etag)) return reply.code(304).send()
  }
  return reply
    .code(r.status)
    .type(JSON_TYPE)
    .send(r.body as never)
}

/** A 200's body and ETag with the backfill state added (backfill-view.ts). */
function shown(body: Buffer, etag: string, state: BackfillState) {
  return { body: withBackfill(body, state), etag: etagWithBackfill(etag, state) }
}

/** The in-process copy with `view`, unless it was made before the backfill `view` says has ended. */
function shownLocal(hit: LocalEntry, view: BackfillView) {
  if (isStaleMark(hit.mark, view.mark)) return undefined
  const tag = backfillTag(view.state)
  // A hot copy is sent many times under one state: the body with the state is built once per state.
  if (hit.shown?.tag !== tag) hit.shown = { tag, ...shown(hit.body, hit.etag, view.state) }
  return hit.shown
}

export function circleRoutes(ctx: AppContext): FastifyPluginAsyncTypebox {
  /** Sends the in-process copy; false when it is stale (the handler then asks Redis). */
  function sendLocal(
    req: FastifyRequest,
    reply: FastifyReply,
    hit: LocalEntry,
    view: BackfillView,
  ) {
    const s = shownLocal(hit, view)
    if (s === undefined) return false
    ctx.metrics.circleOutcome('hit')
    sendCircle(req, reply, { status: 200, body: s.body, etag: s.etag, cache: 'hit' })
    return true
  }
  const drawings = new Map<string, Promise<Buffer>>()
  const skipped = skippedWriteLogger(ctx.log, 'drawn circle', ctx.now)
  async function draw(body: Buffer, format: 'svg' | 'png', links: URLSearchParams) {
    const circle = JSON.parse(body.toString()) as Circle
    const urls = [circle.actor, ...circle.rings.flatMap((g) => g.members)]
      .map((m) => m.avatar)
      .filter((u): u is string => typeof u === 'string')
    const images = await ctx.avatars.fetch(urls)
    if (format === 'png') return renderPng(renderSvg(circle, images))
    return Buffer.from(renderSvg(circle, images, undefined, links))
  }
  return async (app) => {
    app.get(
      '/v1/circles/:actor',
      {
        schema: {
          summary: 'The interaction circle of an account, as JSON',
          description:
            'Partners ranked by weighted interactions in the window, cut into rings. Opted-out accounts get 403; ' +
            'deleted, taken-down or deactivated accounts 404; they never appear in anyone’s circle. Cached for ' +
            'CIRCLE_CACHE_TTL_SECONDS (header x-cache: hit, miss or shared). `backfill` says whether the ' +
            'account’s history was read from its repo yet; the first request of an account never backfilled ' +
            'queues it (BACKFILL_ON_REQUEST), and the circle is computed again once it is done.',
          tags: ['circles'],
          params: ActorParams,
          querystring: CircleQuery,
          response: { 200: CircleBody, ...errors },
        },
        // The hot path, before query parsing, validation and the handler: this process answered this very URL
        // a moment ago (it passed validation and the opt-out checks then). The global hooks (security
        // headers, CORS, rate limit) have run by now. The backfill state comes from this process's copy of
        // it (refreshed as the circle copies are confirmed), else from one HGETALL; the hot path never
        // enqueues (the handler does, and a circle copy lives 60 s at most).
        onRequest: (req, reply, done) => {
          const hit = ctx.circles.local(req.url)
          if (hit === undefined) return done()
          const view = ctx.backfill.peek(hit.did)
          if (view !== undefined) {
            if (!sendLocal(req, reply, hit, view)) done()
            return
          }
          ctx.backfill.read(hit.did).then(
            (v) => {
              if (!sendLocal(req, reply, hit, v)) done()
            },
            // The handler meets the same trouble and answers it (503 and the rest).
            () => done(),
          )
        },
      },
      async (req, reply) => {
        const params = paramsOf(req.query)
        const { did } = await ctx.actors.resolve(req.params.actor)
        const r = await ctx.circles.get(did, params, req.url)
        ctx.metrics.circleOutcome(r.cache)
        if (r.cache === 'none' || r.status !== 200) return sendCircle(req, reply, r)
        // Only a 200 is an account that may be backfilled: not opted out, not deleted, known to the AppView.
        const view = await ctx.backfill.afterRequest(did, r.backfill)
        return sendCircle(req, reply, { ...r, ...shown(r.body, r.etag, view.state) })
      },
    )

    for (const format of ['svg', 'png'] as const) {
      app.get(
        `/v1/circles/:actor.${format}`,
        {
          schema: {
            summary: `The circle drawn on the server, as ${format.toUpperCase()}`,
            description:
              'Avatars in rings around the actor, initials where there is no avatar. Same query as the JSON route.',
            tags: ['circles'],
            params: ActorParams,
            querystring: CircleQuery,
            response: {
              200: Type.Any({ description: `image/${format === 'svg' ? 'svg+xml' : 'png'}` }),
              ...errors,
            },
          },
        },
        async (req, reply) => {
          const params = paramsOf(req.query)
          const { did } = await ctx.actors.resolve(req.params.actor)
          const r = await ctx.circles.get(did, params)
          ctx.metrics.circleOutcome(r.cache)
          if (r.cache === 'none' || r.status !== 200)
            return reply
              .code(r.status)
              .type(JSON_TYPE)
              .send(r.body as never)
          // A drawing is a request too: it queues the account's backfill as the JSON does (not shown).
          await ctx.backfill.afterRequest(did, r.backfill)
          const links = pageQuery(req.query)
          // The drawing is keyed by the circle's own bytes (a new circle or opt-out change draws anew) and,
          // for an SVG, by its members' links.
          const digest = createHash('sha1')
            .update(format === 'svg' ? `svg?${links}` : format)
            .update(r.body)
            .digest('hex')
          const key = ctx.schema.circleImage(did, digest)
          const type = format === 'svg' ? 'image/svg+xml' : 'image/png'
          // An SVG is a document when opened by itself: it gets the page's policy (no scripts, no framing).
          if (format === 'svg') reply.headers(ctx.documentHeaders)
          const cached = await ctx.redis.getBuffer(key)
          if (cached) return reply.type(type).header('x-cache', 'hit').send(cached)
          // Concurrent requests for one drawing in this process share it: rendering is the costly part.
          let drawing = drawings.get(key)
          if (!drawing) {
            drawing = draw(r.body, format, links)
              .then((out) =>
                ctx.redis.set(key, out, 'EX', ctx.config.circleCacheTtlSeconds).then(
                  () => out,
                  // Drawn is drawn: served even when Redis will not keep it (out of memory, gone).
                  (err: unknown) => {
                    skipped(err)
                    return out
                  },
                ),
              )
              .finally(() => drawings.delete(key))
            drawings.set(key, drawing)
          }
          const out = await drawing
          return reply.type(type).header('x-cache', 'miss').send(out)
        },
      )
    }
  }
}
