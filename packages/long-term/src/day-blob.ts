import { INTERACTION_KINDS, type InteractionKind } from '@circles/core'
import { didId, type KindCounts } from '@circles/interaction-index'
import type { LongTermSide } from '@circles/redis-schema'

// Long-term aggregates: one Redis hash per (account, direction, writer), `lt:{did}:s` (sent) and
// `lt:{did}:r` (received) from the roll-up, `lt:{did}:bs` and `lt:{did}:br` the same from repo backfills.
// Field = day number (days since the epoch, decimal: listpack stores it as an integer).
// Value = one "day blob":
//   byte 0      mark: 1 + hour-of-day of the last roll-up hour folded into this day (0 = none; always 0
//               in the backfill's blobs, which are not folded by the hour)
//   records     one per (partner, kind), in any order:
//     head      bits 7-6 kind (like, repost, reply, quote), bits 5-0 count 1..63, or 0 = a varint follows
//     [count]   varint, only when bits 5-0 are 0
//     partner   the partner's 8-byte DID id (the index's `didId`: first 8 bytes of SHA-1(DID))
// A record is 9 bytes for a count under 64: that is the whole cost per (pair, kind, day) and direction
// besides the hash's own overhead. Ids map back to DIDs through the index's DID table (`schema.didTable`),
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
export class LongTermCodecError extends Error {
  override name = 'LongTermCodecError'
}

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

/** Bytes a record takes in a day blob. */
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

/** Writes records after a mark byte. `size` must be the sum of `recordSize` (callers know it already). */
export function encodeDayBlob(
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
 * them, without a record object per row (the roll-up encodes millions of rows an hour).
 */
export function encodeDayBlobRows(
  mark: number,
  columns: RecordColumns,
  order: Int32Array,
  from: number,
  to: number,
): Buffer {
  const { kind, count, partner, ids } = columns
  let size = 1
  for (let j = from; j < to; j++) size += recordBytes(count[order[j] as number] as number)
  const out = Buffer.allocUnsafe(size)
  out[0] = mark
  let o = 1
  for (let j = from; j < to; j++) {
    const row = order[j] as number
    o = writeRecord(
      out,
      o,
      kind[row] as number,
      count[row] as number,
      ids,
      ID * (partner[row] as number),
    )
  }
  return out
}

function readVarint(buf: Buffer, at: number): [value: number, next: number] {
  let v = 0
  let mul = 1
  let i = at
  for (;;) {
    const b = buf[i++]
    if (b === undefined) throw new LongTermCodecError('truncated varint in a day blob')
    v += (b & 0x7f) * mul
    if (b < 0x80) return [v, i]
    mul *= 0x80
    if (mul > 2 ** 49) throw new LongTermCodecError('varint too long in a day blob')
  }
}

/** Calls `onRecord` for each record of a day blob (partner still packed, as a slice of `buf`). */
export function forEachPackedRecord(buf: Buffer, onRecord: (r: PackedRecord) => void): void {
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
 * Calls `onRecord(kind, count, at)` for each record of a day blob, `at` being where the partner's 8-byte id
 * starts in `buf`. `forEachPackedRecord` makes an object and a slice per record: a reader of hundreds of
 * thousands (a 90-day history) spends most of its time on them.
 */
export function forEachRecordAt(
  buf: Buffer,
  onRecord: (kind: number, count: number, at: number) => void,
): void {
  let i = 1
  while (i < buf.length) {
    const head = buf[i++] as number
    let count = head & 0x3f
    if (count === 0) [count, i] = readVarint(buf, i)
    if (i + ID > buf.length) throw new LongTermCodecError('truncated record in a day blob')
    onRecord(head >> 6, count, i)
    i += ID
  }
}

/** The mark byte of a day blob: 1 + the hour-of-day last folded into it. */
export function dayBlobMark(buf: Buffer | null | undefined): number {
  return buf && buf.length > 0 ? (buf[0] as number) : 0
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
 * Merges records into an existing day blob (or none) and sets its mark. Records of the same (partner, kind)
 * are summed, so a day blob holds each (partner, kind) once however many hours fed it.
 */
export function mergeDayBlob(
  existing: Buffer | null | undefined,
  mark: number,
  records: readonly PackedRecord[],
): Buffer {
  if (!existing || existing.length <= 1) return encodeDayBlob(mark, records)
  const merged = new Map<string, PackedRecord>()
  const add = (r: PackedRecord) => {
    const key = `${r.kind}${r.partner.toString('latin1')}`
    const prev = merged.get(key)
    if (prev) prev.count += r.count
    else merged.set(key, { ...r })
  }
  forEachPackedRecord(existing, add)
  for (const r of records) add(r)
  return encodeDayBlob(mark, merged.values())
}
