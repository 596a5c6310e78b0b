import { HOUR_MS } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import { WINDOW_HOURS } from './layout.js'

/** The longest grace an indexer may keep an unfolded hour past the window (`INDEX_ROLLUP_GRACE_HOURS` max). */
export const MAX_ROLLUP_GRACE_HOURS = 24 * 14

/** Hours of slack on either side for a writer whose clock is not the caller's. */
const CLOCK_SLACK_HOURS = 4

/**
 * Every key that can hold an account's live-index records at `nowMs`: its main log and each spill log a
 * writer may have written. A writer spills into the log of an hour within its window plus grace (and two
 * hours ahead); the range here is that of the longest grace, so it holds whatever the indexer's setting.
 * Checking the main log alone is not enough: a purge deletes a main log it emptied, while a spill log of a
 * later hour keeps what came after the purge. All the keys share the account's hash tag (one slot), so one
 * EXISTS over them is cluster-safe. With `fromHour`, spill logs of earlier hours are left out (a caller
 * that knows nobody reads them any more: the prune's DID table sweep).
 */
export function accountLogKeys(
  schema: RedisSchema,
  did: string,
  nowMs: number,
  fromHour?: number,
): string[] {
  const nowHour = Math.floor(nowMs / HOUR_MS)
  const keys = [schema.accountLog(did)]
  // The DID checked once, not once per hour: ~400 keys an account where the grace is longest.
  const prefix = schema.accountHourLogPrefix(did)
  const oldest = nowHour - WINDOW_HOURS - MAX_ROLLUP_GRACE_HOURS - 2 - CLOCK_SLACK_HOURS
  const from = Math.max(oldest, fromHour ?? oldest)
  for (let h = from; h <= nowHour + 2 + CLOCK_SLACK_HOURS; h++) keys.push(`${prefix}${h}`)
  return keys
}
