export const HOUR_MS = 3_600_000
export const DAY_MS = 86_400_000

/** Hours since the epoch: the unit of every live bucket. */
export function hourOf(ms: number): number {
  return Math.floor(ms / HOUR_MS)
}

/** Days since the epoch (UTC): the unit of long-term aggregates. */
export function dayOf(ms: number): number {
  return Math.floor(ms / DAY_MS)
}
