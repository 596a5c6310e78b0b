import { CODE_DELETED, CODE_UNKNOWN, RECORD_SIZE, recordsStart } from '../layout.js'
import type { KindCounts } from './partners.js'

// Every partner of an account in a window, counted from its logs into working memory kept from one read
// to the next, then scored and ranked: the partner queries' hot loops (partners.ts calls them).

/** counts[0..3] sent by kind, counts[4..7] received by kind. */
type Counts = Int32Array

export function kindCounts(c: Counts, base: number): KindCounts {
  return {
    like: c[base] as number,
    repost: c[base + 1] as number,
    reply: c[base + 2] as number,
    quote: c[base + 3] as number,
  }
}

/** One partner of an aggregate: its id as 6 + 2 bytes (and as a latin1 string once needed), its counts. */
export interface Entry {
  hi: number
  lo: number
  key?: string
  total: number
  c: Counts
}

/**
 * The partners of an account in one flat array, `SLOT` numbers each: the id's two halves as int32, the
 * total, then 8 counts indexed by the record's code & 7 (kind in bits 0-1, inbound in bit 2): sent by kind,
 * then received by kind. Partner i starts at i * SLOT.
 */
export interface Aggregate {
  n: number
  slots: Int32Array
  /** The open-addressing index over `slots` (see aggregateLogs): `addCount` adds partners through it. */
  index: Int32Array
  size: number
}
const SLOT = 11

/** Partner i of an aggregate, with a copy of its counts: the aggregate is working memory, soon reused. */
function entryAt(g: Aggregate, i: number): Entry {
  const p = i * SLOT
  const b = g.slots[p + 1] as number
  return {
    hi: ((g.slots[p] as number) >>> 0) * 65536 + (b >>> 16),
    lo: b & 0xffff,
    total: g.slots[p + 2] as number,
    c: g.slots.slice(p + 3, p + SLOT),
  }
}

export function allEntries(g: Aggregate): Entry[] {
  const out: Entry[] = []
  for (let i = 0; i < g.n; i++) out.push(entryAt(g, i))
  return out
}

export interface Ranked {
  e: Entry
  score: number
}

export function idKey(e: Entry): string {
  if (e.key === undefined) {
    const id = Buffer.allocUnsafe(8)
    id.writeUIntBE(e.hi, 0, 6)
    id.writeUInt16BE(e.lo, 6)
    e.key = id.toString('latin1')
  }
  return e.key
}

/** Score, then total, then id: a stable order for equal scores. */
export function byScore(x: Ranked, y: Ranked): number {
  return y.score - x.score || y.e.total - x.e.total || x.e.hi - y.e.hi || x.e.lo - y.e.lo
}

/**
 * The k-th largest of `values` (1-based; k <= length), by quickselect on a copy: O(n), where sorting the
 * ~20k scores of the busiest accounts took ~1.4 ms of a ~12 ms circle, against ~0.3 ms. The copy goes
 * into working memory kept between calls (see `scratchSlots`).
 */
export function kthLargest(values: Float64Array, k: number): number {
  const a = scratchFloats(1, values.length)
  a.set(values)
  const target = a.length - k
  let lo = 0
  let hi = a.length - 1
  while (lo < hi) {
    const pivot = a[(lo + hi) >>> 1] as number
    let i = lo
    let j = hi
    while (i <= j) {
      while ((a[i] as number) < pivot) i++
      while ((a[j] as number) > pivot) j--
      if (i <= j) {
        const t = a[i] as number
        a[i] = a[j] as number
        a[j] = t
        i++
        j--
      }
    }
    // [lo..j] <= pivot <= [i..hi], and anything between equals the pivot
    if (target <= j) hi = j
    else if (target >= i) lo = i
    else break
  }
  return a[target] as number
}

/**
 * Working memory of `aggregateLogs` and of ranking, kept from one call to the next. A read uses it only
 * synchronously, between the reply of its MGET and its first await after that, so concurrent reads cannot
 * share it: what outlives that stretch (the ranked candidates) is copied out. Typed arrays live outside
 * the JS heap, and V8 collects garbage early when much memory is allocated there: fresh arrays for every
 * heavy read (the table grown by doubling to 1.4 MB, the index to 256 KB) cost 43-44 scavenges and 8
 * mark-compacts per 200 heavy reads of the bench, against 28-29 and 7. And on two cores, the collector's
 * background threads delay the replies of other reads by milliseconds: the busiest account's read also
 * copied its whole table (~1 MB) and two arrays of scores.
 * Kept up to `SCRATCH_RECORDS` records (~7 MB); a bigger account gets arrays of its own.
 */
let scratchSlots = new Int32Array(0)
let scratchIndex = new Int32Array(0)
const scratch64: Float64Array[] = [new Float64Array(0), new Float64Array(0)]
const SCRATCH_RECORDS = 2 ** 17

/** Working array `which` (0: scores, 1: the quickselect copy) of `n` numbers. */
export function scratchFloats(which: 0 | 1, n: number): Float64Array {
  let a = scratch64[which] as Float64Array
  if (a.length < n) {
    a = new Float64Array(n)
    if (n <= SCRATCH_RECORDS) scratch64[which] = a
  }
  return a.subarray(0, n)
}

/**
 * Every partner in the window of `logs` with counts, in working memory that the next call reuses: use it
 * before any await. The table has room for every record to be a new
 * partner, and the open-addressing index over it is kept at most half full for the worst case of the next
 * log, and no bigger: an index sized for all the records of the busiest account (1 MB, where its 21k
 * partners need 256 KB) made the aggregation ~25 % slower by cache misses alone (5.3-5.7 against 4.2-4.7
 * ms, paired runs on the bench's data).
 */
export function aggregateLogs(
  logs: readonly (Buffer | null)[],
  minSec: number,
  maxSec: number,
): Aggregate {
  let records = 0
  for (const log of logs) if (log) records += Math.floor(log.length / RECORD_SIZE)
  let slots = scratchSlots
  if (slots.length < records * SLOT) {
    slots = new Int32Array(records * SLOT)
    if (records <= SCRATCH_RECORDS) scratchSlots = slots
  }
  let index = scratchIndex
  let size = 0
  let n = 0
  for (const log of logs) {
    if (!log) continue
    const need = 2 * (n + Math.floor(log.length / RECORD_SIZE))
    if (need > size) {
      size = Math.max(size, 32)
      while (size < need) size *= 2
      if (index.length < size) {
        index = new Int32Array(size)
        if (size <= 2 * SCRATCH_RECORDS) scratchIndex = index
      } else {
        index.fill(0, 0, size)
      }
      reindex(index, size, slots, n)
    }
    n = tallyLog(log, index, size - 1, slots, n, minSec, maxSec - minSec)
  }
  if (size === 0) {
    size = 32
    if (index.length < size) index = new Int32Array(size)
    else index.fill(0, 0, size)
  }
  return { n, slots, index, size }
}

/**
 * Adds `count` to kind slot `code` (0-3 sent, 4-7 received, as a record's code & 7) of the partner whose id
 * is the int32 pair (a, b) (the 8 bytes of a DID id, big-endian), a new partner where it has none yet:
 * counts from elsewhere (the long-term day blobs) summed into an aggregate of the live logs, in the same
 * working memory, without a string or an object per record. The arrays grow by doubling as needed.
 */
export function addCount(g: Aggregate, a: number, b: number, code: number, count: number): void {
  if (2 * (g.n + 1) > g.size || (g.n + 1) * SLOT > g.slots.length) grow(g)
  const { index, slots } = g
  const mask = g.size - 1
  let h = b & mask
  let s = index[h] as number
  while (s !== 0 && (slots[s] !== b || slots[s - 1] !== a)) {
    h = (h + 1) & mask
    s = index[h] as number
  }
  if (s === 0) {
    s = g.n * SLOT + 1
    g.n++
    index[h] = s
    slots[s - 1] = a
    slots[s] = b
    for (let k = s + 1; k < s + SLOT - 1; k++) slots[k] = 0
  }
  slots[s + 1] = (slots[s + 1] as number) + count
  slots[s + 2 + code] = (slots[s + 2 + code] as number) + count
}

/** Doubles what is full: the table (its partners copied) and the index (rebuilt), in scratch when small. */
function grow(g: Aggregate): void {
  if ((g.n + 1) * SLOT > g.slots.length) {
    const slots = new Int32Array(Math.max(64, g.slots.length) * 2)
    slots.set(g.slots.subarray(0, g.n * SLOT))
    if (slots.length <= SCRATCH_RECORDS * SLOT) scratchSlots = slots
    g.slots = slots
  }
  if (2 * (g.n + 1) > g.size) {
    const size = g.size * 2
    let index = scratchIndex
    if (index.length < size) {
      index = new Int32Array(size)
      if (size <= 2 * SCRATCH_RECORDS) scratchIndex = index
    } else {
      index.fill(0, 0, size)
    }
    reindex(index, size, g.slots, g.n)
    g.index = index
    g.size = size
  }
}

/** Fills `into` with every partner's total (in slot order): what the list pages are ordered by. */
export function totalsOf({ n, slots }: Aggregate, into: Float64Array): void {
  for (let i = 0; i < n; i++) into[i] = slots[i * SLOT + 2] as number
}

/** Fills a zeroed index of `size` (a power of 2) with the first `n` partners of `slots`. */
function reindex(index: Int32Array, size: number, slots: Int32Array, n: number): void {
  const mask = size - 1
  for (let s = 1; s < n * SLOT; s += SLOT) {
    let h = (slots[s] as number) & mask
    while (index[h] !== 0) h = (h + 1) & mask
    index[h] = s
  }
}

/**
 * The hot loop (80k records for the busiest accounts), one log per call. A function of its own that
 * allocates nothing and ends in a bare return: V8 optimizes it within the first heavy read (on-stack
 * replacement) and, with no untried code after the loop, never throws that code away again. (When it was
 * part of the async aggregate function, a fresh process spent its first three or four heavy reads at
 * 40-90 ms in deoptimizations and recompilations.) Ids and times are read as int32 through a DataView,
 * whose getters the optimizing compiler turns into single loads (Buffer's readers validate their
 * arguments on every call; assembling the bytes by hand took ~25 % longer; uint32 values past 2^30 are
 * doubles); the time test is one unsigned comparison, exact past 2038. Index entries are a partner's
 * slot offset + 1 (0 = empty), found by the id's low bits (ids are SHA-1 bytes: uniform) and compared on
 * the whole id.
 */
function tallyLog(
  log: Buffer,
  index: Int32Array,
  mask: number,
  slots: Int32Array,
  n: number,
  minSec: number,
  span: number,
): number {
  const end = log.length
  const view = new DataView(log.buffer, log.byteOffset, end)
  for (let off = recordsStart(log); off + RECORD_SIZE <= end; off += RECORD_SIZE) {
    const code = log[off + 8] as number
    if ((code & (CODE_DELETED | CODE_UNKNOWN)) !== 0) continue
    const sec = view.getInt32(off + 17)
    if ((sec - minSec) >>> 0 >= span) continue
    const a = view.getInt32(off + 9)
    const b = view.getInt32(off + 13)
    let h = b & mask
    let s = index[h] as number
    while (s !== 0 && (slots[s] !== b || slots[s - 1] !== a)) {
      h = (h + 1) & mask
      s = index[h] as number
    }
    if (s === 0) {
      s = n * SLOT + 1
      n++
      index[h] = s
      slots[s - 1] = a
      slots[s] = b
      // the table is reused: clear what an earlier read left
      for (let k = s + 1; k < s + SLOT - 1; k++) slots[k] = 0
    }
    slots[s + 1] = (slots[s + 1] as number) + 1
    const c = s + 2 + (code & 7)
    slots[c] = (slots[c] as number) + 1
  }
  return n
}

/**
 * Fills `scores` with the weighted score of every partner (in slot order) and returns how many are
 * positive. Like tallyLog, it ends in a bare return: V8 compiles its loop while the first heavy read runs,
 * and code after the loop that had never run (building a result object) threw that compiled loop away at
 * the end of every call until the whole function was compiled again.
 */
export function scoreAll(
  slots: Int32Array,
  n: number,
  w: readonly number[],
  sent: boolean,
  received: boolean,
  scores: Float64Array,
): number {
  let positive = 0
  for (let i = 0; i < n; i++) {
    const p = i * SLOT + 3
    let score = 0
    for (let k = 0; k < 4; k++) {
      const count =
        (sent ? (slots[p + k] as number) : 0) + (received ? (slots[p + k + 4] as number) : 0)
      score += (w[k] as number) * count
    }
    scores[i] = score
    if (score > 0) positive++
  }
  return positive
}

/** Totals by kind and partners in each direction. */
export function summarize({ n, slots }: Aggregate) {
  const c = new Int32Array(8)
  let partnersSent = 0
  let partnersReceived = 0
  for (let p = 3; p < n * SLOT; p += SLOT) {
    let s = 0
    let r = 0
    for (let k = 0; k < 4; k++) {
      c[k] = (c[k] as number) + (slots[p + k] as number)
      c[k + 4] = (c[k + 4] as number) + (slots[p + k + 4] as number)
      s += slots[p + k] as number
      r += slots[p + k + 4] as number
    }
    if (s > 0) partnersSent++
    if (r > 0) partnersReceived++
  }
  return { sent: kindCounts(c, 0), received: kindCounts(c, 4), partnersSent, partnersReceived }
}

/** The partners scoring above zero and at least `cut`, unordered. */
export function rank(g: Aggregate, scores: Float64Array, cut: number): Ranked[] {
  const out: Ranked[] = []
  for (let i = 0; i < g.n; i++) {
    const score = scores[i] as number
    if (score > 0 && score >= cut) out.push({ e: entryAt(g, i), score })
  }
  return out
}
