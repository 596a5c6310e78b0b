import { createLogger, logConnectionErrors } from '@circles/logging'
import { type MetricsServer, startMetricsServer } from '@circles/metrics'
import { createSchema } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import { resolvePds } from '@circles/repo-source'
import type { BotConfig } from './config.js'
import { createMentionReader, ensureGroup } from './mention-reader.js'
import { type BotCounters, createMetricsPublisher, emptyCounters } from './metrics.js'
import { PdsClient } from './pds-client.js'
import { createBotRegistry } from './prometheus.js'
import { createReplier } from './replier.js'
import { createSession, EXIT_LOGIN_REFUSED, LoginRefusedError } from './session.js'

export interface BotDeps {
  /** Clock (tests move it). @default Date.now */
  now?: () => number
  /** The bot's PDS, when known (tests); else resolved from BOT_DID through BOT_PLC_URL. */
  pdsUrl?: string
  /** Pause after a failed mention before it is tried again (ms). @default 5000 */
  retryMs?: number
}

export interface BotService {
  start(): Promise<void>
  /** Stops reading, finishes the mention in hand, closes connections. Idempotent. */
  close(): Promise<void>
  counters(): BotCounters
}

const log = createLogger('bot:service')

export function createBotService(config: BotConfig, deps: BotDeps = {}): BotService {
  const counters = emptyCounters()
  const account = config.account
  if (!config.enabled || account === null) {
    return {
      counters: () => counters,
      async start() {
        log.info('the bot is disabled (BOT_ENABLED=false): nothing to do')
      },
      async close() {},
    }
  }
  const schema = createSchema(config.redisPrefix)
  // `reads` carries the blocking XREADGROUP, `redis` everything else: a blocked read delays no reply.
  const reads = connectRedis(config, { lazyConnect: true, maxRetriesPerRequest: null })
  const redis = connectRedis(config, { lazyConnect: true, maxRetriesPerRequest: 3 })
  logConnectionErrors(reads, log, 'Redis connection (stream reads)')
  logConnectionErrors(redis, log)
  const publish = createMetricsPublisher({ redis, schema, counters, log })
  let reader: ReturnType<typeof createMentionReader> | null = null
  let timer: NodeJS.Timeout | null = null
  let prometheus: MetricsServer | null = null
  let closing: Promise<void> | null = null

  async function start(): Promise<void> {
    if (reader || closing || account === null) return
    await reads.connect()
    await redis.connect()
    const pdsUrl = deps.pdsUrl ?? (await resolvePds(account.did, { plcUrl: config.plcUrl })).pds
    const pds = new PdsClient(pdsUrl)
    const session = createSession({ redis, schema, pds, account, counters, log, now: deps.now })
    // Checks the login now: wrong credentials stop the start, once, with the reason (LoginRefusedError,
    // exit code EXIT_LOGIN_REFUSED).
    await session.accessToken()
    await ensureGroup(redis, schema)
    const replier = createReplier({
      redis,
      schema,
      config,
      botDid: account.did,
      pds,
      session,
      counters,
      log,
      now: deps.now,
    })
    reader = createMentionReader({
      reads,
      redis,
      schema,
      consumer: config.consumer,
      blockMs: config.blockMs,
      counters,
      log,
      retryMs: deps.retryMs,
      async onMention(m) {
        if (m.author === account.did) {
          if (m.parent !== null) await replier.confirm(m.parent, m.rkey)
          return
        }
        try {
          const outcome = await replier.handle(m)
          log.debug({ author: m.author, rkey: m.rkey, outcome }, 'mention handled')
        } catch (err) {
          // The app password was revoked while running: retrying would only repeat the refused login.
          if (err instanceof LoginRefusedError) {
            log.fatal({ err }, 'login refused: the bot stops')
            process.exitCode = EXIT_LOGIN_REFUSED
            void close()
          }
          throw err
        }
      },
    })
    reader.start()
    timer = setInterval(() => void publish(), config.metricsIntervalMs)
    timer.unref()
    prometheus = await startMetricsServer({
      registry: createBotRegistry(counters),
      port: config.metricsPort,
      host: config.metricsHost,
      log,
    })
    log.info({ did: account.did, pds: pdsUrl, consumer: config.consumer }, 'bot started')
  }

  async function close(): Promise<void> {
    closing ??= (async () => {
      if (timer) clearInterval(timer)
      // The read connection goes first: a blocked XREADGROUP then ends at once.
      reads.disconnect()
      await reader?.stop().catch((err: unknown) => log.error({ err }, 'stopping the reader failed'))
      await publish().catch(() => undefined)
      await prometheus?.close()
      await redis.quit().catch(() => redis.disconnect())
    })()
    return closing
  }

  return { counters: () => counters, start, close }
}
