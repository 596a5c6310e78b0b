import { HOUR_MS } from '@circles/core'
import { resolveIds } from '../did-table.js'
import {
  type Aggregate,
  aggregateLogs,
  allEntries,
  byScore,
  idKey,
  kindCounts,
  kthLargest,
  type Ranked,
  rank,
  scoreAll,
  scratchFloats,
  summarize,
  totalsOf,
} from './aggregate.js'
import { checkDid, checkWindow, IndexQueryError, type ReaderContext } from './context.js'

// The live reader's partner queries: who an account interacted with over the last hours, ranked by a
// weighted score (circles) or by total (lists), and its totals. Each is one MGET of the account's logs,
// counted in aggregate.ts.

/** Whose interactions count: the account's own (`sent`), those it got (`received`), or both. */
export type Direction = 'sent' | 'received' | 'both'
export interface KindCounts {
  like: number
  repost: number
  reply: number
  quote: number
}
/** Weight per kind; 0 leaves a kind out. */
export type Weights = KindCounts

/**
 * The circles' default weights (the API's, and who counts as a top partner for the backfill): active
 * interactions count more than passive ones. Likes are 60-70% of all interactions, so with the original
 * Twitter weights (like 1, reply 1.1, retweet 1.3) likes decide nearly every circle; Skycle's (reply 10,
 * quote 6, repost 3) ignore them almost entirely. 1/2/3/3 keeps likes as a tie-breaker signal while a handful
 * of replies outweighs dozens of likes.
 */
export const DEFAULT_WEIGHTS: Readonly<Weights> = Object.freeze({
  like: 1,
  repost: 2,
  reply: 3,
  quote: 3,
})
export interface Partner {
  did: string
  score: number
  sent: KindCounts
  received: KindCounts
}
export interface TopPartnersQuery {
  did: string
  direction: Direction
  windowHours: number
  weights: Weights
  limit: number
  exclude?: ReadonlySet<string>
}
export interface PartnersQuery {
  did: string
  windowHours: number
  limit: number
  cursor?: string
}
export interface WindowSummary {
  sent: KindCounts
  received: KindCounts
  partnersSent: number
  partnersReceived: number
}

export interface PartnerReader {
  /** Top partners by weighted score over the last `windowHours` (1..48) completed-or-current hours. */
  topPartners(q: TopPartnersQuery): Promise<Partner[]>
  /** All partners with counts, sorted by total desc, paginated with an opaque cursor. */
  partners(q: PartnersQuery): Promise<{ partners: Partner[]; cursor?: string }>
  summary(did: string, windowHours: number): Promise<WindowSummary>
}

/**
 * Every partner of `did` in the window with counts, from one MGET of its logs, handed to `use` in the
 * same synchronous stretch as the counting (the aggregate is working memory that the next read reuses).
 */
async function aggregate<T>(
  ctx: ReaderContext,
  did: string,
  windowHours: number,
  use: (g: Aggregate) => T,
): Promise<T> {
  const { keys, minSec, maxSec } = liveWindow(ctx, did, windowHours)
  const logs = await ctx.redis.mgetBuffer(...keys)
  return use(aggregateLogs(logs, minSec, maxSec))
}

/** The keys of an account's logs for the last `windowHours` and the seconds they count (checked first). */
export function liveWindow(
  { schema, now }: ReaderContext,
  did: string,
  windowHours: number,
): { keys: string[]; minSec: number; maxSec: number } {
  checkDid(did)
  checkWindow(windowHours)
  const nowHour = Math.floor(now() / HOUR_MS)
  const first = nowHour - windowHours + 1
  const keys = [schema.accountLog(did)]
  for (let h = first; h <= nowHour; h++) keys.push(schema.accountHourLog(did, h))
  return { keys, minSec: first * 3600, maxSec: (nowHour + 1) * 3600 }
}

/** Resolves DIDs for ranked partners until `limit` of them pass the exclusions. */
async function pick(
  { redis, schema, cache }: ReaderContext,
  ranked: readonly Ranked[],
  limit: number,
  exclude?: ReadonlySet<string>,
): Promise<Partner[]> {
  const out: Partner[] = []
  let i = 0
  while (out.length < limit && i < ranked.length) {
    // As many as are missing, plus one for each exclusion up to as many again: every id costs an HMGET
    // (the DID table's buckets are apart), and without exclusions nearly every id resolves.
    const missing = limit - out.length
    const size = Math.max(missing + Math.min(exclude?.size ?? 0, missing), 16)
    const chunk = ranked.slice(i, i + size)
    i += chunk.length
    const dids = await resolveIds(
      redis,
      schema,
      chunk.map((r) => idKey(r.e)),
      cache,
    )
    for (const { e, score } of chunk) {
      const did = dids.get(idKey(e))
      if (did === undefined || exclude?.has(did)) continue
      out.push({ did, score, sent: kindCounts(e.c, 0), received: kindCounts(e.c, 4) })
      if (out.length === limit) break
    }
  }
  return out
}

/**
 * The first `k` partners in list order (total, then id) and maybe a few more, sorted, and how many there
 * are: only those totalling at least the k-th largest total are ordered (every partner has a total of 1 or
 * more), where sorting all of the busiest account's ~20k partners for a page of 50 cost milliseconds.
 * Those tied with the k-th come along, so the prefix is the same as the whole list's.
 */
function firstByTotal(g: Aggregate, k: number): { ranked: Ranked[]; n: number } {
  if (k >= g.n) {
    const ranked = allEntries(g).map((e) => ({ e, score: e.total }))
    return { ranked: ranked.sort(byScore), n: g.n }
  }
  const totals = scratchFloats(0, g.n)
  totalsOf(g, totals)
  return { ranked: rank(g, totals, kthLargest(totals, k)).sort(byScore), n: g.n }
}

export function createPartnerReader(ctx: ReaderContext): PartnerReader {
  return {
    async topPartners(q) {
      if (!Number.isInteger(q.limit) || q.limit < 1) throw new IndexQueryError('limit must be >= 1')
      const w = [q.weights.like, q.weights.repost, q.weights.reply, q.weights.quote]
      // Only the best ones need ordering: those scoring at least the (limit + exclusions)-th score.
      const want = q.limit + (q.exclude?.size ?? 0)
      const best = (g: Aggregate, all: boolean) => {
        const scores = scratchFloats(0, g.n)
        const positive = scoreAll(
          g.slots,
          g.n,
          w,
          q.direction !== 'received',
          q.direction !== 'sent',
          scores,
        )
        const cut = all || positive <= want * 4 ? 0 : kthLargest(scores, want)
        return { cut, ranked: rank(g, scores, cut).sort(byScore) }
      }
      const { cut, ranked } = await aggregate(ctx, q.did, q.windowHours, (g) => best(g, false))
      const top = await pick(ctx, ranked, q.limit, q.exclude)
      if (top.length === q.limit || cut === 0) return top
      // Some of the best have no DID in the table (it cannot happen unless the table lost entries): read
      // again and rank everything.
      const again = await aggregate(ctx, q.did, q.windowHours, (g) => best(g, true))
      return pick(ctx, again.ranked, q.limit, q.exclude)
    },

    async partners(q) {
      if (!Number.isInteger(q.limit) || q.limit < 1) throw new IndexQueryError('limit must be >= 1')
      let offset = 0
      if (q.cursor !== undefined) {
        offset = Number.parseInt(Buffer.from(q.cursor, 'base64url').toString('latin1'), 36)
        if (!Number.isSafeInteger(offset) || offset < 0) throw new IndexQueryError('bad cursor')
      }
      const { ranked, n } = await aggregate(ctx, q.did, q.windowHours, (g) =>
        firstByTotal(g, offset + q.limit),
      )
      const page = ranked.slice(offset, offset + q.limit)
      const list = await pick(ctx, page, page.length)
      const next = offset + page.length
      return next < n
        ? { partners: list, cursor: Buffer.from(next.toString(36), 'latin1').toString('base64url') }
        : { partners: list }
    },

    async summary(did, windowHours) {
      return aggregate(ctx, did, windowHours, summarize)
    },
  }
}
