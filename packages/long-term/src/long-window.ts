import { DAY_MS, HOUR_MS, isValidDid } from '@circles/core'
import {
  type AddCount,
  createIndexReader,
  DidCache,
  type Direction,
  type ExtraCounts,
  IndexQueryError,
  type IndexReader,
  type KindCounts,
  type Partner,
  type Weights,
  WINDOW_HOURS,
} from '@circles/interaction-index'
import { LONG_TERM_SIDES, type LongTermSide, type RedisSchema } from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { emptyKindCounts, forEachRecordAt, SIDE_DIRECTION } from './day-blob.js'
import { type PartnerCounts, resolvePartners, sumDayBlobs } from './read.js'

// Long windows (7, 30, 90 days...): the live index for the hours it still counts, plus the daily
// aggregates: the scheduler's roll-up (`s`, `r`) for the hours it has folded, and repo backfills (`bs`,
// `br`) for history older than the live index. The roll-up's never overlap the live index: an hour is
// folded only after it left the live window, and the roll-up cursor says how far they go, so they are
// read only up to the cursor's day (whose blob holds only hours up to the cursor). Between an hour
// leaving the window and its roll-up (a few minutes) it is in neither: a long window is then short by
// that hour, never double-counted. A backfill writes only rows the live stream did not deliver, so they
// are in neither the live index nor the roll-up's blobs (folded from it): its sides are read over the
// whole window, up to today, whatever the cursor (a system whose first roll-up has not run yet shows
// backfilled history).
// Resolution is daily: the window's oldest day counts whole.

/** Longest long window (days); the aggregates keep ROLLUP_RETENTION_DAYS (90 by default). */
export const MAX_LONG_WINDOW_DAYS = 366

export interface LongSummary {
  sent: KindCounts
  received: KindCounts
  partnersSent: number
  partnersReceived: number
}

export interface LongWindowReader {
  /** Top partners by weighted score over the last `days` days (same ranking as `topPartners`). */
  topPartnersLong(q: {
    did: string
    direction: Direction
    days: number
    weights: Weights
    limit: number
    exclude?: ReadonlySet<string>
  }): Promise<Partner[]>
  /** Counts sent and received by kind over the last `days` days, and how many distinct partners. */
  summaryLong(did: string, days: number): Promise<LongSummary>
}

interface Both {
  sent: KindCounts
  received: KindCounts
}

function addCounts(into: KindCounts, from: KindCounts): void {
  into.like += from.like
  into.repost += from.repost
  into.reply += from.reply
  into.quote += from.quote
}

function sum(c: KindCounts): number {
  return c.like + c.repost + c.reply + c.quote
}

type PartnerMap = Map<string, Both>

function entryOf(out: PartnerMap, partner: string): Both {
  let e = out.get(partner)
  if (!e) {
    e = { sent: emptyKindCounts(), received: emptyKindCounts() }
    out.set(partner, e)
  }
  return e
}

interface Sources {
  redis: Redis
  schema: RedisSchema
  reader: IndexReader
  cache: DidCache
}

/** The sides the roll-up writes, read up to the cursor's day; the backfill's are read up to today. */
const ROLLED_UP: ReadonlySet<LongTermSide> = new Set(['s', 'r'])

/** The days [from, to] as hash fields (decimal day numbers). */
function dayFields(from: number, to: number): string[] {
  const out: string[] = []
  for (let d = from; d <= to; d++) out.push(String(d))
  return out
}

/** The last day of the roll-up's sides that counts: the cursor's; none (before `fromDay`) without one. */
function rolledToDay(cursorRaw: string | null, fromDay: number): number {
  const cursor = cursorRaw === null ? null : Number(cursorRaw)
  // No cursor (no roll-up yet) or a bad one: the roll-up's sides count nothing.
  return cursor !== null && Number.isSafeInteger(cursor)
    ? Math.floor((cursor * HOUR_MS) / DAY_MS)
    : fromDay - 1
}

/**
 * The long-term part: every side's days from the window's oldest to today, in one pipeline with the
 * roll-up cursor; the roll-up's sides count only up to the cursor's day (see above).
 */
async function addLongTerm(src: Sources, out: PartnerMap, did: string, days: number, t: number) {
  const { redis, schema } = src
  const fromDay = Math.floor((t - days * DAY_MS) / DAY_MS)
  const today = Math.floor(t / DAY_MS)
  const fields = dayFields(fromDay, today)
  const pipe = pipelineFor(redis).get(schema.rollupCursor)
  for (const side of LONG_TERM_SIDES) pipe.hmgetBuffer(schema.longTerm(did, side), ...fields)
  const res = (await pipe.exec()) ?? []
  const [cursorErr, cursorRaw] = res[0] ?? [null, null]
  if (cursorErr) throw cursorErr
  const rolledTo = rolledToDay(cursorRaw as string | null, fromDay)
  const byId = { sent: new Map(), received: new Map() } as Record<keyof Both, PartnerCounts>
  LONG_TERM_SIDES.forEach((side, i) => {
    const [err, values] = res[i + 1] ?? [null, []]
    if (err) throw err
    const blobs: Record<string, Buffer> = {}
    ;(values as (Buffer | null)[]).forEach((v, j) => {
      if (v) blobs[fields[j] as string] = v
    })
    const toDay = ROLLED_UP.has(side) ? rolledTo : today
    sumDayBlobs(blobs, fromDay, toDay, byId[SIDE_DIRECTION[side]])
  })
  for (const dir of ['sent', 'received'] as const) {
    const counts = await resolvePartners(redis, schema, byId[dir], src.cache)
    for (const [partner, c] of counts) addCounts(entryOf(out, partner)[dir], c)
  }
}

/** The live part: every partner of the live window (all pages). */
async function addLive(src: Sources, out: PartnerMap, did: string, days: number) {
  const windowHours = Math.min(WINDOW_HOURS, days * 24)
  let page: string | undefined
  do {
    const res = await src.reader.partners({ did, windowHours, limit: 100_000, cursor: page })
    for (const p of res.partners) {
      const e = entryOf(out, p.did)
      addCounts(e.sent, p.sent)
      addCounts(e.received, p.received)
    }
    page = res.cursor
  } while (page !== undefined)
}

/** Every partner of `did` over the window, both directions, from the live index and every long-term side. */
async function allPartners(
  src: Sources,
  did: string,
  days: number,
  t: number,
): Promise<PartnerMap> {
  const out: PartnerMap = new Map()
  await addLongTerm(src, out, did, days, t)
  await addLive(src, out, did, days)
  return out
}

type LongQuery = Parameters<LongWindowReader['topPartnersLong']>[0]

/**
 * The top of a long window in one pass (the live reader's `topPartnersWith`): the live logs, the roll-up
 * cursor and every side's days in one round trip, each day blob's records summed by id into the live
 * aggregate (no object or string per record), and only the best resolved to DIDs. The same days count as
 * in `addLongTerm`: the roll-up's sides up to the cursor's day, the backfill's up to today.
 */
function topLong(src: Sources, q: LongQuery, t: number): Promise<Partner[]> {
  const { schema } = src
  const fromDay = Math.floor((t - q.days * DAY_MS) / DAY_MS)
  const today = Math.floor(t / DAY_MS)
  const fields = dayFields(fromDay, today)
  const extra: ExtraCounts = {
    read(pipe) {
      pipe.get(schema.rollupCursor)
      for (const side of LONG_TERM_SIDES) pipe.hmgetBuffer(schema.longTerm(q.did, side), ...fields)
    },
    add(replies, add) {
      const rolledTo = rolledToDay(replies[0] as string | null, fromDay)
      LONG_TERM_SIDES.forEach((side, i) => {
        const toDay = ROLLED_UP.has(side) ? rolledTo : today
        const code = SIDE_DIRECTION[side] === 'sent' ? 0 : 4
        ;(replies[i + 1] as (Buffer | null)[]).forEach((blob, j) => {
          if (blob && fromDay + j <= toDay) addBlob(blob, code, add)
        })
      })
    },
  }
  return src.reader.topPartnersWith(
    { ...q, windowHours: Math.min(WINDOW_HOURS, q.days * 24) },
    extra,
  )
}

/** Every record of a day blob, its partner's id read as two int32 (the live aggregate's key). */
function addBlob(blob: Buffer, code: number, add: AddCount): void {
  // `at` indexes `ids`: the blob itself when plain, its plain form when compact
  forEachRecordAt(blob, (kind, count, at, ids) => {
    add(ids.readInt32BE(at), ids.readInt32BE(at + 4), code + kind, count)
  })
}

function summarize(partners: PartnerMap): LongSummary {
  const out: LongSummary = {
    sent: emptyKindCounts(),
    received: emptyKindCounts(),
    partnersSent: 0,
    partnersReceived: 0,
  }
  for (const c of partners.values()) {
    addCounts(out.sent, c.sent)
    addCounts(out.received, c.received)
    if (sum(c.sent) > 0) out.partnersSent++
    if (sum(c.received) > 0) out.partnersReceived++
  }
  return out
}

function check(did: string, days: number): void {
  if (!isValidDid(did)) throw new IndexQueryError('invalid DID')
  if (!Number.isInteger(days) || days < 1 || days > MAX_LONG_WINDOW_DAYS) {
    throw new IndexQueryError(`days must be an integer from 1 to ${MAX_LONG_WINDOW_DAYS}`)
  }
}

export function createLongWindowReader(
  redis: Redis,
  schema: RedisSchema,
  opts: { reader?: IndexReader; now?: () => number } = {},
): LongWindowReader {
  const now = opts.now ?? Date.now
  const reader = opts.reader ?? createIndexReader(redis, schema, { now })
  const src: Sources = { redis, schema, reader, cache: new DidCache(200_000) }

  return {
    async topPartnersLong(q) {
      check(q.did, q.days)
      if (!Number.isInteger(q.limit) || q.limit < 1) throw new IndexQueryError('limit must be >= 1')
      // Within the live window the live reader alone is exact and cheaper.
      if (q.days * 24 <= WINDOW_HOURS) {
        return reader.topPartners({ ...q, windowHours: q.days * 24 })
      }
      return topLong(src, q, now())
    },

    async summaryLong(did, days) {
      check(did, days)
      if (days * 24 <= WINDOW_HOURS) return reader.summary(did, days * 24)
      return summarize(await allPartners(src, did, days, now()))
    },
  }
}
