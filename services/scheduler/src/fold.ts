import { createHash } from 'node:crypto'
import { DAY_MS, HOUR_MS } from '@circles/core'
import { didTableEntries } from '@circles/interaction-index'
import {
  dayBlobMark,
  encodeDayBlobRows,
  forEachPackedRecord,
  markOfHour,
  mergeDayBlob,
  type PackedRecord,
} from '@circles/long-term'
import type { RedisSchema } from '@circles/redis-schema'
import { Frame, type FrameSender, pipelineFor, wireFor } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import {
  execFenced,
  fenceError,
  type RollupFence,
  type RollupPipeline,
  type RollupScripts,
  withRollupScripts,
} from './fence.js'
import { type HourTable, idRanks, orderByPartner } from './hour-table.js'
import { luaScript } from './lua.js'

// Folding one hour into the long-term day blobs, one account per script call (its two hashes share its
// hash tag). The script (lua/fenced-fold.lua) writes a new blob where the day's field is absent, skips a
// field whose mark already covers this hour, and otherwise returns the field's blob. Node merges into it
// (the codec lives in one place, packages/long-term/src/day-blob.ts) and calls the script again
// with the mark and length of the blob it merged from: the script writes only over that same blob, or
// returns the newer one to merge again. That is WATCH's optimistic retry inside the script, so it needs no
// connection per transaction, pipelines like the first call, and stays in one slot.

export interface FoldOptions {
  /** Days a long-term day blob is kept after its day. @default 90 */
  retentionDays: number
  /** The lock holder's fence: every write checks it (fence.ts). */
  fence: RollupFence
  /** Accounts per write pipeline. @default 1000 */
  chunk?: number
  /** Called between write chunks; a test throws from it to simulate a crash half-way. */
  onChunk?: (done: number) => void | Promise<void>
  /** Called between read batches and write chunks alike (the job extends its lock there). */
  onProgress?: () => Promise<void>
  /** Called after a chunk's blobs were read for a merge, before the merges are sent (a test stalls here). */
  beforeMerge?: () => Promise<void>
  /** Called after the hour's DID table entries, before its blobs (a test races a reclaim here). */
  afterNames?: () => Promise<void>
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

// The script calls (~2 per account: 200k for an hour of 5M interactions) go as RESP frames on a
// connection of the fold's own (@circles/redis-wire; a ClusterWire routes each by its keys' slot), not as
// ioredis Commands, whose building was a quarter of the fold's CPU (BENCHMARKS.md, "Roll-up"). Each frame
// starts with the script's SCRIPT LOAD (sent to every primary), so its EVALSHAs never meet NOSCRIPT.
const FOLD_LUA = luaScript('fenced-fold')
const FOLD_SHA = createHash('sha1').update(FOLD_LUA).digest('hex')

function foldFrame(): Frame {
  const frame = new Frame(1 << 20)
  frame.call('SCRIPT', 'LOAD', FOLD_LUA)
  return frame
}

/** A frame's script replies (SCRIPT LOAD's left out); the first error reply thrown (FENCED as such). */
async function sendFold(wire: FrameSender, frame: Frame): Promise<(number | Buffer)[][]> {
  const replies = await wire.send(frame)
  for (const r of replies) if (r instanceof Error) throw fenceError(r)
  return replies.slice(1) as (number | Buffer)[][]
}

/** A merge that keeps losing its compare-and-set means someone else keeps writing: give up loudly. */
const MAX_MERGE_ROUNDS = 8

/** One account of a chunk: its new blobs (sent, received; null = no rows) and their row counts. */
interface Item {
  id: number
  blobs: [Buffer | null, Buffer | null]
  n: [number, number]
}

function recordsOf(blob: Buffer): PackedRecord[] {
  const out: PackedRecord[] = []
  forEachPackedRecord(blob, (r) => out.push(r))
  return out
}

/** One hour's fold: the values every call shares, and the counts so far. */
class HourFold {
  readonly result: FoldResult
  readonly dayField: string
  readonly mark: number
  readonly expireAt: number

  constructor(
    readonly scripts: RollupScripts,
    readonly wire: FrameSender,
    readonly schema: RedisSchema,
    readonly table: HourTable,
    readonly opts: FoldOptions,
    hour: number,
  ) {
    const day = Math.floor((hour * HOUR_MS) / DAY_MS)
    this.dayField = String(day)
    this.mark = markOfHour(hour)
    this.expireAt = (day + opts.retentionDays + 1) * DAY_MS
    this.result = { hour, created: 0, merged: 0, alreadyDone: 0, records: 0 }
  }

  /** Queues one call: `had` is the [mark, length] per direction of the blob each was merged from. */
  call(frame: Frame, item: Item, blobs: (Buffer | null)[], had: number[][]): void {
    const { fence } = this.opts
    const did = this.table.dids[item.id] as string
    const s = this.schema.longTerm(did, 's')
    const [s0, s1] = had[0] ?? [0, 0]
    const [r0, r1] = had[1] ?? [0, 0]
    frame.call(
      'EVALSHA',
      FOLD_SHA,
      3,
      fence.keyFor(s),
      s,
      this.schema.longTerm(did, 'r'),
      fence.number,
      this.dayField,
      this.mark,
      this.expireAt,
      blobs[0] ?? '',
      s0 as number,
      s1 as number,
      blobs[1] ?? '',
      r0 as number,
      r1 as number,
    )
  }

  /**
   * One chunk's replies: count them, then merge where the day's field already held earlier hours, and
   * again where a field changed under a merge, until every blob has this hour.
   */
  async settle(frame: Frame, items: Item[]): Promise<void> {
    let replies = await sendFold(this.wire, frame)
    let batch = items
    for (let round = 0; ; round++) {
      const again: { item: Item; cur: (Buffer | null)[] }[] = []
      replies.forEach((reply, i) => {
        const item = batch[i] as Item
        const cur = this.count(item, reply, round)
        if (cur[0] || cur[1]) again.push({ item, cur })
      })
      if (again.length === 0) return
      if (round === MAX_MERGE_ROUNDS) {
        throw new Error(`hour ${this.result.hour}: a day blob kept changing under the merge`)
      }
      await this.opts.beforeMerge?.()
      const merges = foldFrame()
      for (const { item, cur } of again) {
        const blobs = cur.map((c, d) =>
          c ? mergeDayBlob(c, this.mark, recordsOf(item.blobs[d] as Buffer)) : null,
        )
        this.call(
          merges,
          item,
          blobs,
          cur.map((c) => (c ? [dayBlobMark(c), c.length] : [0, 0])),
        )
      }
      batch = again.map((a) => a.item)
      replies = await sendFold(this.wire, merges)
    }
  }

  /** Counts one call's reply; returns the blobs (per direction) that still need a merge. */
  private count(item: Item, reply: (number | Buffer)[], round: number): (Buffer | null)[] {
    const cur: (Buffer | null)[] = [null, null]
    for (let d = 0; d < 2; d++) {
      const r = reply[d]
      if (r === -1 || r === undefined) continue
      if (r === 0) this.result.alreadyDone++
      else if (r === 1) {
        if (round === 0) this.result.created++
        else this.result.merged++
        this.result.records += item.n[d] as number
      } else cur[d] = r as Buffer
    }
    return cur
  }
}

/**
 * Writes the DID table entries (id -> DID) of an hour's accounts, each bucket behind the fence of its slot.
 * An entry is the same whoever writes it, but not when: a stale runner that read the hour before the forget
 * step reclaimed an account's entry must not write it back (forget-table.ts).
 */
async function rememberFenced(
  scripts: RollupScripts,
  schema: RedisSchema,
  fence: RollupFence,
  dids: readonly string[],
  ids: Buffer,
): Promise<void> {
  let pipe = pipelineFor(scripts) as RollupPipeline
  for (const [bucket, fields] of didTableEntries(dids, ids)) {
    const key = schema.didTable(bucket)
    pipe.rollupHset(fence.keyFor(key), key, fence.number, ...fields)
    if (pipe.length >= 1000) {
      await execFenced(pipe)
      pipe = pipelineFor(scripts) as RollupPipeline
    }
  }
  await execFenced(pipe)
}

/** Folds one hour into the long-term aggregates (idempotent per day blob; see rollup.ts). */
export async function foldHour(
  redis: Redis,
  schema: RedisSchema,
  hour: number,
  table: HourTable,
  opts: FoldOptions,
): Promise<FoldResult> {
  const wire = wireFor(redis)
  try {
    return await foldWith(redis, schema, hour, table, opts, wire)
  } finally {
    await wire.close()
  }
}

async function foldWith(
  redis: Redis,
  schema: RedisSchema,
  hour: number,
  table: HourTable,
  opts: FoldOptions,
  wire: FrameSender,
): Promise<FoldResult> {
  const fold = new HourFold(withRollupScripts(redis), wire, schema, table, opts, hour)
  const chunk = opts.chunk ?? 1000
  const packed = table.idArena()
  await opts.fence.claim()
  // Names first: every partner id a blob will hold must resolve through the DID table. The epoch is read
  // before them, for the check after the blobs (below).
  const epoch = await redis.get(schema.didTableEpoch)
  await rememberFenced(fold.scripts, schema, opts.fence, table.dids, packed)
  await opts.afterNames?.()
  // Each account's rows in its blobs' order (partner id, kind), so the encoder does not sort them.
  const rank = idRanks(packed)
  const sent = table.groupBy(table.author, orderByPartner(table, table.subject, rank))
  const received = table.groupBy(table.subject, orderByPartner(table, table.author, rank))
  // a sent row's partner is its subject, a received row's its author
  const sentRows = table.rows(table.subject, packed)
  const receivedRows = table.rows(table.author, packed)
  const accounts = table.dids.length
  const inFlight = new Set<Promise<void>>()
  let failure: unknown = null
  let done = 0
  for (let first = 0; first < accounts; first += chunk) {
    const last = Math.min(accounts, first + chunk)
    const frame = foldFrame()
    const items: Item[] = []
    for (let id = first; id < last; id++) {
      const s0 = sent.start[id] as number
      const s1 = sent.start[id + 1] as number
      const r0 = received.start[id] as number
      const r1 = received.start[id + 1] as number
      const item: Item = {
        id,
        blobs: [
          s1 > s0 ? encodeDayBlobRows(fold.mark, sentRows, sent.order, s0, s1) : null,
          r1 > r0 ? encodeDayBlobRows(fold.mark, receivedRows, received.order, r0, r1) : null,
        ],
        n: [s1 - s0, r1 - r0],
      }
      fold.call(frame, item, item.blobs, [])
      items.push(item)
    }
    // A few chunks in flight: Node encodes the next while Redis runs the previous.
    const p = fold
      .settle(frame, items)
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
  // The fold is a writer like the indexer's: the prune's table sweep, which runs beside it, may reclaim the
  // entry of an account whose logs expired after this hour was read (a fold running late) and whose blobs
  // were not written yet when it checked a second time. Such a reclaim INCRs the epoch after its HDEL and
  // before that check, so a blob written after the check is written after the INCR, and the epoch read
  // here, after every blob, differs from the one read before the names: they are written again. A reclaim
  // whose second check came after a blob sees the blob and writes the entry back itself. (The forget step
  // runs in this runner before the fold, not beside it.) Two GETs per hour; a runner that dies before this
  // leaves the cursor behind the hour, and the rerun writes the names first again.
  if ((await redis.get(schema.didTableEpoch)) !== epoch) {
    await rememberFenced(fold.scripts, schema, opts.fence, table.dids, packed)
  }
  return fold.result
}
