import { cachedProfile, type Profile, type ProfileCache } from '@circles/bsky-client'
import { DAY_MS } from '@circles/core'
import {
  DidCache,
  hiddenChecks,
  hiddenFromReplies,
  type KindCounts,
  resolveIds,
} from '@circles/interaction-index'
import { LONG_TERM_SIDES, type LongTermSide, type RedisSchema } from '@circles/redis-schema'
import { Frame, type FrameSender, luaSource, pipelineFor } from '@circles/redis-wire'
import type { ChainableCommander, Redis } from 'ioredis'
import { withProfile } from './circle-compute.js'
import { type DayTally, dateOfDay, type TalliedPartner, tallyDay } from './history-days.js'
import {
  type DaySummary,
  type HistoryMemo,
  summarise,
  summaryTop,
  tallyTop,
} from './history-memo.js'

// An account's history, day by day, from the long-term day blobs: all four sides, as the long windows
// add them (long-term's long-window.ts). The day blobs are the source, not the scheduler's snapshots:
// they exist for every account (snapshots only for tracked ones), they hold the partners (snapshots only
// totals), and a snapshot is the sum of the same four blobs of a complete day, so the totals agree with
// it wherever one exists. A snapshot cannot spare the blob reads either: the top partners need them.
// A day is complete once the roll-up folded all its hours; until then the roll-up's sides hold only the
// hours up to its cursor (the rest is in the live index, /v1/interactions) and the day says so, rather
// than mixing in live hours on some days and not others.

export const MAX_HISTORY_DAYS = 90
export const MAX_HISTORY_TOP = 10

export interface HistoryPartner {
  did: string
  handle?: string
  displayName?: string
  avatar?: string
  sent: KindCounts
  received: KindCounts
}

export interface HistoryDay {
  date: string
  /** All 24 hours folded by the roll-up (backfilled history counts on every day, folded or not). */
  complete: boolean
  foldedHours: number
  sent: KindCounts
  received: KindCounts
  partners: HistoryPartner[]
}

export interface History {
  actor: { did: string; handle?: string; displayName?: string; avatar?: string }
  days: number
  top: number
  /** The newest complete day, or null before the roll-up's first run. */
  completeThrough: string | null
  profilesComplete: boolean
  /** Oldest first, one entry per day (zeros for a day with nothing): a chart's continuous axis. */
  history: HistoryDay[]
}

export interface HistoryDeps {
  redis: Redis
  schema: RedisSchema
  profiles: ProfileCache
  now: () => number
  /** Id -> DID, shared by requests. */
  cache?: DidCache
  /** Complete days' summaries, shared by requests (history-memo.ts); none: every day is read. */
  memo?: HistoryMemo
  /** The connection the partners' checks go on (`judge`), to the same Redis as `redis`. */
  wire: FrameSender
}

/** The account's history, or 'gone' when the AppView says it no longer exists (as circles answer 404). */
export type HistoryResult = History | 'gone'

/** Hours of `day` the roll-up has folded when its cursor (the last folded hour) is `cursor`. */
export function foldedHours(day: number, cursor: number | null): number {
  if (cursor === null) return 0
  return Math.max(0, Math.min(24, cursor + 1 - day * 24))
}

/** The sides the roll-up writes (read up to the cursor's day); the backfill's are read on every day. */
const ROLLED_UP: ReadonlySet<LongTermSide> = new Set(['s', 'r'])

const DAY_VERSIONS = luaSource(import.meta.url, 'day-versions')

type VersionsPipeline = ChainableCommander & { dayVersions(...args: string[]): ChainableCommander }

/** A pipeline with lua/day-versions.lua as a command (a pipeline loads it when Redis lacks it). */
function versionsPipeline(redis: Redis): VersionsPipeline {
  if (!('dayVersions' in redis)) {
    redis.defineCommand('dayVersions', { numberOfKeys: 5, lua: DAY_VERSIONS })
  }
  return pipelineFor(redis) as VersionsPipeline
}

/** One day of a request: its summary from the memo, or its tally (read this request), or both. */
interface Day {
  day: number
  summary?: DaySummary
  tally?: DayTally
}

function rolledToOf(cursor: number | null): number {
  return cursor === null ? Number.NEGATIVE_INFINITY : Math.floor(cursor / 24)
}

function cursorOf(raw: string | null): number | null {
  const n = raw === null ? Number.NaN : Number(raw)
  return Number.isSafeInteger(n) ? n : null
}

/** Replies of a pipeline; the first error is thrown. */
async function replies(pipe: ChainableCommander): Promise<unknown[]> {
  return ((await pipe.exec()) ?? []).map(([err, v]) => {
    if (err) throw err
    return v
  })
}

/**
 * The days' blobs, tallied, in one round trip (with the roll-up cursor first unless `known`). The roll-up's
 * sides count only up to the cursor's day, as the long windows read them; the backfill's on every day.
 */
async function readTallies(
  deps: HistoryDeps,
  did: string,
  days: number[],
  known?: { cursor: number | null },
): Promise<{ cursor: number | null; tallies: DayTally[] }> {
  const { redis, schema } = deps
  const fields = days.map(String)
  // With the cursor known, the roll-up's sides are not even asked for days past its day (the newest ones).
  const folded = known
    ? fields.filter((_, j) => (days[j] as number) <= rolledToOf(known.cursor))
    : fields
  const pipe = pipelineFor(redis)
  if (!known) pipe.get(schema.rollupCursor)
  for (const side of LONG_TERM_SIDES) {
    const asked = ROLLED_UP.has(side) ? folded : fields
    if (asked.length > 0) pipe.hmgetBuffer(schema.longTerm(did, side), ...asked)
    else pipe.echo('')
  }
  const res = await replies(pipe)
  const cursor = known ? known.cursor : cursorOf(res.shift() as string | null)
  const rolledTo = rolledToOf(cursor)
  const tallies = days.map((day, j) => {
    const blobs: [LongTermSide, Buffer][] = []
    LONG_TERM_SIDES.forEach((side, i) => {
      if (ROLLED_UP.has(side) && day > rolledTo) return
      // The roll-up's sides hold the first `folded.length` days only (days are in increasing order).
      const blob = (res[i] as (Buffer | null)[])[j]
      if (!blob) return
      blobs.push([side, blob])
    })
    return tallyDay(day, blobs)
  })
  return { cursor, tallies }
}

/**
 * The days through the memo: one round trip for the cursor, the backfill's tokens and every blob's length
 * (lua/day-versions.lua: ~2 KB for 90 days, of the ~4 MB the blobs are), a second one for the blobs of
 * the days it lacks (the partial ones, and complete ones not seen under this version). The token and
 * lengths are read before the blobs: a write in between leaves newer blobs under an older version, which
 * the next request finds stale, never the other way round.
 */
async function readDays(
  deps: HistoryDeps,
  memo: HistoryMemo,
  did: string,
  days: number[],
): Promise<{ cursor: number | null; days: Day[] }> {
  const { redis, schema } = deps
  const keys = [
    ...LONG_TERM_SIDES.map((side) => schema.longTerm(did, side)),
    schema.longTermVersion(did),
  ]
  const pipe = versionsPipeline(redis)
  pipe.get(schema.rollupCursor)
  pipe.dayVersions(...keys, ...days.map(String))
  const res = await replies(pipe)
  const cursor = cursorOf(res[0] as string | null)
  const versions = res[1] as string[]
  const complete = (day: number) => foldedHours(day, cursor) === 24
  const out: Day[] = days.map((day, j) => {
    const summary = complete(day) ? memo.get(did, day, versions[j] as string) : undefined
    return summary ? { day, summary } : { day }
  })
  const missing = [...out.keys()].filter((j) => !out[j]?.summary)
  if (missing.length === 0) return { cursor, days: out }
  const read = await readTallies(
    deps,
    did,
    missing.map((j) => days[j] as number),
    { cursor },
  )
  missing.forEach((j, i) => {
    const d = out[j] as Day
    d.tally = read.tallies[i] as DayTally
    if (!complete(d.day)) return
    d.summary = summarise(d.tally)
    memo.set(did, d.day, versions[j] as string, d.summary)
  })
  return { cursor, days: out }
}

interface Verdicts {
  /** Ids whose partner may be shown, with their DIDs. */
  shown: Map<string, string>
  rejected: Set<string>
  profiles: Map<string, Profile>
  complete: boolean
  actorGone: boolean
}

/**
 * Decides on `ids`: shown, or rejected when the DID table does not know them, they are the actor, opted
 * out, deleted or queued to be forgotten (`hiddenAccounts`), or the AppView has no profile for them (as
 * circles drop them). The actor's own profile comes in the first lookup. The hidden check and the profile
 * cache are read in one frame on the history's own connection (`deps.wire`): a heavy account's request
 * asks both about hundreds of partners, ~900 commands, which through ioredis (a Command, a promise and a
 * timer each) were most of a remembered request's CPU (BENCHMARKS.md, "API history route"). Only
 * profiles the cache lacks, of partners not hidden, are asked of the AppView (the profile cache's `get`).
 */
async function judge(
  deps: HistoryDeps & { cache: DidCache },
  did: string,
  ids: string[],
  v: Verdicts,
  withActor: boolean,
): Promise<void> {
  const dids = await resolveIds(deps.redis, deps.schema, ids, deps.cache)
  // Distinct ids name distinct DIDs (an id is the start of the DID's hash).
  const named: string[] = []
  for (const d of dids.values()) if (d !== did) named.push(d)
  const wanted = withActor ? [did, ...named] : named
  const frame = new Frame()
  const checks = named.length > 0 ? hiddenChecks(frame, deps.schema, named) : 0
  for (const d of wanted) frame.call('GET', deps.schema.profile(d))
  const replies = await deps.wire.send(frame)
  const failed = replies.find((r) => r instanceof Error)
  if (failed) throw failed
  const hidden = checks > 0 ? hiddenFromReplies(named, replies) : new Set<string>()
  const missing = new Set<string>()
  const todo: string[] = []
  wanted.forEach((d, i) => {
    if (hidden.has(d)) return
    const found = cachedProfile(d, replies[checks + i])
    if (found === 'missing') missing.add(d)
    else if (found) v.profiles.set(d, found)
    else todo.push(d)
  })
  if (todo.length > 0) {
    const fetched = await deps.profiles.get(todo)
    if (!fetched.complete) v.complete = false
    for (const [d, p] of fetched.profiles) v.profiles.set(d, p)
    for (const d of fetched.missing) missing.add(d)
  }
  if (withActor && missing.has(did)) v.actorGone = true
  for (const id of ids) {
    const d = dids.get(id)
    if (d === undefined || d === did || hidden.has(d) || missing.has(d)) v.rejected.add(id)
    else v.shown.set(id, d)
  }
}

/**
 * Each day's top `top` partners that may be shown. Rounds: pick each day's top among those not rejected,
 * judge the ids not judged yet, again until every pick is shown (a hidden partner is replaced by the
 * next one down). Usually one round; a further one looks up only the ids that moved up into a pick. A
 * remembered day whose candidates ran out is read and tallied for the next round.
 */
async function pickPartners(
  deps: HistoryDeps & { cache: DidCache },
  did: string,
  r: { cursor: number | null; days: Day[] },
  top: number,
): Promise<{ picks: TalliedPartner[][]; v: Verdicts }> {
  const v: Verdicts = {
    shown: new Map(),
    rejected: new Set(),
    profiles: new Map(),
    complete: true,
    actorGone: false,
  }
  let first = true
  for (;;) {
    const picks = r.days.map((d) =>
      d.tally
        ? tallyTop(d.tally, top, v.rejected)
        : summaryTop(d.summary as DaySummary, top, v.rejected),
    )
    const short = r.days.filter((_, i) => picks[i] === null)
    if (short.length > 0) {
      const read = await readTallies(
        deps,
        did,
        short.map((d) => d.day),
        r,
      )
      short.forEach((d, i) => {
        d.tally = read.tallies[i]
      })
      continue
    }
    const unjudged = new Set<string>()
    for (const list of picks) for (const p of list ?? []) if (!v.shown.has(p.id)) unjudged.add(p.id)
    if (unjudged.size === 0 && !first) return { picks: picks as TalliedPartner[][], v }
    const rejected = v.rejected.size
    await judge(deps, did, [...unjudged], v, first)
    if (v.actorGone) return { picks: [], v }
    // Nobody picked was rejected: the picks stand (another round would pick the same).
    if (v.rejected.size === rejected) return { picks: picks as TalliedPartner[][], v }
    first = false
  }
}

function partnerOf(p: TalliedPartner, d: string, prof: Profile | undefined): HistoryPartner {
  return withProfile<HistoryPartner>({ did: d, sent: p.sent, received: p.received }, prof)
}

/** The last `days` days up to today (UTC), oldest first, and each day's `top` partners. */
export async function readHistory(
  deps: HistoryDeps,
  did: string,
  opts: { days: number; top: number },
): Promise<HistoryResult> {
  const today = Math.floor(deps.now() / DAY_MS)
  const days = Array.from({ length: opts.days }, (_, i) => today - opts.days + 1 + i)
  const read = deps.memo
    ? await readDays(deps, deps.memo, did, days)
    : await readTallies(deps, did, days).then(({ cursor, tallies }) => ({
        cursor,
        days: tallies.map((tally): Day => ({ day: tally.day, tally })),
      }))
  const { cursor } = read
  const withCache = { ...deps, cache: deps.cache ?? new DidCache(10_000) }
  const { picks, v } = await pickPartners(withCache, did, read, opts.top)
  if (v.actorGone) return 'gone'
  const self = v.profiles.get(did)
  const lastComplete = cursor === null ? null : Math.floor((cursor + 1) / 24) - 1
  return {
    actor: self
      ? { did, handle: self.handle, displayName: self.displayName, avatar: self.avatar }
      : { did },
    days: opts.days,
    top: opts.top,
    completeThrough: lastComplete === null ? null : dateOfDay(lastComplete),
    profilesComplete: v.complete,
    history: read.days.map((d, i) => {
      const folded = foldedHours(d.day, cursor)
      const t = (d.summary ?? d.tally) as DaySummary | DayTally
      return {
        date: dateOfDay(d.day),
        complete: folded === 24,
        foldedHours: folded,
        sent: t.sent,
        received: t.received,
        partners: (picks[i] ?? []).map((p) =>
          partnerOf(p, v.shown.get(p.id) as string, v.profiles.get(v.shown.get(p.id) as string)),
        ),
      }
    }),
  }
}
