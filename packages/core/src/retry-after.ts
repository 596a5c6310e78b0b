/**
 * Milliseconds to wait before asking again, from a 429's `retry-after` (delta seconds or an HTTP date, RFC
 * 9110) or, without it, `ratelimit-reset` (atproto's PDS sends an epoch in seconds, the IETF draft seconds
 * from now: a value above a billion can only be the former); undefined when neither names a time. Shared by
 * the AppView client and the backfill's repo fetches, which read headers from fetch and node:http.
 */
export function retryDelayMs(
  retryAfter: string | null | undefined,
  ratelimitReset: string | null | undefined,
  now = Date.now(),
): number | undefined {
  if (retryAfter != null) {
    if (/^\d+$/.test(retryAfter.trim())) return Number(retryAfter.trim()) * 1000
    const t = Date.parse(retryAfter)
    if (!Number.isNaN(t)) return Math.max(0, t - now)
  }
  if (ratelimitReset != null && /^\d+$/.test(ratelimitReset.trim())) {
    const n = Number(ratelimitReset.trim())
    return n > 1e9 ? Math.max(0, n * 1000 - now) : n * 1000
  }
  return undefined
}
