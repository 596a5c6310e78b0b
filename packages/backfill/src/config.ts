import { envBool, envInt, envUrl } from '@circles/config'
import { DEFAULT_ROLLUP_GRACE_HOURS, MAX_ROLLUP_GRACE_HOURS } from '@circles/interaction-index'
import type { SourceConfig } from './source.js'

// The backfill's settings, read by the scheduler (its worker) and the `pnpm run backfill` CLI alike.

/** The variables `backfillConfig` reads: a service's `readEnv` picks them with its own. */
export const BACKFILL_ENV = [
  'BACKFILL_ENABLED',
  'BACKFILL_CONCURRENCY',
  'BACKFILL_PARTNERS',
  'BACKFILL_PARTNER_CONCURRENCY',
  'BACKFILL_PER_PDS',
  'BACKFILL_PLC_URL',
  'BACKFILL_ALLOW_PRIVATE',
  'BACKFILL_MAX_BYTES',
  'BACKFILL_TIMEOUT_MS',
  'BACKFILL_LOCK_MS',
  // the indexer's: the backfill writes the live index with the same writer settings
  'INDEX_ROLLUP_GRACE_HOURS',
] as const

export type BackfillEnv = Partial<Record<(typeof BACKFILL_ENV)[number], string>>

export interface BackfillConfig {
  /** Whether the scheduler runs the backfill worker. @default true */
  enabled: boolean
  /** Accounts backfilled at once per worker process. @default 2 */
  concurrency: number
  /** Top partners whose repos are backfilled with an account's. @default 50 */
  partners: number
  /** Partner repos fetched at once within one account's job. @default 4 */
  partnerConcurrency: number
  /**
   * The worker's BullMQ job lock (`lockDuration`), which is also how often it looks for stalled jobs
   * (`stalledInterval`): a job whose worker died (kill -9, lost host) runs again within about twice this.
   * @default 30000
   */
  lockMs: number
  /** The indexer's INDEX_ROLLUP_GRACE_HOURS: backfilled live records expire as the indexer's do. */
  rollupGraceHours: number
  /** Where repos come from; `perPds`: requests at once to one PDS host, over all jobs of the process. */
  source: Required<
    Pick<SourceConfig, 'plcUrl' | 'allowPrivate' | 'maxBytes' | 'timeoutMs' | 'perPds'>
  >
}

export function backfillConfig(env: BackfillEnv): BackfillConfig {
  return {
    enabled: envBool(env, 'BACKFILL_ENABLED', true),
    concurrency: envInt(env, 'BACKFILL_CONCURRENCY', 2, { min: 1, max: 64 }),
    partners: envInt(env, 'BACKFILL_PARTNERS', 50, { min: 0, max: 1000 }),
    partnerConcurrency: envInt(env, 'BACKFILL_PARTNER_CONCURRENCY', 4, { min: 1, max: 64 }),
    lockMs: envInt(env, 'BACKFILL_LOCK_MS', 30_000, { min: 1000, max: 3_600_000 }),
    rollupGraceHours: envInt(env, 'INDEX_ROLLUP_GRACE_HOURS', DEFAULT_ROLLUP_GRACE_HOURS, {
      min: 1,
      max: MAX_ROLLUP_GRACE_HOURS,
    }),
    source: {
      plcUrl: envUrl(env, 'BACKFILL_PLC_URL', 'https://plc.directory', ['https:', 'http:']),
      allowPrivate: envBool(env, 'BACKFILL_ALLOW_PRIVATE', false),
      maxBytes: envInt(env, 'BACKFILL_MAX_BYTES', 268_435_456, { min: 1024 }),
      timeoutMs: envInt(env, 'BACKFILL_TIMEOUT_MS', 10_000, { min: 100 }),
      perPds: envInt(env, 'BACKFILL_PER_PDS', 2, { min: 1, max: 64 }),
    },
  }
}
