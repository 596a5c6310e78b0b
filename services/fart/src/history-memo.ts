import type { KindCounts } from '@circles/interaction-index'
import { type DayTally, partnerAt, type TalliedPartner, topSlots } from './history-days.js'

// Complete days of an account's history, remembered in this process: their totals and best partners.
// A 90-day request of a heavy account decoded ~4 MB of day blobs (p99 ~100 ms, BENCHMARKS.md); all but the
// newest two or three of those days are complete, and a complete day's blobs change only by a backfill
// (the day's token in `lt-version` changes then) or by losing records (a forgotten partner, the retention
// prune: shorter blobs). So a day is known by (account, day, token, its four blobs' lengths), read in one
// round trip instead of the blobs. Kept here rather than as a summary in Redis: every writer (roll-up, backfill,
// forget, prune) would have to keep one up to date, while a length and a token are what they write anyway.
// Partners are kept by id, never with their profiles or verdicts: who may be shown (opted out, deleted,
// hidden) and their handles are decided at read time as without the memo. Partial days are never kept.

/** Counts per partner, as `DayTally.counts`: sent like/repost/reply/quote, then received the same. */
const SLOTS = 8

/**
 * Best partners kept per day: the most a request shows (10) and room for 22 of them hidden before a
 * day has to be read again (`summaryTop` says when).
 */
export const MEMO_CANDIDATES = 32

/** A day's totals and its best partners (by `topSlots` order) with their counts. */
export interface DaySummary {
  sent: KindCounts
  received: KindCounts
  /** The day's partners, all of them. */
  size: number
  /** The candidates' ids, 8 latin1 characters each, most first: `MEMO_CANDIDATES`, or all when fewer. */
  ids: string
  /** `SLOTS` counts per candidate, in the same order. */
  counts: Uint32Array
}

export function summarise(t: DayTally, k = MEMO_CANDIDATES): DaySummary {
  const best = topSlots(t, k, new Set())
  const counts = new Uint32Array(best.length * SLOTS)
  best.forEach((s, i) => {
    counts.set(t.counts.subarray(s * SLOTS, s * SLOTS + SLOTS), i * SLOTS)
  })
  return {
    sent: t.sent,
    received: t.received,
    size: t.size,
    ids: best.map((s) => t.idOf(s)).join(''),
    counts,
  }
}

function kindsAt(c: Uint32Array, at: number): KindCounts {
  return {
    like: c[at] as number,
    repost: c[at + 1] as number,
    reply: c[at + 2] as number,
    quote: c[at + 3] as number,
  }
}

/**
 * The day's `n` best partners not in `rejected`, as `topSlots` over the whole day would pick them; null
 * when hidden candidates leave fewer than `n` and the day has partners past the candidates (read it then).
 */
export function summaryTop(
  s: DaySummary,
  n: number,
  rejected: ReadonlySet<string>,
): TalliedPartner[] | null {
  const out: TalliedPartner[] = []
  const kept = s.counts.length / SLOTS
  for (let i = 0; i < kept && out.length < n; i++) {
    const id = s.ids.slice(i * 8, i * 8 + 8)
    if (rejected.has(id)) continue
    out.push({
      id,
      sent: kindsAt(s.counts, i * SLOTS),
      received: kindsAt(s.counts, i * SLOTS + 4),
    })
  }
  return out.length < n && kept < s.size ? null : out
}

/** The same picks from a tally in hand. */
export function tallyTop(t: DayTally, n: number, rejected: ReadonlySet<string>): TalliedPartner[] {
  return topSlots(t, n, rejected).map((slot) => partnerAt(t, slot))
}

export interface HistoryMemo {
  /** The day's summary if it was kept under the same version. */
  get(did: string, day: number, version: string): DaySummary | undefined
  set(did: string, day: number, version: string, summary: DaySummary): void
  readonly size: number
}

/**
 * At most `maxDays` days, the least recently used leave first (a Map keeps insertion order: a hit moves
 * its day to the end). A day is ~1.5 KB, so the default 10,000 (HISTORY_MEMO_DAYS) is ~15 MB: 90-day
 * histories of ~110 accounts.
 */
export function createHistoryMemo(maxDays: number): HistoryMemo {
  const map = new Map<string, { version: string; summary: DaySummary }>()
  return {
    get(did, day, version) {
      const key = `${did} ${day}`
      const e = map.get(key)
      if (e === undefined) return undefined
      map.delete(key)
      // A stale version is dropped: the day's blobs changed, the next tally replaces it.
      if (e.version !== version) return undefined
      map.set(key, e)
      return e.summary
    },
    set(did, day, version, summary) {
      const key = `${did} ${day}`
      map.delete(key)
      map.set(key, { version, summary })
      while (map.size > maxDays) map.delete(map.keys().next().value as string)
    },
    get size() {
      return map.size
    },
  }
}
