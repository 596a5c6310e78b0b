import {
  ConfigError,
  type Env,
  envChecked,
  envInt,
  envOptional,
  envUrl,
  type LogLevel,
  logLevel,
  METRICS_ENV,
  type MetricsConfig,
  metricsConfig,
  pickEnv,
  REDIS_ENV,
  type RedisConfig,
  redisConfig,
} from '@circles/config'
import { isValidDid } from '@circles/core'

const NAMES = [
  ...REDIS_ENV,
  ...METRICS_ENV,
  'LOG_LEVEL',
  'RELAY_URL',
  'FIREHOSE_CURSOR',
  'FIREHOSE_BATCH_FRAMES',
  'FIREHOSE_FLUSH_MS',
  'FIREHOSE_EVENTS_PER_ENTRY',
  'FIREHOSE_MAX_LAG',
  'FIREHOSE_RESUME_LAG',
  'FIREHOSE_LAG_CHECK_MS',
  'FIREHOSE_MAXLEN',
  'FIREHOSE_STALL_MS',
  'FIREHOSE_BACKOFF_MIN_MS',
  'FIREHOSE_BACKOFF_MAX_MS',
  'FIREHOSE_METRICS_MS',
  'FIREHOSE_CHECKPOINT_FILE',
  'FIREHOSE_CHECKPOINT_MS',
  'FIREHOSE_REFILL_HOURS',
  'SERVICE_DID',
  'BOT_DID',
] as const

/** Raw, unvalidated settings as they come from the environment (only the names this service reads). */
export type FirehoseEnv = Partial<Record<(typeof NAMES)[number], string>>

export interface FirehoseConfig extends RedisConfig, MetricsConfig {
  /** Relay (or PDS) base URL; the service appends `/xrpc/com.atproto.sync.subscribeRepos`.
   * @default wss://bsky.network */
  relayUrl: string
  /** Start cursor, used only when no cursor is stored in Redis. Unset: start live. */
  startCursor: number | null
  /** Flush when this many frames are waiting. @default 1000 */
  batchFrames: number
  /** Flush at least this often while frames are waiting (ms). @default 50 */
  flushIntervalMs: number
  /** Events per stream entry: a flush writes ceil(events / this) entries. @default 200 */
  eventsPerEntry: number
  /** Stop reading when the indexer group's lag (unread entries) passes this. @default 2000 */
  maxLag: number
  /** Resume reading once the lag has fallen to this. @default 500 */
  resumeLag: number
  /** How often the lag is read (ms), while reading and while paused. @default 1000 */
  lagCheckMs: number
  /** Last-resort `MAXLEN ~` of the stream; must exceed maxLag. @default 20000 */
  maxLen: number
  /** Reconnect when no message arrived for this long (ms). @default 30000 */
  stallTimeoutMs: number
  /** Reconnect backoff bounds (ms): exponential with full jitter. @default 500 / 30000 */
  backoffMinMs: number
  backoffMaxMs: number
  /** Metrics log line and Redis hash update interval (ms). @default 10000 */
  metricsIntervalMs: number
  /**
   * File that remembers the last cursor outside Redis, so that a Redis that lost its data does not send the
   * firehose live (see cursor-memory.ts). Unset: memory only (PM2 and `pnpm start` set `data/...`).
   */
  checkpointFile: string | null
  /** How often the checkpoint file is rewritten while the cursor moves (ms). @default 5000 */
  checkpointIntervalMs: number
  /**
   * After Redis lost its data (and the index with it), read the relay again from this many hours back (it
   * keeps 72); 0: only what was published and not yet applied. @default 49
   */
  refillHours: number
  /**
   * The service's own Bluesky account: an account that blocks it opts out (see core privacy.ts). Unset:
   * blocks are not read (the profile self-label still works).
   */
  serviceDid: string | null
  /** The circles bot's account (BOT_DID): posts mentioning it, and its own, are published for it. */
  botDid: string | null
  logLevel: LogLevel
}

export function readEnv(env: Env = process.env): FirehoseEnv {
  return pickEnv(env, NAMES)
}

/** Applies defaults and validates; a bad value throws a ConfigError naming the variable. */
export function toConfig(env: FirehoseEnv): FirehoseConfig {
  const cursor = envOptional(env, 'FIREHOSE_CURSOR')
  let startCursor: number | null = null
  if (cursor !== undefined) {
    startCursor = envInt(env, 'FIREHOSE_CURSOR', 0, { min: 0 })
  }
  const config: FirehoseConfig = {
    ...redisConfig(env),
    ...metricsConfig(env, 9101),
    relayUrl: envUrl(env, 'RELAY_URL', 'wss://bsky.network', ['wss:', 'ws:']).replace(/\/+$/, ''),
    startCursor,
    batchFrames: envInt(env, 'FIREHOSE_BATCH_FRAMES', 1000, { min: 1, max: 100_000 }),
    flushIntervalMs: envInt(env, 'FIREHOSE_FLUSH_MS', 50, { min: 1, max: 60_000 }),
    eventsPerEntry: envInt(env, 'FIREHOSE_EVENTS_PER_ENTRY', 200, { min: 1, max: 10_000 }),
    maxLag: envInt(env, 'FIREHOSE_MAX_LAG', 2000, { min: 1 }),
    resumeLag: envInt(env, 'FIREHOSE_RESUME_LAG', 500, { min: 0 }),
    lagCheckMs: envInt(env, 'FIREHOSE_LAG_CHECK_MS', 1000, { min: 10, max: 600_000 }),
    maxLen: envInt(env, 'FIREHOSE_MAXLEN', 20_000, { min: 1 }),
    stallTimeoutMs: envInt(env, 'FIREHOSE_STALL_MS', 30_000, { min: 100, max: 3_600_000 }),
    backoffMinMs: envInt(env, 'FIREHOSE_BACKOFF_MIN_MS', 500, { min: 1, max: 600_000 }),
    backoffMaxMs: envInt(env, 'FIREHOSE_BACKOFF_MAX_MS', 30_000, { min: 1, max: 3_600_000 }),
    metricsIntervalMs: envInt(env, 'FIREHOSE_METRICS_MS', 10_000, { min: 100, max: 3_600_000 }),
    checkpointFile: envOptional(env, 'FIREHOSE_CHECKPOINT_FILE') ?? null,
    checkpointIntervalMs: envInt(env, 'FIREHOSE_CHECKPOINT_MS', 5000, { min: 100, max: 3_600_000 }),
    refillHours: envInt(env, 'FIREHOSE_REFILL_HOURS', 49, { min: 0, max: 72 }),
    serviceDid: envChecked(env, 'SERVICE_DID', isValidDid, 'a DID (did:plc:… or did:web:…)'),
    botDid: envChecked(env, 'BOT_DID', isValidDid, 'a DID (did:plc:… or did:web:…)'),
    logLevel: logLevel(env),
  }
  if (config.resumeLag >= config.maxLag) {
    throw new ConfigError(
      `FIREHOSE_RESUME_LAG (${config.resumeLag}) must be below FIREHOSE_MAX_LAG (${config.maxLag})`,
    )
  }
  // The guard must sit well above the pause bound, or it would trim unread entries in normal operation.
  if (config.maxLen < 2 * config.maxLag) {
    throw new ConfigError(
      `FIREHOSE_MAXLEN (${config.maxLen}) must be at least twice FIREHOSE_MAX_LAG (${config.maxLag})`,
    )
  }
  if (config.backoffMaxMs < config.backoffMinMs) {
    throw new ConfigError(
      `FIREHOSE_BACKOFF_MAX_MS (${config.backoffMaxMs}) must be at least FIREHOSE_BACKOFF_MIN_MS (${config.backoffMinMs})`,
    )
  }
  return config
}
