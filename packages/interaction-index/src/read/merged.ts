import { pipelineFor } from '@circles/redis-wire'
import type { ChainableCommander } from 'ioredis'
import { resolveIds } from '../did-table.js'
import {
  type Aggregate,
  addCount,
  aggregateLogs,
  idKey,
  kindCounts,
  kthLargest,
  type Ranked,
  rank,
  scoreAll,
  scratchFloats,
} from './aggregate.js'
import { IndexQueryError, type ReaderContext } from './context.js'
import { liveWindow, type Partner, type TopPartnersQuery } from './partners.js'

// Top partners over the live window plus counts that the caller adds from elsewhere (the long windows' day
// blobs, packages/long-term), in one pass: one round trip for the live logs and the caller's reads, every
// count summed by id into the live aggregate's working memory, and only the best ones resolved to DIDs.
// (The long windows used to page through the live reader's list with a limit of 100,000, which copied,
// sorted and resolved every live partner, then summed the day blobs into a Map keyed by id strings and
// resolved every id of 90 days: ~0.5 s for the busiest accounts.) The order is the long windows': score,
// then total, then DID.

/** Adds `count` to kind slot `code` (0-3 sent, 4-7 received) of the partner with id (a, b) (int32 pair). */
export type AddCount = (a: number, b: number, code: number, count: number) => void

/** What the caller adds: commands for the same round trip as the logs, then their replies' counts. */
export interface ExtraCounts {
  read(pipe: ChainableCommander): void
  /** Called synchronously with the replies of `read`'s commands, in order (an error reply is thrown). */
  add(replies: unknown[], add: AddCount): void
}

/** By score, then total, then DID: the long windows' order (their callers have always had it). */
function byScoreThenDid(x: Partner, y: Partner): number {
  return y.score - x.score || total(y) - total(x) || (x.did < y.did ? -1 : x.did > y.did ? 1 : 0)
}

function total(p: Partner): number {
  const { sent: s, received: r } = p
  return s.like + s.repost + s.reply + s.quote + r.like + r.repost + r.reply + r.quote
}

/**
 * The best `limit` of `ranked` (sorted by score, then total) whose DIDs resolve and are not excluded, in
 * the order above: those tied on score and total with the last one are resolved too, so that the DID
 * decides among them. Fewer when `ranked` runs out.
 */
async function pickByDid(
  { redis, schema, cache }: ReaderContext,
  ranked: readonly Ranked[],
  limit: number,
  exclude?: ReadonlySet<string>,
): Promise<Partner[]> {
  const out: Partner[] = []
  let i = 0
  const tiedWithLast = (r: Ranked) => {
    const last = out[limit - 1] as Partner
    return r.score === last.score && r.e.total === total(last)
  }
  while (i < ranked.length) {
    if (out.length >= limit && !tiedWithLast(ranked[i] as Ranked)) break
    const missing = Math.max(limit - out.length, 0)
    const size = Math.max(missing + Math.min(exclude?.size ?? 0, missing), 16)
    const chunk = ranked.slice(i, i + size)
    i += chunk.length
    const dids = await resolveIds(
      redis,
      schema,
      chunk.map((r) => idKey(r.e)),
      cache,
    )
    for (const r of chunk) {
      const did = dids.get(idKey(r.e))
      if (did === undefined || exclude?.has(did)) continue
      if (out.length >= limit && !tiedWithLast(r)) break
      out.push({ did, score: r.score, sent: kindCounts(r.e.c, 0), received: kindCounts(r.e.c, 4) })
    }
  }
  return out.sort(byScoreThenDid).slice(0, limit)
}

/** One read: the logs and the caller's commands, summed; the candidates for the top, sorted. */
async function candidates(
  ctx: ReaderContext,
  q: TopPartnersQuery,
  extra: ExtraCounts,
  all: boolean,
): Promise<{ ranked: Ranked[]; cut: number }> {
  const { keys, minSec, maxSec } = liveWindow(ctx, q.did, q.windowHours)
  // The caller's keys may live in other slots (the roll-up cursor): on a cluster, other nodes.
  const pipe = pipelineFor(ctx.redis).mgetBuffer(...keys)
  extra.read(pipe)
  const res = (await pipe.exec()) ?? []
  for (const [err] of res) if (err) throw err
  const g: Aggregate = aggregateLogs(res[0]?.[1] as (Buffer | null)[], minSec, maxSec)
  extra.add(
    res.slice(1).map(([, v]) => v),
    (a, b, code, count) => addCount(g, a, b, code, count),
  )
  const w = [q.weights.like, q.weights.repost, q.weights.reply, q.weights.quote]
  const scores = scratchFloats(0, g.n)
  const positive = scoreAll(
    g.slots,
    g.n,
    w,
    q.direction !== 'received',
    q.direction !== 'sent',
    scores,
  )
  const want = q.limit + (q.exclude?.size ?? 0)
  const cut = all || positive <= want * 4 ? 0 : kthLargest(scores, want)
  return { ranked: rank(g, scores, cut).sort(byScoreTotal), cut }
}

/** Score, then total: the DID decides the rest (pickByDid). */
function byScoreTotal(x: Ranked, y: Ranked): number {
  return y.score - x.score || y.e.total - x.e.total
}

/** Top partners over the live window and `extra`'s counts (see above). */
export async function topPartnersWith(
  ctx: ReaderContext,
  q: TopPartnersQuery,
  extra: ExtraCounts,
): Promise<Partner[]> {
  if (!Number.isInteger(q.limit) || q.limit < 1) throw new IndexQueryError('limit must be >= 1')
  const first = await candidates(ctx, q, extra, false)
  const top = await pickByDid(ctx, first.ranked, q.limit, q.exclude)
  if (top.length === q.limit || first.cut === 0) return top
  // Some of the best have no DID in the table: read again and rank everything.
  const again = await candidates(ctx, q, extra, true)
  return pickByDid(ctx, again.ranked, q.limit, q.exclude)
}
