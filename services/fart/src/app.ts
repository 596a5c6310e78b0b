import type { BackfillJobData } from '@circles/backfill'
import {
  type BskyClient,
  createBskyClient,
  createProfileCache,
  type ProfileCache,
} from '@circles/bsky-client'
import { createLogger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import { optOutText, webAssets } from '@circles/web'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Queue } from 'bullmq'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  LogController,
} from 'fastify'
import type { Redis } from 'ioredis'
import { createActorResolver } from './actors.js'
import { createAvatarFetcher } from './avatars.js'
import { createBackfillTracker } from './backfill-tracker.js'
import { createCircleService } from './circles.js'
import type { FartConfig } from './config.js'
import type { AppContext } from './context.js'
import { corsHook } from './cors.js'
import { createErrorHandler, describeSchemaErrors } from './errors.js'
import type { LivePartners, LongPartners } from './index-source.js'
import { createMetrics } from './metrics.js'
import { createNotifier } from './notify.js'
import { registerRateLimit } from './rate-limit.js'
import { requireRedis } from './redis-faults.js'
import { actorRoutes } from './routes/actors.js'
import { adminRoutes } from './routes/admin.js'
import { avatarRoutes } from './routes/avatars.js'
import { circleRoutes } from './routes/circles.js'
import { historyRoutes } from './routes/history.js'
import { interactionRoutes } from './routes/interactions.js'
import { opsRoutes } from './routes/ops.js'
import { pageRoutes } from './routes/page.js'
import { ErrorBody } from './routes/schemas.js'
import { statsRoutes } from './routes/stats.js'
import { securityHeaders } from './security-headers.js'

export interface AppDeps {
  config: FartConfig
  /** Shared connection; the app does not close it (whoever created it does). */
  redis: Redis
  schema: RedisSchema
  index: LivePartners
  /** 7/30/90-day windows; without it those windows answer 501. */
  longWindows?: LongPartners
  /** Defaults to a client for `config.appviewUrl`, reporting to /metrics. */
  bsky?: BskyClient
  /**
   * The scheduler's queue board (bull-board, queue-board.ts) at /admin/queues, inside the admin scope (behind
   * the token), on this connection (the caller's, not closed by the app). Without it there is no board.
   */
  queueBoard?: { connection: Redis }
  /**
   * The `backfill` queue (packages/backfill), the caller's (not closed by the app): circle requests of
   * accounts never backfilled, tracked accounts and the admin route enqueue there. Without it nothing is
   * enqueued and the admin route does not exist; circles still show the state.
   */
  backfillQueue?: Queue<BackfillJobData>
  now?: () => number
  /**
   * /metrics carries the process's own metrics too (CPU, memory, event loop, GC): for the one app a
   * process serves, not for every app a test builds. @default false
   */
  processMetrics?: boolean
}

/** The whole HTTP app, ready for `inject()` or `listen()`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { config, redis, schema } = deps
  const now = deps.now ?? Date.now
  const log = createLogger('fart')
  const metrics = createMetrics(redis, schema, deps.processMetrics, config.firehoseShards)
  const bsky =
    deps.bsky ??
    createBskyClient({
      appviewUrl: config.appviewUrl,
      timeoutMs: config.appviewTimeoutMs,
      onCall: metrics.onAppViewCall,
      logger: createLogger('fart:appview'),
    })
  const profiles: ProfileCache = createProfileCache({
    redis,
    schema,
    client: bsky,
    ttlSeconds: config.profileTtlSeconds,
  })
  // Opt-out changes and finished computations, pushed between API processes (closed with the app).
  const notifier = await createNotifier({ redis, schema, log })
  const security = securityHeaders({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        // No image from elsewhere: avatars come through /v1/avatars or inside the drawing as data: URIs, so
        // a page makes no third-party request (issue 21) and leaks no visitor to the CDN.
        imgSrc: ["'self'", 'data:'],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
      },
    },
    crossOriginResourcePolicy: { policy: 'cross-origin' },
  })
  const documentHook = (_req: unknown, reply: FastifyReply, done: () => void) => {
    reply.headers(security.document)
    done()
  }
  const backfill = createBackfillTracker({
    redis,
    schema,
    queue: deps.backfillQueue,
    onRequest: config.backfillOnRequest,
    maxWaiting: config.backfillMaxWaiting,
    ttlMs: config.localCacheMs,
    log,
    now,
  })
  const ctx: AppContext = {
    config,
    documentHeaders: security.document,
    redis,
    schema,
    index: deps.index,
    profiles,
    metrics,
    log,
    now,
    actors: createActorResolver({
      redis,
      schema,
      bsky,
      ttlSeconds: config.handleTtlSeconds,
      log,
    }),
    avatars: createAvatarFetcher({
      redis,
      schema,
      policy: {
        hosts: new Set(config.avatarHosts),
        insecureHosts: new Set(config.avatarInsecureHosts),
        maxBytes: config.avatarMaxBytes,
        timeoutMs: config.avatarTimeoutMs,
      },
      log,
    }),
    circles: createCircleService({
      redis,
      schema,
      index: deps.index,
      longWindows: deps.longWindows,
      profiles,
      ttlSeconds: config.circleCacheTtlSeconds,
      partialTtlSeconds: config.partialCacheTtlSeconds,
      lockMs: config.circleLockMs,
      localMs: config.localCacheMs,
      notifier,
      log,
      now,
      onBackfill: backfill.remember,
    }),
    backfill,
  }

  const app = Fastify({
    loggerInstance: createLogger('fart:http') as FastifyBaseLogger,
    // Per-request log lines would cost more than a cached circle; latency lives in /metrics instead.
    logController: new LogController({ disableRequestLogging: true }),
    // No child logger per request (pino serialises its bindings on each one); errors log the URL instead.
    childLoggerFactory: (logger) => logger,
    // A hop count, as proxy-addr takes it (Fastify's types have no number): hop 0 is the socket's peer.
    trustProxy:
      config.trustProxy === 1 ? (_addr: string, hop: number) => hop < 1 : config.trustProxy,
    bodyLimit: 16 * 1024,
    routerOptions: { maxParamLength: 300 },
    // verbose: errors carry the failing schema, so a message can quote its description instead of a regex.
    ajv: { customOptions: { verbose: true } },
    schemaErrorFormatter: describeSchemaErrors,
  }).withTypeProvider<TypeBoxTypeProvider>()

  app.addSchema(ErrorBody)
  app.addHook('onClose', async () => {
    ctx.circles.close()
    await notifier.close()
  })

  // A callback hook, not an async one: no promise per request.
  app.addHook('onResponse', (req, reply, done) => {
    metrics.httpDuration.observe(
      req.method,
      req.routeOptions.url ?? 'unmatched',
      reply.statusCode,
      reply.elapsedTime / 1000,
    )
    done()
  })

  app.setErrorHandler(createErrorHandler(now))

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      statusCode: 404,
      error: 'Not Found',
      message: `no route ${req.method} ${req.url.split('?')[0]}`,
    }),
  )

  // Security and CORS headers in one hook, all computed at start (see security-headers.ts, cors.ts);
  // documents (the page, the docs, a drawn SVG) add the rest of helmet's.
  app.addHook(
    'onRequest',
    corsHook({
      origins: config.corsOrigins,
      methods: ['GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS'],
      headers: security.every,
    }),
  )
  // Lets preflights reach the hook above, which answers them.
  app.options('*', { schema: { hide: true } }, (_req, reply) => reply.code(204).send())
  if (config.rateLimitMax > 0) {
    registerRateLimit(app as unknown as FastifyInstance, {
      redis,
      key: schema.rateLimit,
      max: config.rateLimitMax,
      windowMs: config.rateLimitWindowMs,
      log,
    })
  }
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'FART: Bluesky interaction circles API',
        version: '0.1.0',
        description: `Circles, interactions and pipeline stats from the live interaction index.\n\nPrivacy: ${optOutText(config.serviceDid)} An opted-out account answers 403 (OptedOut) on its own routes; a deleted or taken-down one 404 (AccountUnavailable).`,
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer' } } },
    },
  })
  await app.register(async (docs) => {
    docs.addHook('onRequest', documentHook)
    await docs.register(swaggerUi, { routePrefix: '/docs', staticCSP: true })
  })

  await app.register(opsRoutes(ctx))
  await app.register(pageRoutes(security.document, config.serviceDid, await webAssets()))
  // Every route below needs Redis: 503 at once while the connection is down (see requireRedis).
  await app.register(async (needsRedis) => {
    needsRedis.addHook('onRequest', requireRedis(redis))
    await needsRedis.register(circleRoutes(ctx))
    await needsRedis.register(interactionRoutes(ctx))
    await needsRedis.register(historyRoutes(ctx))
    await needsRedis.register(statsRoutes(ctx))
    await needsRedis.register(actorRoutes(ctx))
    await needsRedis.register(avatarRoutes(ctx))
    if (config.adminToken) {
      await needsRedis.register(adminRoutes(ctx, config.adminToken, deps.queueBoard))
    }
  })

  return app as unknown as FastifyInstance
}
