import { INTERACTION_KINDS, type InteractionKind } from '@circles/core'
import { didId, type KindCounts } from '@circles/interaction-index'
import type { LongTermSide } from '@circles/redis-schema'
import {
  COMPACT,
  compactToPlain,
  encodeCompact,
  readVarint,
  type SortedRecords,
} from './compact.js'
import { LongTermCodecError } from './errors.js'

export { LongTermCodecError } from './errors.js'

// Long-term aggregates: one Redis hash per (account, direction, writer), `lt:{did}:s` (sent) and
// `lt:{did}:r` (received) from the roll-up, `lt:{did}:bs` and `lt:{did}:br` the same from repo backfills.
// Field = day number (days since the epoch, decimal: listpack stores it as an integer).
// Value = one "day blob", in one of two layouts told apart by bit 7 of byte 0. Readers take both; writers
// write the compact one (compact.ts), except the backfill's `br` script, which edits plain records in Lua
// (packages/backfill/lua/backfill-received.lua), and the forget step, which keeps a blob's layout. Plain
// blobs written before the compact layout stay as they are until a fold merges into them.
// The plain layout (version 1):
//   byte 0      mark: 1 + hour-of-day of the last roll-up hour folded into this day (0 = none; always 0
//               in the backfill's blobs, which are not folded by the hour)
//   records     one per (partner, kind), in any order:
//     head      bits 7-6 kind (like, repost, reply, quote), bits 5-0 count 1..63, or 0 = a varint follows
//     [count]   varint, only when bits 5-0 are 0
//     partner   the partner's 8-byte DID id (the index's `didId`: first 8 bytes of SHA-1(DID))
// A plain record is 9 bytes for a count under 64; a compact one about 7.5 on average (compact.ts). Ids map
// back to DIDs through the index's DID table (`schema.didTable`),
// which forgets an id only when the scheduler has removed it from every day blob (its forget step, after a
// purge); the roll-up also writes the table entries of every account it folds (a backfill must too), so
// the aggregates do not depend on the indexer having done so. The mark makes a fold of one hour idempotent per
// day blob: hours are folded in increasing order, so a blob whose mark is at or past the hour has it.

/**
 * Which of an account's long-term hashes (the last part of the key, `schema.longTerm(did, side)`): `s` its
 * sent interactions, `r` its received ones, `bs`/`br` the same from repo backfills (redis-schema).
 */
export type { LongTermSide } from '@circles/redis-schema'

/** Which way each long-term hash counts from its account's point of view (readers add `s` to `bs`, `r` to `br`). */
export const SIDE_DIRECTION: Record<LongTermSide, 'sent' | 'received'> = {
  s: 'sent',
  r: 'received',
  bs: 'sent',
  br: 'received',
}

const KIND_INDEX: Record<InteractionKind, number> = { like: 0, repost: 1, reply: 2, quote: 3 }

/** Zero of every kind: the counts summed from day blobs are the read contract's `KindCounts`. */
export function emptyKindCounts(): KindCounts {
  return { like: 0, repost: 0, reply: 0, quote: 0 }
}

/** The 8-byte id a day blob stores for a DID. */
export function packDid(did: string): Buffer {
  return didId(did)
}

function varintLength(n: number): number {
  let len = 1
  let v = n
  while (v >= 0x80) {
    v = Math.floor(v / 0x80)
    len++
  }
  return len
}

/** One (partner, kind, count) entry of a day blob; `partner` is the 8-byte DID id. */
export interface PackedRecord {
  kind: number
  partner: Buffer
  count: number
}

const SMALL = 64
const ID = 8

/** Bytes a record of `count` takes in a day blob. */
function recordBytes(count: number): number {
  return 1 + (count < SMALL ? 0 : varintLength(count)) + ID
}

/** Bytes a record takes in a plain day blob (`encodePlainDayBlob`). */
export function recordSize(r: PackedRecord): number {
  return recordBytes(r.count)
}

/** Writes one record at `o`, its partner id copied from `ids` at `idAt`; returns the offset after it. */
function writeRecord(
  out: Buffer,
  o: number,
  kind: number,
  count: number,
  ids: Buffer,
  idAt: number,
): number {
  const small = count < SMALL
  out[o++] = (kind << 6) | (small ? count : 0)
  if (!small) {
    let v = count
    while (v >= 0x80) {
      out[o++] = (v % 0x80) | 0x80
      v = Math.floor(v / 0x80)
    }
    out[o++] = v
  }
  return o + ids.copy(out, o, idAt, idAt + ID)
}

/**
 * Writes records after a mark byte in the plain layout: what the backfill's `br` script edits, and the
 * forget step's rewrite of a plain blob. `size` must be the sum of `recordSize` (callers know it already).
 */
export function encodePlainDayBlob(
  mark: number,
  records: Iterable<PackedRecord>,
  size?: number,
): Buffer {
  const list = size === undefined ? [...records] : records
  let total = size
  if (total === undefined) {
    total = 0
    for (const r of list) total += recordSize(r)
  }
  const out = Buffer.allocUnsafe(1 + total)
  out[0] = mark
  let o = 1
  for (const r of list) o = writeRecord(out, o, r.kind, r.count, r.partner, 0)
  return out
}

/**
 * Scratch of the encoders (they are synchronous), grown as needed: the records as given (`at` the offset
 * of each one's id in the caller's buffer), an order of them, and the sorted records handed to the codec.
 */
const scratch = {
  at: new Int32Array(1024),
  hi: new Uint32Array(1024),
  lo: new Uint32Array(1024),
  kind: new Uint8Array(1024),
  count: new Float64Array(1024),
  index: new Int32Array(1024),
  out: {
    n: 0,
    ids: Buffer.alloc(8 * 1024),
    hi: new Uint32Array(1024),
    lo: new Uint32Array(1024),
    kind: new Uint8Array(1024),
    count: new Float64Array(1024),
  } as SortedRecords,
}

function scratchFor(n: number): typeof scratch {
  if (scratch.at.length < n) {
    let cap = scratch.at.length
    while (cap < n) cap *= 2
    scratch.at = new Int32Array(cap)
    scratch.hi = new Uint32Array(cap)
    scratch.lo = new Uint32Array(cap)
    scratch.kind = new Uint8Array(cap)
    scratch.count = new Float64Array(cap)
    scratch.index = new Int32Array(cap)
    scratch.out = {
      n: 0,
      ids: Buffer.alloc(8 * cap),
      hi: new Uint32Array(cap),
      lo: new Uint32Array(cap),
      kind: new Uint8Array(cap),
      count: new Float64Array(cap),
    }
  }
  return scratch
}

/** Stages record `j`: its id at `at` in `ids` (read as two numbers once, compared as numbers after). */
function stage(s: typeof scratch, j: number, ids: Buffer, at: number, kind: number, count: number) {
  s.at[j] = at
  // by hand: Buffer#readUInt32BE was a tenth of the roll-up's fold (not inlined here, ~6M rows an hour)
  s.hi[j] =
    ((ids[at] as number) << 24) |
    ((ids[at + 1] as number) << 16) |
    ((ids[at + 2] as number) << 8) |
    (ids[at + 3] as number)
  s.lo[j] =
    ((ids[at + 4] as number) << 24) |
    ((ids[at + 5] as number) << 16) |
    ((ids[at + 6] as number) << 8) |
    (ids[at + 7] as number)
  s.kind[j] = kind
  s.count[j] = count
  s.index[j] = j
}

/**
 * The staged records `[0, n)` sorted by (id, kind), a (id, kind) given twice summed, in `s.out`. The sort
 * is skipped when they come in order (the roll-up hands its rows sorted: fold.ts).
 */
function sortStaged(s: typeof scratch, n: number, ids: Buffer): SortedRecords {
  const { hi, lo, kind, index } = s
  const cmp = (x: number, y: number) =>
    (hi[x] as number) - (hi[y] as number) ||
    (lo[x] as number) - (lo[y] as number) ||
    (kind[x] as number) - (kind[y] as number)
  for (let j = 1; j < n; j++) {
    if (cmp(j - 1, j) > 0) {
      index.subarray(0, n).sort(cmp)
      break
    }
  }
  const out = s.out
  let m = 0
  for (let j = 0; j < n; j++) {
    const i = index[j] as number
    const last = m - 1
    if (
      last >= 0 &&
      out.hi[last] === hi[i] &&
      out.lo[last] === lo[i] &&
      out.kind[last] === kind[i]
    ) {
      out.count[last] = (out.count[last] as number) + (s.count[i] as number)
      continue
    }
    const at = s.at[i] as number
    ids.copy(out.ids, ID * m, at, at + ID)
    out.hi[m] = hi[i] as number
    out.lo[m] = lo[i] as number
    out.kind[m] = kind[i] as number
    out.count[m] = s.count[i] as number
    m++
  }
  out.n = m
  return out
}

/** Writes a day blob of `records` (any order, a (partner, kind) given twice is summed), compact. */
export function encodeDayBlob(mark: number, records: Iterable<PackedRecord>): Buffer {
  const list = [...records]
  const n = list.length
  // The records' ids side by side, so that one staging serves both encoders.
  const ids = Buffer.allocUnsafe(ID * n)
  const s = scratchFor(n)
  list.forEach((r, j) => {
    r.partner.copy(ids, ID * j, 0, ID)
    stage(s, j, ids, ID * j, r.kind, r.count)
  })
  return encodeCompact(mark, sortStaged(s, n, ids))
}

/**
 * Records held in columns, as the roll-up holds an hour's rows: row `r` is of kind `kind[r]` (a
 * `kindIndex`), counts `count[r]`, and its partner's 8-byte id is at `8 * partner[r]` in `ids`.
 */
export interface RecordColumns {
  kind: Uint8Array
  count: Uint32Array
  partner: Int32Array
  ids: Buffer
}

/**
 * The day blob of the rows `order[from..to)` of `columns`: the bytes `encodeDayBlob` would write for
 * them, without a record object per row (the roll-up encodes millions of rows an hour). Rows that come
 * sorted by (partner id, kind) skip the sort.
 */
export function encodeDayBlobRows(
  mark: number,
  columns: RecordColumns,
  order: Int32Array,
  from: number,
  to: number,
): Buffer {
  const { kind, count, partner, ids } = columns
  const n = to - from
  const s = scratchFor(n)
  for (let j = 0; j < n; j++) {
    const row = order[from + j] as number
    stage(s, j, ids, ID * (partner[row] as number), kind[row] as number, count[row] as number)
  }
  return encodeCompact(mark, sortStaged(s, n, ids))
}

/** Whether a day blob is in the compact layout (compact.ts) rather than the plain one. */
export function isCompactDayBlob(buf: Buffer): boolean {
  return buf.length > 0 && ((buf[0] as number) & COMPACT) !== 0
}

/** Calls `onRecord` for each record of a day blob (its partner a slice of `plainDayBlob(buf)`). */
export function forEachPackedRecord(blob: Buffer, onRecord: (r: PackedRecord) => void): void {
  const buf = plainDayBlob(blob)
  let i = 1
  while (i < buf.length) {
    const head = buf[i++] as number
    const kind = head >> 6
    let count = head & 0x3f
    if (count === 0) [count, i] = readVarint(buf, i)
    const end = i + ID
    if (end > buf.length) throw new LongTermCodecError('truncated record in a day blob')
    onRecord({ kind, partner: buf.subarray(i, end), count })
    i = end
  }
}

/**
 * The plain layout of a day blob, same mark and records (in id order): `buf` itself when it is plain.
 * For readers that address ids in place (`forEachRecordAt`).
 */
export function plainDayBlob(buf: Buffer): Buffer {
  return isCompactDayBlob(buf) ? compactToPlain(buf) : buf
}

/**
 * Calls `onRecord(kind, count, at, ids)` for each record of a day blob, `at` being where the partner's
 * 8-byte id starts in `ids`: `buf` itself for a plain blob, its `plainDayBlob` for a compact one (a reader
 * that keeps `at` to read the id later passes `plainDayBlob(buf)` and addresses that).
 * `forEachPackedRecord` makes an object and a slice per record: a reader of hundreds of
 * thousands (a 90-day history) spends most of its time on them.
 */
export function forEachRecordAt(
  blob: Buffer,
  onRecord: (kind: number, count: number, at: number, ids: Buffer) => void,
): void {
  const buf = plainDayBlob(blob)
  let i = 1
  while (i < buf.length) {
    const head = buf[i++] as number
    let count = head & 0x3f
    if (count === 0) [count, i] = readVarint(buf, i)
    if (i + ID > buf.length) throw new LongTermCodecError('truncated record in a day blob')
    onRecord(head >> 6, count, i, buf)
    i += ID
  }
}

/** The mark of a day blob: 1 + the hour-of-day last folded into it (the low 5 bits, either layout). */
export function dayBlobMark(buf: Buffer | null | undefined): number {
  return buf && buf.length > 0 ? (buf[0] as number) & 0x1f : 0
}

/** The mark a day blob gets when `hour` (hours since the epoch) is folded into it. */
export function markOfHour(hour: number): number {
  return (hour % 24) + 1
}

export function kindIndex(kind: InteractionKind): number {
  return KIND_INDEX[kind]
}

export function kindOfIndex(i: number): InteractionKind {
  const k = INTERACTION_KINDS[i]
  if (k === undefined) throw new LongTermCodecError(`bad kind index ${i}`)
  return k
}

/**
 * Merges records into an existing day blob (or none) and sets its mark; the result is compact, whatever
 * the layout of `existing`. Records of the same (partner, kind) are summed, so a day blob holds each
 * (partner, kind) once however many hours fed it.
 */
export function mergeDayBlob(
  existing: Buffer | null | undefined,
  mark: number,
  records: readonly PackedRecord[],
): Buffer {
  if (!existing || existing.length <= 1) return encodeDayBlob(mark, records)
  const all: PackedRecord[] = []
  forEachPackedRecord(existing, (r) => all.push(r))
  for (const r of records) all.push(r)
  return encodeDayBlob(mark, all)
}
