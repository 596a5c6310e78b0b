import { BACKFILL_ENV, type BackfillConfig, backfillConfig } from '@circles/backfill'
import {
  type Env,
  envInt,
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
  ...BACKFILL_ENV,
  ...METRICS_ENV,
  'LOG_LEVEL',
  'LIVE_WINDOW_HOURS',
  'ROLLUP_RETENTION_DAYS',
  'SNAPSHOT_RETENTION_DAYS',
  'ROLLUP_EVERY_MS',
  'PRUNE_EVERY_MS',
  'DID_TABLE_SWEEP_HOURS',
  'STATS_EVERY_MS',
  'SNAPSHOT_EVERY_MS',
  'SCHEDULER_HEARTBEAT_MS',
  'JOB_ATTEMPTS',
  'JOB_BACKOFF_MS',
  'JOB_KEEP_FAILED',
] as const

/** Raw, unvalidated settings as they come from the environment (only the names this service reads). */
export type SchedulerEnv = Partial<Record<(typeof NAMES)[number], string>>

export interface SchedulerConfig extends RedisConfig, MetricsConfig {
  logLevel: LogLevel
  /** Hours the live index keeps; an hour is rolled up once its end is this far in the past. @default 48 */
  liveWindowHours: number
  /** Days the long-term daily aggregates are kept. @default 90 */
  retentionDays: number
  /** Days daily snapshots of tracked accounts are kept. @default 365 */
  snapshotRetentionDays: number
  /** Roll-up schedule. @default 300000 (every 5 min: an hour is folded within minutes of leaving) */
  rollupEveryMs: number
  /** Pruning schedule. @default 3600000 */
  pruneEveryMs: number
  /** Hours in which the prune's runs read the whole DID table once (a slice per run). @default 24 */
  didTableSweepHours: number
  /** Global stats schedule. @default 300000 */
  statsEveryMs: number
  /** Snapshot schedule (each run snapshots every complete day not yet snapshotted). @default 3600000 */
  snapshotEveryMs: number
  /** Heartbeat interval; the key lives three times as long. @default 10000 */
  heartbeatMs: number
  /** Attempts per job (exponential backoff from `backoffMs`). @default 5 */
  attempts: number
  /** @default 10000 */
  backoffMs: number
  /** Failed jobs kept per queue for inspection. @default 1000 */
  keepFailed: number
  /** The `backfill` queue's worker (packages/backfill, BACKFILL_*). */
  backfill: BackfillConfig
}

export function readEnv(env: Env = process.env): SchedulerEnv {
  return pickEnv(env, NAMES)
}

/** Applies defaults and validates; a bad value throws a ConfigError naming the variable. */
export function toConfig(env: SchedulerEnv): SchedulerConfig {
  return {
    ...redisConfig(env),
    ...metricsConfig(env, 9102),
    logLevel: logLevel(env),
    liveWindowHours: envInt(env, 'LIVE_WINDOW_HOURS', 48, { min: 1, max: 24 * 30 }),
    retentionDays: envInt(env, 'ROLLUP_RETENTION_DAYS', 90, { min: 1, max: 3650 }),
    snapshotRetentionDays: envInt(env, 'SNAPSHOT_RETENTION_DAYS', 365, { min: 1, max: 3650 }),
    rollupEveryMs: envInt(env, 'ROLLUP_EVERY_MS', 300_000, { min: 1000 }),
    pruneEveryMs: envInt(env, 'PRUNE_EVERY_MS', 3_600_000, { min: 1000 }),
    didTableSweepHours: envInt(env, 'DID_TABLE_SWEEP_HOURS', 24, { min: 1, max: 24 * 90 }),
    statsEveryMs: envInt(env, 'STATS_EVERY_MS', 300_000, { min: 1000 }),
    snapshotEveryMs: envInt(env, 'SNAPSHOT_EVERY_MS', 3_600_000, { min: 1000 }),
    heartbeatMs: envInt(env, 'SCHEDULER_HEARTBEAT_MS', 10_000, { min: 100 }),
    attempts: envInt(env, 'JOB_ATTEMPTS', 5, { min: 1, max: 100 }),
    backoffMs: envInt(env, 'JOB_BACKOFF_MS', 10_000, { min: 1 }),
    keepFailed: envInt(env, 'JOB_KEEP_FAILED', 1000, { min: 1 }),
    backfill: backfillConfig(env),
  }
}
