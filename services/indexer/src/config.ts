import { hostname } from 'node:os'
import {
  ConfigError,
  type Env,
  envBool,
  envInt,
  envString,
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

const NAMES = [
  ...REDIS_ENV,
  ...METRICS_ENV,
  'LOG_LEVEL',
  'NODE_APP_INSTANCE',
  'INDEXER_CONSUMER',
  'INDEXER_PRUNE_IDLE_MS',
  'INDEXER_BATCH_ENTRIES',
  'INDEXER_BLOCK_MS',
  'INDEXER_CLAIM_IDLE_MS',
  'INDEXER_CLAIM_INTERVAL_MS',
  'INDEXER_METRICS_MS',
  'INDEXER_APPLY_REDIS_SETTINGS',
  'INDEXER_MAIN_LOG_BYTES',
  'INDEXER_RETRY_MS',
  'INDEXER_BACKOFF_MAX_MS',
  'INDEXER_DEAD_LETTER_MAXLEN',
  'INDEXER_OPT_OUT_SYNC_MS',
  'INDEX_ROLLUP_GRACE_HOURS',
] as const

/** Raw, unvalidated settings as they come from the environment (only the names this service reads). */
export type IndexerEnv = Partial<Record<(typeof NAMES)[number], string>>

export interface IndexerConfig extends RedisConfig, MetricsConfig {
  /**
   * Consumer name in the group; unique per process. Stable across restarts under PM2, so that a restarted
   * process takes back its own pending entries. @default `<hostname>-<NODE_APP_INSTANCE>` under PM2,
   * else `<hostname>-<pid>`
   */
  consumer: string
  /** At start, consumers of the group idle this long with no pending entries are deleted (ms). @default 3600000 */
  consumerPruneIdleMs: number
  /** Stream entries per XREADGROUP (each carries up to ~200 events); bigger batches group more of a busy
   * account's records into one script call. @default 500 */
  batchEntries: number
  /** XREADGROUP BLOCK (ms); also bounds how long shutdown waits for an idle read. @default 1000 */
  blockMs: number
  /** Entries pending this long in any consumer (dead or stuck) are reclaimed with XAUTOCLAIM (ms). @default 60000 */
  claimIdleMs: number
  /** How often to look for such entries (ms). @default 15000 */
  claimIntervalMs: number
  /** Metrics log line and Redis hash update interval (ms). @default 10000 */
  metricsIntervalMs: number
  /** Raise the Redis settings the layout depends on at start (warns when CONFIG is refused). @default true */
  applyRedisSettings: boolean
  /** Bytes of an account's main log before its records spill into hourly logs. @default 8192 */
  mainLogBytes: number
  /**
   * Wait after a failed batch before retrying it (ms); while Redis refuses work (OOM, BUSY, LOADING, a lost
   * connection...) the first wait of a back-off that doubles up to `backoffMaxMs`. @default 1000
   */
  retryMs: number
  /** Longest wait of that back-off (ms). @default 30000 */
  backoffMaxMs: number
  /** Dead letters kept (`MAXLEN ~` of the dead-letter stream; the oldest go first). @default 1000 */
  deadLetterMaxLen: number
  /**
   * How often to look whether the opt-out set moved (an admin change; the firehose's own opt-out events are
   * acted on after their batch): a new opt-out's index is purged and closed, a return reopens it (ms).
   * @default 1000
   */
  optOutSyncMs: number
  /** Hours an hour the scheduler's roll-up has not folded is kept after it left the 48-hour window. @default 6 */
  rollupGraceHours: number
  logLevel: LogLevel
}

/** PM2 sets NODE_APP_INSTANCE (0, 1, ...) per process of an app: the same number after a restart. */
function appInstance(env: IndexerEnv): number | null {
  const instance = env.NODE_APP_INSTANCE
  return instance !== undefined && /^\d+$/.test(instance) ? Number(instance) : null
}

function defaultConsumer(env: IndexerEnv): string {
  const instance = appInstance(env)
  return instance !== null ? `${hostname()}-${instance}` : `${hostname()}-${process.pid}`
}

export function readEnv(env: Env = process.env): IndexerEnv {
  return pickEnv(env, NAMES)
}

/** Applies defaults and validates; a bad value throws a ConfigError naming the variable. */
export function toConfig(env: IndexerEnv): IndexerConfig {
  const config: IndexerConfig = {
    ...redisConfig(env),
    // One port per PM2 instance, counting up from 9110 (room for ten before anything else's).
    ...metricsConfig(env, 9110, appInstance(env) ?? 0),
    consumer: envString(env, 'INDEXER_CONSUMER', defaultConsumer(env)),
    consumerPruneIdleMs: envInt(env, 'INDEXER_PRUNE_IDLE_MS', 3_600_000, {
      min: 1,
      max: 30 * 86_400_000,
    }),
    batchEntries: envInt(env, 'INDEXER_BATCH_ENTRIES', 500, { min: 1, max: 10_000 }),
    blockMs: envInt(env, 'INDEXER_BLOCK_MS', 1000, { min: 1, max: 60_000 }),
    claimIdleMs: envInt(env, 'INDEXER_CLAIM_IDLE_MS', 60_000, { min: 1, max: 86_400_000 }),
    claimIntervalMs: envInt(env, 'INDEXER_CLAIM_INTERVAL_MS', 15_000, { min: 10, max: 3_600_000 }),
    metricsIntervalMs: envInt(env, 'INDEXER_METRICS_MS', 10_000, { min: 100, max: 3_600_000 }),
    applyRedisSettings: envBool(env, 'INDEXER_APPLY_REDIS_SETTINGS', true),
    mainLogBytes: envInt(env, 'INDEXER_MAIN_LOG_BYTES', 8192, { min: 64, max: 1_048_576 }),
    retryMs: envInt(env, 'INDEXER_RETRY_MS', 1000, { min: 1, max: 600_000 }),
    backoffMaxMs: envInt(env, 'INDEXER_BACKOFF_MAX_MS', 30_000, { min: 1, max: 3_600_000 }),
    deadLetterMaxLen: envInt(env, 'INDEXER_DEAD_LETTER_MAXLEN', 1000, { min: 1, max: 10_000_000 }),
    optOutSyncMs: envInt(env, 'INDEXER_OPT_OUT_SYNC_MS', 1000, { min: 10, max: 600_000 }),
    rollupGraceHours: envInt(env, 'INDEX_ROLLUP_GRACE_HOURS', 6, { min: 1, max: 24 * 14 }),
    logLevel: logLevel(env),
  }
  if (config.backoffMaxMs < config.retryMs) {
    throw new ConfigError(
      `INDEXER_BACKOFF_MAX_MS (${config.backoffMaxMs}) must be at least INDEXER_RETRY_MS (${config.retryMs})`,
    )
  }
  if (!/^[\w.:@-]{1,128}$/.test(config.consumer)) {
    throw new ConfigError(
      `INDEXER_CONSUMER must be 1-128 of [A-Za-z0-9_.:@-], got ${JSON.stringify(config.consumer)}`,
    )
  }
  return config
}
