import { DAY_MS, HOUR_MS, isValidDid } from '@circles/core'
import {
  DID_TABLE_BUCKETS,
  didId,
  didTableBucket,
  unpackDidText,
  WINDOW_HOURS,
} from '@circles/interaction-index'
import { LONG_TERM_SIDES, type RedisSchema } from '@circles/redis-schema'
import { groupByNode } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import { execFenced, type Fence, type RollupPipeline, withRollupScripts } from './fence.js'
import { type ReclaimHooks, reclaimTableEntries } from './forget-table.js'

// The DID table forgets accounts that went quiet (issue 14, item 4). Their logs and long-term hashes
// expire by themselves; their entries (id -> DID) do not. Each prune run reads the next slice of the
// table's buckets (`didTableSweepCursor`; `bucketsPerRun` covers the table once per DID_TABLE_SWEEP_HOURS)
// and reclaims the entries of accounts that have no data left, with the forget step's reclaim
// (forget-table.ts: check, fenced HDEL, INCR the epoch, check again and write back). First a cheap check
// of every entry (one EXISTS of the main log and all four long-term hashes); only the accounts with none of
// them get the reclaim's full check, which adds the spill logs. A spill log can outlive its main log: a
// purge deletes a main log it emptied, and so does a compaction that dropped all of the main log's records
// (a delete found in a spill log, say) while a later hour's spill log still holds newer ones.
//
// The full check here counts the spill logs of the hours from the window's start - 1 h on
// (`SPILL_FROM_HOURS`), not the ~400 hours of the longest grace (the forget step's range): 57 keys an account
// instead of ~400, which was most of the sweep's cost. Older spill logs may exist (a grace of days keeps
// them), but nothing reads them any more: the readers' window is later, and the roll-up has folded those
// hours (the sweep waits for it, below), writing the account's own long-term blobs, which outlive the spill
// log unless the retention is shorter than the window + grace or the forget step deleted them (that account's
// partners' blobs were rewritten with it).
//
// Why nothing else still needs the id once the account has none of those keys:
// - live logs: an interaction is written on both sides, and a log expires one keep (window + grace) after
//   its newest record's hour, so a partner's record of it is within a reader's window only while the
//   account's own log of that hour holds the mirror; the compaction drops an account's records only once
//   their hour is folded and out of the window. Older records in a partner's log are ignored by the
//   readers (the API reads the window; the roll-up has folded those hours).
// - the roll-up reads hours it has not folded yet. If it has fallen behind (an hour older than the window
//   + 1 h still unfolded), it reads partners' records whose mirrors may have expired with their accounts'
//   logs, and a reclaimed entry would make it drop those rows: the sweep waits until it has caught up
//   (`stopped: 'rollup-behind'`). Then every hour left to fold is within `SPILL_FROM_HOURS`, whose logs
//   are checked, and are kept at least 1 h (the least grace) past now. A fold beside the sweep that writes
//   the account's blobs after the reclaim writes its entry again, under the epoch (fold.ts).
// - long-term blobs: a fold writes both sides of a row into the same day (`s` and the partner's `r`), and
//   so does a backfill (`bs` and the partner's `br`), and the account's hashes expire at their newest day
//   + retention + 1 day, so a partner's day field that names it is older than the retention once they
//   are gone, and this same run's day-field prune (which runs before the sweep, at the same retention,
//   over every side) has deleted it. This needs the run's day to be no earlier than Redis's, whose
//   clock the expiry follows: every cheap check reads Redis's TIME after its EXISTS, and a sweep that finds
//   Redis's day past the run's stops there (the next run goes on). A partner's blob that names an account
//   whose own blob is missing otherwise comes only from a forget (the forget step handles those).
// - the hour index (`hourAuthors`) names authors of hours not yet folded, whose logs are checked.
//
// Fenced with the prune's own fence (the HDEL, the pending marks, the removal of bad entries). The reclaim
// needs no exclusion for its correctness (forget-table.ts); the fence is what makes the pending marks
// sound: a run writes them before its HDEL and removes them after its second check, and a run that died in
// between leaves them for the next, which checks those accounts first. Once the next holder has claimed
// the fence, a stale runner can neither HDEL nor remove a mark, so what the new holder reads is complete.
// The cursor is a plain SET: a stale runner's write only makes some buckets be swept again or a cycle
// later, and nothing depends on when an entry goes.

/** Hours before now of the oldest spill log the full check counts and of the oldest unfolded hour. */
const SPILL_FROM_HOURS = WINDOW_HOURS + 1

export interface TableSweepOptions {
  /** The prune holder's fence. */
  fence: Fence
  /** Buckets read per run (`bucketsPerRun`). */
  buckets: number
  /**
   * Accounts per reclaim (one INCR of the epoch each, after which every indexer writes the entries of the
   * accounts it meets again, once). @default 1000
   */
  batch?: number
  /** Called after each bucket and each reclaim (the job extends its lock there). */
  onProgress?: () => Promise<void>
  /** Test hooks inside the reclaim. */
  hooks?: ReclaimHooks
}

export interface TableSweepResult {
  /** The first bucket read, buckets read, and where the next run starts. */
  from: number
  buckets: number
  next: number
  /** The cursor passed the last bucket and started again at 0 in this run. */
  wrapped: boolean
  /** Entries read, and those removed as bad (the value is no DID, or the field is not its id). */
  entries: number
  bad: number
  /** Accounts without a main log or long-term hash, given the reclaim's full check. */
  candidates: number
  /** From the reclaim: entries gone, HDELs that found one, kept (data found), written back. */
  reclaimed: number
  entriesDeleted: number
  kept: number
  putBack: number
  /** Reclaims run (each moves the epoch once). */
  batches: number
  /** Accounts a run that died mid-reclaim left pending, checked again first. */
  recovered: number
  /**
   * Why the sweep stopped before its last bucket: Redis's clock had passed the run's day, or the roll-up
   * is behind (then it did not start). See above.
   */
  stopped: 'clock' | 'rollup-behind' | null
  ms: number
}

/** Buckets per run so that runs every `pruneEveryMs` read the whole table within `sweepHours`. */
export function bucketsPerRun(pruneEveryMs: number, sweepHours: number): number {
  const n = Math.ceil((DID_TABLE_BUCKETS * pruneEveryMs) / (sweepHours * HOUR_MS))
  return Math.max(1, Math.min(DID_TABLE_BUCKETS, n))
}

/** One bucket's entries: the DIDs of good ones, and [field, value] of bad ones. */
function classify(bucket: number, flat: Buffer[]): { dids: string[]; bad: Buffer[] } {
  const dids = new Map<string, string>()
  const bad = new Map<string, Buffer[]>()
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = flat[i] as Buffer
    const value = flat[i + 1] as Buffer
    const did = unpackDidText(value.toString('utf8'))
    const good =
      isValidDid(did) &&
      field.length === 8 &&
      didTableBucket(field) === bucket &&
      didId(did).equals(field)
    // HSCAN may return a field twice: keyed by the field's bytes.
    if (good) dids.set(field.toString('latin1'), did)
    else bad.set(field.toString('latin1'), [field, value])
  }
  return { dids: [...dids.values()], bad: [...bad.values()].flat() }
}

/** Every field and value of one bucket (HSCAN: a big hash comes in pages). */
async function readBucket(redis: Redis, key: string): Promise<Buffer[]> {
  const out: Buffer[] = []
  let cursor = '0'
  do {
    const [next, page] = await redis.hscanBuffer(key, cursor, 'COUNT', 1000)
    cursor = next.toString()
    for (const b of page) out.push(b)
  } while (cursor !== '0')
  return out
}

/**
 * The accounts of `dids` with no main log and no long-term hash, or null when Redis's day (TIME, read
 * after the EXISTS) is past `day`: the check then proves nothing about partners' day fields (see above).
 * On a cluster each node's pipeline ends with that node's TIME: its keys expire by its own clock.
 */
async function withoutKeys(
  redis: Redis,
  schema: RedisSchema,
  dids: readonly string[],
  day: number,
): Promise<string[] | null> {
  const out: string[] = []
  for (let i = 0; i < dids.length; i += 2000) {
    const groups = groupByNode(redis, dids.slice(i, i + 2000), (d) => schema.accountLog(d))
    const checked = await Promise.all(groups.map((g) => nodeWithoutKeys(redis, schema, g, day)))
    if (checked.includes(null)) return null
    for (const quiet of checked) out.push(...(quiet as string[]))
  }
  return out
}

/** `withoutKeys` of accounts whose keys are all on one node: one pipeline, TIME last. */
async function nodeWithoutKeys(
  redis: Redis,
  schema: RedisSchema,
  chunk: readonly string[],
  day: number,
): Promise<string[] | null> {
  const pipe = redis.pipeline()
  for (const d of chunk) {
    pipe.exists(schema.accountLog(d), ...LONG_TERM_SIDES.map((side) => schema.longTerm(d, side)))
  }
  pipe.time()
  const replies = (await pipe.exec()) ?? []
  const [err, time] = replies[chunk.length] ?? [null, null]
  if (err) throw err
  if (Math.floor((Number((time as [string, string])[0]) * 1000) / DAY_MS) > day) return null
  const out: string[] = []
  chunk.forEach((d, j) => {
    const [e, n] = replies[j] ?? [null, 0]
    if (e) throw e
    if (n === 0) out.push(d)
  })
  return out
}

/** The sweep's state through one run. */
interface Sweep {
  redis: Redis
  schema: RedisSchema
  opts: TableSweepOptions
  nowMs: number
  result: TableSweepResult
}

/** Marks `dids` pending, reclaims their entries, then removes the marks (all fenced; see above). */
async function reclaimBatch(s: Sweep, dids: readonly string[]): Promise<void> {
  if (dids.length === 0) return
  const { redis, schema, opts, result } = s
  const { fence } = opts
  const key = schema.didTableSweepPending
  const scripts = withRollupScripts(redis)
  const mark = scripts.pipeline() as RollupPipeline
  mark.rollupHset(
    fence.keyFor(key),
    key,
    fence.number,
    ...dids.flatMap((d) => [d, String(s.nowMs)]),
  )
  await execFenced(mark)
  const r = await reclaimTableEntries(redis, schema, fence, dids, s.nowMs, {
    hooks: opts.hooks,
    spillFromHour: Math.floor(s.nowMs / HOUR_MS) - SPILL_FROM_HOURS,
  })
  result.reclaimed += r.reclaimed
  result.entriesDeleted += r.entriesDeleted
  result.kept += r.kept
  result.putBack += r.putBack
  result.batches++
  const unmark = scripts.pipeline() as RollupPipeline
  unmark.rollupHdel(fence.keyFor(key), key, fence.number, ...dids)
  await execFenced(unmark)
}

/** Checks again the accounts a run that died mid-reclaim left pending; drops marks that are no DID. */
async function recoverPending(s: Sweep): Promise<void> {
  const { redis, schema, opts } = s
  const key = schema.didTableSweepPending
  const members = await redis.hkeys(key)
  const dids = members.filter((m) => isValidDid(m))
  const junk = members.filter((m) => !isValidDid(m))
  if (junk.length > 0) {
    const pipe = withRollupScripts(redis).pipeline() as RollupPipeline
    pipe.rollupHdel(opts.fence.keyFor(key), key, opts.fence.number, ...junk)
    await execFenced(pipe)
  }
  const size = opts.batch ?? 1000
  for (let i = 0; i < dids.length; i += size) await reclaimBatch(s, dids.slice(i, i + size))
  s.result.recovered = dids.length
}

/** Removes a bucket's bad entries, each only while it still holds the value read. */
async function removeBad(s: Sweep, bucket: number, pairs: Buffer[]): Promise<void> {
  if (pairs.length === 0) return
  const { fence } = s.opts
  const key = s.schema.didTable(bucket)
  const pipe = withRollupScripts(s.redis).pipeline() as RollupPipeline
  pipe.fencedHdelEqual(fence.keyFor(key), key, fence.number, ...pairs)
  const [n] = await execFenced(pipe)
  s.result.bad += n as number
}

function readCursor(raw: string | null): number {
  const n = raw === null ? 0 : Number(raw)
  return Number.isInteger(n) && n >= 0 && n < DID_TABLE_BUCKETS ? n : 0
}

/** Whether an hour older than the window + 1 h is still waiting for the roll-up (see above). */
async function rollupBehind(redis: Redis, schema: RedisSchema, nowMs: number): Promise<boolean> {
  const hours = (await redis.smembers(schema.indexHours)).map(Number).filter(Number.isSafeInteger)
  const oldest = Math.min(...hours)
  return oldest < Math.floor(nowMs / HOUR_MS) - SPILL_FROM_HOURS
}

/**
 * Reads `total` buckets from `from` on, in rounds: a round reads buckets until it holds a batch of
 * candidates, reclaims them, then moves the cursor past the buckets read (a run that dies reads those
 * again, never skips one).
 */
async function sweepBuckets(s: Sweep, from: number, total: number, day: number): Promise<void> {
  const { redis, schema, opts, result } = s
  const size = opts.batch ?? 1000
  let read = 0
  while (read < total && result.stopped === null) {
    let held: string[] = []
    let bucket = (from + read) % DID_TABLE_BUCKETS
    while (read < total && held.length < size) {
      const { dids, bad } = classify(bucket, await readBucket(redis, schema.didTable(bucket)))
      const quiet = dids.length === 0 ? [] : await withoutKeys(redis, schema, dids, day)
      if (quiet === null) {
        result.stopped = 'clock'
        break
      }
      result.entries += dids.length + bad.length / 2
      await removeBad(s, bucket, bad)
      held = held.concat(quiet)
      read++
      bucket = (from + read) % DID_TABLE_BUCKETS
      // A round without candidates reads every bucket of the slice: the lock is extended as it goes.
      await opts.onProgress?.()
    }
    result.candidates += held.length
    await reclaimBatch(s, held)
    result.buckets = read
    result.next = bucket
    result.wrapped = from + read >= DID_TABLE_BUCKETS
    await redis.set(schema.didTableSweepCursor, String(bucket))
    await opts.onProgress?.()
  }
}

/**
 * Sweeps the next `opts.buckets` buckets of the DID table (see above). `day` is the day the run's
 * day-field prune used. Throws FencedOutError once another prune holder has claimed the fence.
 */
export async function sweepDidTable(
  redis: Redis,
  schema: RedisSchema,
  day: number,
  nowMs: number,
  opts: TableSweepOptions,
): Promise<TableSweepResult> {
  const started = performance.now()
  const from = readCursor(await redis.get(schema.didTableSweepCursor))
  const result: TableSweepResult = {
    from,
    buckets: 0,
    next: from,
    wrapped: false,
    entries: 0,
    bad: 0,
    candidates: 0,
    reclaimed: 0,
    entriesDeleted: 0,
    kept: 0,
    putBack: 0,
    batches: 0,
    recovered: 0,
    stopped: null,
    ms: 0,
  }
  const s: Sweep = { redis, schema, opts, nowMs, result }
  if (await rollupBehind(redis, schema, nowMs)) {
    // Pending marks wait too: the fold writes the names of every account of the hours it folds.
    result.stopped = 'rollup-behind'
  } else {
    await opts.fence.claim()
    await recoverPending(s)
    await sweepBuckets(s, from, Math.min(opts.buckets, DID_TABLE_BUCKETS), day)
  }
  result.ms = Math.round(performance.now() - started)
  return result
}
