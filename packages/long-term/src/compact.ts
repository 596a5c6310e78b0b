// The compact day blob (version 2), what every writer but the backfill's `br` script writes since
// 2026-12-07. The plain layout (day-blob.ts) spends 9 bytes per (partner, kind): a whole 8-byte id even
// for a second kind of the same partner, and ids in any order. Here a blob holds each partner once, in
// increasing id order, so a second kind costs a count byte and consecutive ids share their top bytes:
//   byte 0   0x80 | level << 5 | mark (mark 0..24 as in the plain layout; the high bit tells the versions
//            apart, so `byte % 32` is the mark of either, which is all the fold script reads)
//   entries  one per partner, ids increasing:
//     head     bits 7-4 the partner's kinds (bit k = kind index k), bit 3: counts follow (clear = one kind,
//              count 1: nine records in ten), bits 2-0 d: the id's top `level` bytes (big-endian) are the
//              previous entry's plus d (0..6), then its other 8 - level bytes follow; 7 = all 8 bytes follow
//     [counts] one varint per kind present, in kind order, when bit 3 is set
//     id bytes
// The level (0, 1 or 2 top bytes) is chosen per blob, whichever is smallest: ids are uniform (SHA-1), so
// a blob of n partners gains about a byte each from n ~ 50 with level 1, two from n ~ 10,000 with level 2.

import { LongTermCodecError } from './errors.js'

export const COMPACT = 0x80
const ESCAPE = 7
const MULTI = 8

/**
 * Records sorted by (partner id, kind), no (id, kind) twice: `ids` holds record i's 8-byte id at 8 * i,
 * `hi` and `lo` the same id as two big-endian 32-bit halves (compared as numbers, not bytes).
 */
export interface SortedRecords {
  n: number
  ids: Buffer
  hi: Uint32Array
  lo: Uint32Array
  kind: Uint8Array
  count: Float64Array
}

function varintLength(n: number): number {
  let len = 1
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) len++
  return len
}

function writeVarint(out: Buffer, at: number, n: number): number {
  let o = at
  let v = n
  while (v >= 0x80) {
    out[o++] = (v % 0x80) | 0x80
    v = Math.floor(v / 0x80)
  }
  out[o++] = v
  return o
}

function topOf(ids: Buffer, at: number, level: number): number {
  if (level === 0) return 0
  if (level === 1) return ids[at] as number
  return ((ids[at] as number) << 8) | (ids[at + 1] as number)
}

/** Where the entry starting at record `i` ends (the next partner's first record). */
function entryEnd(r: SortedRecords, i: number): number {
  let j = i + 1
  while (j < r.n && r.hi[j] === r.hi[i] && r.lo[j] === r.lo[i]) j++
  return j
}

/** Bytes of the blob at each level, [level 0, 1, 2]. */
function sizes(r: SortedRecords): [number, number, number] {
  const size: [number, number, number] = [1, 1, 1]
  const prev = [0, 0, 0]
  for (let i = 0; i < r.n; ) {
    const j = entryEnd(r, i)
    let counts = 0
    if (j - i > 1 || r.count[i] !== 1) {
      for (let k = i; k < j; k++) counts += varintLength(r.count[k] as number)
    }
    for (let level = 0; level < 3; level++) {
      const top = topOf(r.ids, 8 * i, level)
      const d = top - (prev[level] as number)
      size[level] = (size[level] as number) + 1 + counts + (d >= 0 && d < ESCAPE ? 8 - level : 8)
      prev[level] = top
    }
    i = j
  }
  return size
}

/** The compact blob of `r`, which must be sorted by (id, kind) with no (id, kind) twice. */
export function encodeCompact(mark: number, r: SortedRecords): Buffer {
  const size = sizes(r)
  let level = 0
  if ((size[1] as number) < (size[level] as number)) level = 1
  if ((size[2] as number) < (size[level] as number)) level = 2
  const out = Buffer.allocUnsafe(size[level] as number)
  out[0] = COMPACT | (level << 5) | mark
  let o = 1
  let prev = 0
  for (let i = 0; i < r.n; ) {
    const j = entryEnd(r, i)
    let kinds = 0
    for (let k = i; k < j; k++) kinds |= 1 << (r.kind[k] as number)
    const multi = j - i > 1 || r.count[i] !== 1
    const top = topOf(r.ids, 8 * i, level)
    const d = top - prev
    const short = d >= 0 && d < ESCAPE
    out[o++] = (kinds << 4) | (multi ? MULTI : 0) | (short ? d : ESCAPE)
    if (multi) for (let k = i; k < j; k++) o = writeVarint(out, o, r.count[k] as number)
    const skip = short ? level : 0
    o += r.ids.copy(out, o, 8 * i + skip, 8 * i + 8)
    prev = top
    i = j
  }
  return out
}

/** The count varint at `at` (a value and where it ends), or a codec error past `end`. */
export function readVarint(buf: Buffer, at: number): [value: number, next: number] {
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

/** Bytes of a plain record of `count` (day-blob.ts): counts under 64 ride in its head byte. */
function plainBytes(count: number, varintEnd: number, varintAt: number): number {
  return 9 + (count < 64 ? 0 : varintEnd - varintAt)
}

/**
 * The plain blob (day-blob.ts) of the same mark and records, in (id, kind) order. Every reader decodes
 * through this: one pass to size it and one to write it, no object per record, so reading a compact blob
 * costs about what reading a plain one did.
 */
export function compactToPlain(buf: Buffer): Buffer {
  const level = ((buf[0] as number) >> 5) & 3
  if (level > 2) throw new LongTermCodecError(`bad level ${level} in a day blob`)
  let size = 1
  let i = 1
  while (i < buf.length) {
    const head = buf[i++] as number
    const kinds = head >> 4
    if (kinds === 0) throw new LongTermCodecError('a day blob entry without a kind')
    if (head & MULTI) {
      for (let k = kinds; k !== 0; k &= k - 1) {
        const [c, next] = readVarint(buf, i)
        size += plainBytes(c, next, i)
        i = next
      }
    } else if (kinds & (kinds - 1)) {
      throw new LongTermCodecError('a day blob entry of several kinds without counts')
    } else size += 9
    i += (head & 7) === ESCAPE ? 8 : 8 - level
  }
  if (i !== buf.length) throw new LongTermCodecError('truncated record in a day blob')
  const out = Buffer.allocUnsafe(size)
  out[0] = (buf[0] as number) & 0x1f
  let o = 1
  let prev = 0
  i = 1
  while (i < buf.length) {
    const head = buf[i++] as number
    const kinds = head >> 4
    // The counts come before the id: remember where, write the records once the id is known.
    const countsAt = i
    if (head & MULTI) for (let k = kinds; k !== 0; k &= k - 1) i = readVarint(buf, i)[1]
    const d = head & 7
    const skip = d === ESCAPE ? 0 : level
    const idAt = i - skip // the id's top bytes (skip of them) are rebuilt in front of the rest
    const top = d === ESCAPE ? topOf(buf, i, level) : prev + d
    i += 8 - skip
    prev = top
    let c = countsAt
    for (let k = 0; k < 4; k++) {
      if (!(kinds & (1 << k))) continue
      let count = 1
      let next = c
      if (head & MULTI) [count, next] = readVarint(buf, c)
      if (count < 64) out[o++] = (k << 6) | count
      else {
        out[o++] = k << 6
        o += buf.copy(out, o, c, next)
      }
      c = next
      if (skip === 2) {
        out[o++] = top >> 8
        out[o++] = top & 0xff
      } else if (skip === 1) out[o++] = top
      o += buf.copy(out, o, idAt + skip, idAt + 8)
    }
  }
  return out
}
