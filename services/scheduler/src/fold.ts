import { DAY_MS, HOUR_MS } from '@circles/core'
import {
  forEachPackedRecord,
  mergeDayBlob,
  type PackedRecord,
  rememberDids,
} from '@circles/interaction-index'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { encodeRows, type HourTable, PackedIds } from './hour-table.js'

// Folding one hour into the long-term day blobs, one account per script call (its two hashes share its
// hash tag, so this is one slot).

/**
 * Lua, one account (both keys share its hash tag, so this is one slot): for each direction with a blob,
 * a new day field is written; a field already at or past this hour is left alone (0); an older field is
 * returned for a merge in Node (rare: only the first fold of an account's day can skip it). The expiry is
 * pushed out to the day's end of retention. KEYS: sent, received. ARGV: day, mark, sent blob or '',
 * received blob or '', expireAt ms.
 */
const FOLD_LUA = `
local out = {}
for i = 1, 2 do
  local blob = ARGV[2 + i]
  if blob == '' then
    out[i] = -1
  else
    local cur = redis.call('HGET', KEYS[i], ARGV[1])
    if not cur then
      redis.call('HSET', KEYS[i], ARGV[1], blob)
      redis.call('PEXPIREAT', KEYS[i], ARGV[5])
      out[i] = 1
    elseif string.byte(cur, 1) >= tonumber(ARGV[2]) then
      out[i] = 0
    else
      out[i] = cur
    end
  end
end
return out
`

type FoldRedis = Redis & {
  foldDayBuffer(
    sentKey: string,
    receivedKey: string,
    day: string,
    mark: number,
    sent: Buffer | string,
    received: Buffer | string,
    expireAt: number,
  ): Promise<(number | Buffer)[]>
}

function withFold(redis: Redis): FoldRedis {
  const r = redis as FoldRedis
  if (typeof r.foldDayBuffer !== 'function') {
    redis.defineCommand('foldDay', { numberOfKeys: 2, lua: FOLD_LUA })
  }
  return r
}

export interface FoldOptions {
  /** Days a long-term day blob is kept after its day. @default 90 */
  retentionDays: number
  /** Accounts per write pipeline. @default 1000 */
  chunk?: number
  /** Called between write chunks; a test throws from it to simulate a crash half-way. */
  onChunk?: (done: number) => void | Promise<void>
  /** Called between read batches and write chunks alike (the job extends its lock there). */
  onProgress?: () => Promise<void>
}

export interface FoldResult {
  hour: number
  /** Day blobs written for the first time, merged into, and skipped as already holding this hour. */
  created: number
  merged: number
  alreadyDone: number
  /** (pair, kind) records written, both directions. */
  records: number
}

function recordsOf(blob: Buffer): PackedRecord[] {
  const out: PackedRecord[] = []
  forEachPackedRecord(blob, (r) => out.push(r))
  return out
}

/** Folds one hour into the long-term aggregates (idempotent per day blob; see rollup.ts). */
export async function foldHour(
  redis: Redis,
  schema: RedisSchema,
  hour: number,
  table: HourTable,
  opts: FoldOptions,
): Promise<FoldResult> {
  const fold = withFold(redis)
  const day = Math.floor((hour * HOUR_MS) / DAY_MS)
  const dayField = String(day)
  const mark = (hour % 24) + 1
  const expireAt = (day + opts.retentionDays + 1) * DAY_MS
  const chunk = opts.chunk ?? 1000
  const packed = new PackedIds(table.dids)
  // Names first: every partner id a blob will hold must resolve through the DID table.
  await rememberDids(redis, schema, table.dids)
  const sent = table.groupBy(table.author)
  const received = table.groupBy(table.subject)
  const accounts = table.dids.length
  const result: FoldResult = { hour, created: 0, merged: 0, alreadyDone: 0, records: 0 }
  const inFlight = new Set<Promise<void>>()
  let failure: unknown = null

  // One chunk's replies: count them, and merge where an earlier hour of the same day is already there.
  async function settle(
    pipe: ReturnType<Redis['pipeline']>,
    pending: { id: number; blobs: [Buffer | null, Buffer | null]; n: [number, number] }[],
  ): Promise<void> {
    const replies = (await pipe.exec()) ?? []
    const merges = fold.pipeline()
    let mergeCount = 0
    for (let i = 0; i < replies.length; i++) {
      const [err, reply] = replies[i] as [Error | null, (number | Buffer)[]]
      if (err) throw err
      const item = pending[i] as (typeof pending)[number]
      for (let d = 0; d < 2; d++) {
        const r = reply[d]
        const blob = item.blobs[d]
        if (r === -1 || !blob) continue
        const n = item.n[d] as number
        if (r === 1) {
          result.created++
          result.records += n
        } else if (r === 0) result.alreadyDone++
        else {
          const key = schema.longTerm(table.dids[item.id] as string, d === 0 ? 's' : 'r')
          merges.hset(key, dayField, mergeDayBlob(r as Buffer, mark, recordsOf(blob)))
          merges.pexpireat(key, expireAt)
          mergeCount++
          result.merged++
          result.records += n
        }
      }
    }
    if (mergeCount > 0) {
      for (const [err] of (await merges.exec()) ?? []) if (err) throw err
    }
  }

  let done = 0
  for (let first = 0; first < accounts; first += chunk) {
    const last = Math.min(accounts, first + chunk)
    const pipe = fold.pipeline()
    const pending: { id: number; blobs: [Buffer | null, Buffer | null]; n: [number, number] }[] = []
    for (let id = first; id < last; id++) {
      const s0 = sent.start[id] as number
      const s1 = sent.start[id + 1] as number
      const r0 = received.start[id] as number
      const r1 = received.start[id + 1] as number
      const blobs: [Buffer | null, Buffer | null] = [
        s1 > s0 ? encodeRows(table, packed, table.subject, sent.order, s0, s1, mark) : null,
        r1 > r0 ? encodeRows(table, packed, table.author, received.order, r0, r1, mark) : null,
      ]
      const did = table.dids[id] as string
      ;(pipe as unknown as FoldRedis).foldDayBuffer(
        schema.longTerm(did, 's'),
        schema.longTerm(did, 'r'),
        dayField,
        mark,
        blobs[0] ?? '',
        blobs[1] ?? '',
        expireAt,
      )
      pending.push({ id, blobs, n: [s1 - s0, r1 - r0] })
    }
    // A few chunks in flight: Node encodes the next while Redis runs the previous.
    const p = settle(pipe, pending)
      .catch((err) => {
        failure ??= err
      })
      .finally(() => inFlight.delete(p))
    inFlight.add(p)
    if (inFlight.size >= 3) await Promise.race(inFlight)
    if (failure) break
    done = last
    await opts.onChunk?.(done)
    await opts.onProgress?.()
  }
  await Promise.all(inFlight)
  if (failure) throw failure
  return result
}
