const HOUR_MS = 3_600_000

/**
 * A start for a test's clock, anchored on the real time: minute `minute` of the hour before the current
 * one. Writers compute `EXPIREAT` from the clock they are given while Redis expires by its own, so a clock
 * pinned to a calendar date writes keys that are already dead once that date is two days past (19 tests
 * failed so on 2026-12-06). The whole hour keeps hour boundaries where the test expects them; the hour
 * before keeps the anchor in the past, as the firehose's events are.
 */
export function clockAnchor(minute = 30): number {
  if (!(minute >= 0 && minute < 60)) throw new RangeError(`minute ${minute} is not in [0, 60)`)
  return (Math.floor(Date.now() / HOUR_MS) - 1) * HOUR_MS + minute * 60_000
}
