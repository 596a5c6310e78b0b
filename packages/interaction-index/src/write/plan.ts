import {
  EVENT_CREATE,
  EVENT_DELETE,
  EVENT_OTHER,
  type EventColumns,
  HOUR_MS,
  isValidRkey,
} from '@circles/core'
import {
  CODE_INBOUND,
  CODE_UNKNOWN,
  EDGE_SECONDS,
  hourAuthorShard,
  idDecimal,
  S32_VALUE,
  WINDOW_HOURS,
  writeRkey,
  writeTid,
} from '../layout.js'
import type { Account } from './accounts.js'
import type { WriterContext } from './context.js'
import { OP, Phase } from './ops.js'
import type { SideCommand } from './send.js'
import type { ApplyStats } from './stats.js'
import { rememberTable } from './table-memo.js'

/** Events a batch's loop handles between two turns of the event loop (about 20 ms of work). */
const YIELD_EVERY = 4096

/**
 * A TID's time in ms, or -1 for any other rkey: `isValidTid` and `tidTimestampMs` in one pass without a
 * regex (the hot loop asked both, up to three times per event).
 */
function tidMs(b: Buffer, start: number, end: number): number {
  if (end - start !== 13) return -1
  let micros = 0
  for (let i = 0; i < 13; i++) {
    const c = b[start + i] as number
    const v = c < 128 ? (S32_VALUE[c] as number) : -1
    if (v < 0 || (i === 0 && v > 15)) return -1
    if (i < 11) micros = micros * 32 + v
  }
  return Math.floor(micros / 1000)
}

/** `spillHour(rkey, timeMs)` of an rkey whose `tidMs` is `tms`. */
function spillHourOf(tms: number, timeMs?: number): number | null {
  if (tms < 0) return null
  const h = Math.floor(tms / HOUR_MS)
  return timeMs !== undefined && Math.floor(timeMs / HOUR_MS) !== h ? null : h
}

/** Spill hours stay within the window: a spill log outside it cannot exist (it expired or never was). */
function hourInRange(hour: number | null, nowHour: number, keepHours: number): number | null {
  if (hour === null || hour < nowHour - keepHours - 2 || hour > nowHour + 2) return null
  return hour
}

/**
 * Phase M of a segment, built from its rows of the columns: every operation of every account in stream
 * order, the subject side of each create ('i'), the author side of creates and deletes ('o', 'd'), plus
 * the DID table and hour index entries (`side`); and what its outcome is read against.
 */
export class SegmentPlan {
  readonly m: Phase
  /** Commands sent with phase M: the stale cache keys' DELs, then the hour index and DID table entries. */
  readonly side: SideCommand[]
  // Creates and deletes by their row (no object per event: a batch holds ~10^5 of them across the await
  // below, long enough for the young generation to promote them), and phase M's outcomes per create: the
  // subject side and the author side, 1 added, 0 present, -1 refused.
  readonly creates: Int32Array
  nCreates = 0
  readonly deletes: Int32Array
  nDeletes = 0
  readonly results: Int8Array
  readonly segment: number
  /** Every account the segment's creates name (once): their DID table entries, if the epoch moved. */
  readonly tabled: Account[] = []
  // New authors of each hour index shard: one SADD per shard, not one per author; new DID table entries:
  // one HSET per bucket (ioredis spends about as much Node CPU on a command as on a script call). HSET,
  // not HSETNX: the value of an id is a function of the id (barring a 64-bit collision).
  readonly hourAdds = new Map<string, string[]>()
  readonly table = new Map<number, (string | Buffer)[]>()
  // What this call marks as written (DID table entries, hour index members, new hours) before phase M has
  // written it: forgotten if phase M fails, so that the retry of the batch writes them again.
  readonly marks: Account[] = []
  readonly newHours: number[] = []
  private readonly nowHour: number
  private readonly minTime: number
  private readonly edgeSec: number

  constructor(
    private readonly ctx: WriterContext,
    private readonly cols: EventColumns,
    /** The segment's rows (creates and deletes; other rows are skipped) */
    private readonly from: number,
    private readonly to: number,
    nowMs: number,
    /** Cache keys identity events made stale (profiles, handle resolutions): deleted with the segment. */
    staleKeys: readonly string[],
  ) {
    this.nowHour = Math.floor(nowMs / HOUR_MS)
    this.minTime = nowMs - WINDOW_HOURS * HOUR_MS
    this.edgeSec = Math.floor(nowMs / 1000) - EDGE_SECONDS
    this.m = new Phase(ctx.opsPool)
    this.side = staleKeys.map((key) => ['DEL', key])
    this.creates = new Int32Array(to - from)
    this.segment = ++ctx.segments
    this.deletes = new Int32Array(to - from)
    this.results = new Int8Array(2 * (to - from))
  }

  /** Builds phase M from the segment's rows, counting what it skips in `stats`. */
  async build(stats: ApplyStats): Promise<void> {
    const { accounts, schema } = this.ctx
    const { cols, from, to } = this
    const { type, time, buf, authorStart, authorEnd, rkeyStart, rkeyEnd } = cols
    for (let i = from; i < to; i++) {
      // Let the event loop turn now and then: the previous call's phase M (megabytes) is still being
      // written to the connection, which the kernel takes a socket buffer at a time, and Redis waited for
      // the rest while this loop held the thread (BENCHMARKS.md, "Measurements the code relies on"). Other calls' phase C
      // may run meanwhile: an account they touch gets a second section here, which is still correct.
      if ((i - from) % YIELD_EVERY === YIELD_EVERY - 1) await new Promise((r) => setImmediate(r))
      const t = type[i]
      if (t === EVENT_OTHER) continue
      if (t === EVENT_CREATE) stats.creates++
      else stats.deletes++
      const b = buf[i] as Buffer
      const author = accounts.find(b, authorStart[i] as number, authorEnd[i] as number)
      // a TID is a valid rkey: only other rkeys need the regex
      const rs = rkeyStart[i] as number
      const tms = tidMs(b, rs, rkeyEnd[i] as number)
      const rkey = tms < 0 ? b.toString('utf8', rs, rkeyEnd[i]) : null
      if (!author || (rkey !== null && !isValidRkey(rkey))) {
        stats.invalid++
        continue
      }
      const eventTime = time[i] as number
      if (t === EVENT_DELETE) {
        this.addDelete(i, author, tms, rkey)
        continue
      }
      const subject = accounts.find(b, cols.subjectStart[i] as number, cols.subjectEnd[i] as number)
      if (!subject || subject === author) {
        stats.invalid++
        continue
      }
      if (eventTime < this.minTime) {
        stats.expired++
        continue
      }
      this.addCreate(i, author, subject, tms, rkey)
      this.addHour(author, eventTime)
      rememberTable(author, this.table, this.marks, this.tabled, this.segment)
      rememberTable(subject, this.table, this.marks, this.tabled, this.segment)
    }
    for (const [key, members] of this.hourAdds) this.side.push(['SADD', key, ...members])
    for (const [bucket, fields] of this.table)
      this.side.push(['HSET', schema.didTable(bucket), ...fields])
  }

  /** The author side of the delete in row `i`: its rkey is `rkey`, or (null) the TID whose time is `tms`. */
  private addDelete(i: number, author: Account, tms: number, rkey: string | null): void {
    const { buf, rkeyStart, time, code } = this.cols
    const eventTime = time[i] as number
    // A delete of a record older than the window needs no tombstone: its create can never be indexed.
    const old = tms >= 0 && tms < this.edgeSec * 1000
    const hour = hourInRange(spillHourOf(tms), this.nowHour, this.ctx.keepHours)
    const authorOps = this.m.account(author)
    const off = authorOps.add(old ? OP.delOld : OP.del, hour, -1 - this.nDeletes)
    const ops = authorOps.ops
    if (rkey === null) writeTid(buf[i] as Buffer, rkeyStart[i] as number, ops, off)
    else writeRkey(rkey, ops, off)
    // record codes: COLUMN_RECORDS order = RECORD_TYPE_CODES
    ops[off + 8] = CODE_UNKNOWN | (code[i] as number)
    ops.writeInt32BE(0, off + 9)
    ops.writeInt32BE(0, off + 13)
    ops.writeUInt32BE(Math.max(0, Math.floor(eventTime / 1000)) >>> 0, off + 17)
    ops.writeUInt16BE(0, off + 21)
    this.deletes[this.nDeletes++] = i
  }

  /** Both sides of the create in row `i` (its rkey as in `addDelete`). */
  private addCreate(
    i: number,
    author: Account,
    subject: Account,
    tms: number,
    rkey: string | null,
  ) {
    const { buf, rkeyStart, time, code, chars: charsOf } = this.cols
    const eventTime = time[i] as number
    const sec = Math.floor(eventTime / 1000) >>> 0
    const chars = Math.min(charsOf[i] as number, 65535)
    // kind codes: COLUMN_KINDS order = KIND_CODES
    const kind = code[i] as number
    const hour = spillHourOf(tms, eventTime)
    const index = this.nCreates
    // refs: 2i the subject side of create i, 2i + 1 its author side
    const subjectOps = this.m.account(subject)
    const off = subjectOps.add(OP.addIn, hour, 2 * index)
    let ops = subjectOps.ops
    if (rkey === null) writeTid(buf[i] as Buffer, rkeyStart[i] as number, ops, off)
    else writeRkey(rkey, ops, off)
    ops[off + 8] = kind | CODE_INBOUND
    ops.writeInt32BE(author.idHi, off + 9)
    ops.writeInt32BE(author.idLo, off + 13)
    ops.writeUInt32BE(sec, off + 17)
    ops.writeUInt16BE(chars, off + 21)
    const authorOps = this.m.account(author)
    const outOff = authorOps.add(OP.addOut, hour, 2 * index + 1)
    const inOps = ops
    ops = authorOps.ops
    for (let k = 0; k < 8; k++) ops[outOff + k] = inOps[off + k] as number
    ops[outOff + 8] = kind
    ops.writeInt32BE(subject.idHi, outOff + 9)
    ops.writeInt32BE(subject.idLo, outOff + 13)
    ops.writeUInt32BE(sec, outOff + 17)
    ops.writeUInt16BE(chars, outOff + 21)
    this.creates[this.nCreates++] = i
  }

  /** The hour index entries of a create by `author` at `eventTime`, unless this process wrote them. */
  private addHour(author: Account, eventTime: number): void {
    const { hoursSeen, schema } = this.ctx
    const eventHour = Math.floor(eventTime / HOUR_MS)
    if (!hoursSeen.has(eventHour)) {
      if (hoursSeen.size > WINDOW_HOURS * 2) hoursSeen.clear()
      hoursSeen.add(eventHour)
      this.newHours.push(eventHour)
      this.side.push(['SADD', schema.indexHours, eventHour])
    }
    // An author's events come in time order, nearly: remembering its latest hour spares the SADD of
    // nearly every event (one that goes back an hour is added again: SADD is idempotent).
    if (author.indexedHour !== eventHour) {
      author.indexedHour = eventHour
      this.marks.push(author)
      const key = schema.hourAuthors(eventHour, hourAuthorShard(author.info.id))
      author.decimal ??= idDecimal(author.info.id)
      const members = this.hourAdds.get(key)
      if (members) members.push(author.decimal)
      else this.hourAdds.set(key, [author.decimal])
    }
  }
}
