import { DidCache, didId, resolveIds } from '@circles/interaction-index'
import {
  dayBlobMark,
  encodeDayBlob,
  encodePlainDayBlob,
  forEachPackedRecord,
  isCompactDayBlob,
  LongTermCodecError,
  type PackedRecord,
} from '@circles/long-term'
import {
  LONG_TERM_SIDES,
  type LongTermSide,
  MIRROR_SIDE,
  type RedisSchema,
} from '@circles/redis-schema'
import { pipelineFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import {
  execFenced,
  type RollupFence,
  type RollupPipeline,
  type RollupScripts,
  withRollupScripts,
} from './fence.js'

// The forget step's long-term part: a forgotten account's 8-byte id leaves every partner's day blobs.
// Its own blobs say where to look: a partner in its sent blobs holds it in their received blobs of the
// same days (`MIRROR_SIDE`: `s` in `r`, `bs` in `br`), and the other way round, since each writer puts
// both sides of a row into the same day: the roll-up in one script, the backfill too (this relies on it:
// a row in a partner's blob without its mirror here would keep the id there). Node removes the records
// (the codec lives in packages/long-term/src/day-blob.ts) and lua/fenced-rewrite.lua writes each blob
// only over the very bytes it was computed from, behind the roll-up fence, so a fold or a backfill that
// lands in between is never undone and a stale runner writes nothing. (Not mark and length, as the fold's
// own compare: a backfill's blob keeps mark 0 and, with a count changed inside a record's head byte, its
// length.) The account's own hashes are deleted by the caller only after this, so a run that dies
// half-way finds them again next time.

export interface LongTermForgetResult {
  /** Partner hashes (account, side) looked at. */
  partners: number
  /** Day blobs written without forgotten records, and the (partner, kind, day) records they lost. */
  blobsRewritten: number
  recordsRemoved: number
  /** Partner ids the DID table could not resolve: their blobs cannot be found (see README). */
  partnersUnknown: number
  /** Day blobs that did not decode, left as they are. */
  badBlobs: number
}

/** A partner's long-term hash, and the days of it that can hold a forgotten id. */
interface Target {
  key: string
  days: string[]
}

/** A day blob without the records of `ids` (latin1 id keys), or null when it holds none of them. */
function without(blob: Buffer, ids: ReadonlySet<string>): { blob: Buffer; removed: number } | null {
  const kept: PackedRecord[] = []
  let removed = 0
  forEachPackedRecord(blob, (r) => {
    if (ids.has(r.partner.toString('latin1'))) removed++
    else kept.push(r)
  })
  if (removed === 0) return null
  // A plain blob stays plain: the backfill's `br` script edits plain records only (day-blob.ts).
  const encode = isCompactDayBlob(blob) ? encodeDayBlob : encodePlainDayBlob
  return { blob: encode(dayBlobMark(blob), kept), removed }
}

/** Replies of a pipeline; the first error is thrown. */
async function values(pipe: { exec(): Promise<[Error | null, unknown][] | null> }) {
  return ((await pipe.exec()) ?? []).map(([err, v]) => {
    if (err) throw err
    return v
  })
}

/** Days of a partner's long-term hashes that can hold a forgotten id, by side. */
type SideDays = Map<LongTermSide, Set<string>>

/** Where the forgotten accounts' ids can be: partner id -> the days of each of the partner's hashes. */
async function partnerDays(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
  ids: ReadonlySet<string>,
  result: LongTermForgetResult,
): Promise<Map<string, SideDays>> {
  const read = pipelineFor(redis)
  for (const d of dids) {
    for (const side of LONG_TERM_SIDES) read.hgetallBuffer(schema.longTerm(d, side))
  }
  const own = (await values(read)) as Record<string, Buffer>[]
  const out = new Map<string, SideDays>()
  own.forEach((fields, i) => {
    // A partner named in its sent blobs holds it in the mirror (received) blobs, and vice versa.
    const theirs = MIRROR_SIDE[LONG_TERM_SIDES[i % LONG_TERM_SIDES.length] as LongTermSide]
    for (const [day, blob] of Object.entries(fields)) {
      try {
        forEachPackedRecord(blob, (r) => {
          const key = r.partner.toString('latin1')
          if (ids.has(key)) return // forgotten too: its hashes go whole
          let e = out.get(key)
          if (!e) {
            e = new Map()
            out.set(key, e)
          }
          let set = e.get(theirs)
          if (!set) {
            set = new Set()
            e.set(theirs, set)
          }
          set.add(day)
        })
      } catch (err) {
        if (!(err instanceof LongTermCodecError)) throw err
        result.badBlobs++
      }
    }
  })
  return out
}

const MAX_ROUNDS = 8

/** Rewrites one chunk of targets: read, remove, compare-and-set, again where a blob changed meanwhile. */
async function rewriteChunk(
  redis: Redis,
  scripts: RollupScripts,
  fence: RollupFence,
  targets: Target[],
  ids: ReadonlySet<string>,
  result: LongTermForgetResult,
): Promise<void> {
  const read = pipelineFor(redis)
  for (const t of targets) read.hmgetBuffer(t.key, ...t.days)
  let current = ((await values(read)) as (Buffer | null)[][]).map((blobs, i) =>
    blobs.map((b, j) => [(targets[i] as Target).days[j] as string, b] as const),
  )
  let todo = targets
  for (let round = 0; todo.length > 0; round++) {
    if (round === MAX_ROUNDS) throw new Error('a day blob kept changing under the forget step')
    const pipe = pipelineFor(scripts) as RollupPipeline
    const sent: { key: string; days: string[]; removed: number[] }[] = []
    todo.forEach((target, i) => {
      const args: (string | number | Buffer)[] = []
      const days: string[] = []
      const removed: number[] = []
      for (const [day, blob] of current[i] ?? []) {
        if (!blob) continue
        let cut: ReturnType<typeof without>
        try {
          cut = without(blob, ids)
        } catch (err) {
          if (!(err instanceof LongTermCodecError)) throw err
          result.badBlobs++
          continue
        }
        if (!cut) continue
        args.push(day, blob, cut.blob)
        days.push(day)
        removed.push(cut.removed)
      }
      if (args.length === 0) return
      pipe.forgetRewriteBuffer(fence.keyFor(target.key), target.key, fence.number, ...args)
      sent.push({ key: target.key, days, removed })
    })
    const replies = (await execFenced(pipe)) as (number | Buffer)[][]
    todo = []
    current = []
    replies.forEach((reply, i) => {
      const { key, days, removed } = sent[i] as (typeof sent)[number]
      const again: [string, Buffer][] = []
      reply.forEach((r, j) => {
        if (r === 1) {
          result.blobsRewritten++
          result.recordsRemoved += removed[j] as number
        } else if (Buffer.isBuffer(r)) again.push([days[j] as string, r])
      })
      if (again.length > 0) {
        // A fold wrote this blob since it was read: remove from the blob as it is now.
        todo.push({ key, days: again.map(([d]) => d) })
        current.push(again)
      }
    })
  }
}

/**
 * Removes the ids of `dids` from every partner's day blobs (every side), behind the fence. Claims
 * the fence first (once per fence). Does not touch the accounts' own hashes.
 */
export async function forgetLongTerm(
  redis: Redis,
  schema: RedisSchema,
  fence: RollupFence,
  dids: readonly string[],
  opts: { chunk?: number; onProgress?: () => Promise<void> } = {},
): Promise<LongTermForgetResult> {
  const result: LongTermForgetResult = {
    partners: 0,
    blobsRewritten: 0,
    recordsRemoved: 0,
    partnersUnknown: 0,
    badBlobs: 0,
  }
  if (dids.length === 0) return result
  const scripts = withRollupScripts(redis)
  await fence.claim()
  const ids = new Set(dids.map((d) => didId(d).toString('latin1')))
  const byPartner = await partnerDays(redis, schema, dids, ids, result)
  const resolved = await resolveIds(redis, schema, [...byPartner.keys()], new DidCache(100_000))
  result.partnersUnknown = byPartner.size - resolved.size
  const targets: Target[] = []
  for (const [key, days] of byPartner) {
    const did = resolved.get(key)
    if (did === undefined) continue
    for (const [side, set] of days) {
      targets.push({ key: schema.longTerm(did, side), days: [...set] })
    }
  }
  result.partners = targets.length
  const chunk = opts.chunk ?? 500
  for (let i = 0; i < targets.length; i += chunk) {
    await rewriteChunk(redis, scripts, fence, targets.slice(i, i + chunk), ids, result)
    await opts.onProgress?.()
  }
  return result
}
