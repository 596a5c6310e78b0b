import type { KindCounts } from '@circles/interaction-index'
import { forEachRecordAt, plainDayBlob, SIDE_DIRECTION } from '@circles/long-term'
import type { LongTermSide } from '@circles/redis-schema'

// One day of an account's history from its day blobs, with no I/O: the totals by kind both ways and every
// partner's counts, kept in flat columns (a heavy day has thousands of partners, a request up to 90 days),
// and the pick of a day's top partners that skips those the caller rejected (hidden, unresolvable).

/** Counts per partner: 8 slots, sent like/repost/reply/quote then received the same (kind index order). */
const SLOTS = 8

export interface DayTally {
  /** Days since the epoch. */
  day: number
  sent: KindCounts
  received: KindCounts
  /** How many partners (slots). */
  size: number
  /** The id (8 latin1 characters) of the partner in slot `s`. */
  idOf(s: number): string
  /** Whether slot `a`'s id sorts before slot `b`'s (as their `idOf` strings would), with no string made. */
  idBefore(a: number, b: number): boolean
  /** `SLOTS` counts per partner, in slot order. */
  counts: Uint32Array
  /** Each partner's total, both ways and every kind: the ranking. */
  totals: Float64Array
}

/** A day's partner with its counts, still named by id. */
export interface TalliedPartner {
  id: string
  sent: KindCounts
  received: KindCounts
}

/**
 * Partner ids to slots, exact: open addressing over the id's two 32-bit halves, so a record costs no
 * string and no object (a Map keyed by the id as a string made the decode most of a 90-day request).
 * Ids are SHA-1 prefixes, so their low bits index it as they are. One table serves every day in turn
 * (tallies are synchronous): a fresh one per day cost more in allocation and GC than the decode itself.
 * `reset` empties it by a new generation rather than by clearing it.
 */
class IdSlots {
  private mask = 0
  private lo = new Int32Array(0)
  private hi = new Int32Array(0)
  private slot = new Int32Array(0)
  private stamp = new Uint32Array(0)
  private generation = 0
  size = 0

  /** Empty, with room for `max` ids. */
  reset(max: number): void {
    let cap = 1024
    while (cap < max * 2) cap *= 2
    if (cap > this.slot.length) {
      this.lo = new Int32Array(cap)
      this.hi = new Int32Array(cap)
      this.slot = new Int32Array(cap)
      this.stamp = new Uint32Array(cap)
      this.generation = 0
    }
    this.mask = this.slot.length - 1
    this.generation++
    this.size = 0
  }

  /** The slot of the id at `at` in `buf`; a new one (equal to `size` before the call) if it had none. */
  slotOf(buf: Buffer, at: number): number {
    const a =
      (buf[at] as number) |
      ((buf[at + 1] as number) << 8) |
      ((buf[at + 2] as number) << 16) |
      ((buf[at + 3] as number) << 24)
    const b =
      (buf[at + 4] as number) |
      ((buf[at + 5] as number) << 8) |
      ((buf[at + 6] as number) << 16) |
      ((buf[at + 7] as number) << 24)
    for (let i = a & this.mask; ; i = (i + 1) & this.mask) {
      if (this.stamp[i] !== this.generation) {
        this.stamp[i] = this.generation
        this.lo[i] = a
        this.hi[i] = b
        this.slot[i] = this.size
        return this.size++
      }
      if (this.lo[i] === a && this.hi[i] === b) return this.slot[i] as number
    }
  }
}

/** Scratch shared by the tallies, grown as needed: the table, each partner's first sighting, its counts. */
const scratch = {
  slots: new IdSlots(),
  seenIn: new Int32Array(1024),
  seenAt: new Int32Array(1024),
  counts: new Uint32Array(SLOTS * 1024),
}

function scratchFor(max: number): typeof scratch {
  scratch.slots.reset(max)
  if (scratch.seenIn.length < max) {
    scratch.seenIn = new Int32Array(max)
    scratch.seenAt = new Int32Array(max)
    scratch.counts = new Uint32Array(SLOTS * max)
  }
  return scratch
}

/** Sums a day's blobs, any of the four sides, each counted in its direction (`SIDE_DIRECTION`). */
export function tallyDay(
  day: number,
  compactOrPlain: readonly (readonly [LongTermSide, Buffer])[],
): DayTally {
  // Slots keep where a partner's id sits (`seenAt`): in the plain layout ids sit whole in the blob.
  const blobs = compactOrPlain.map(([side, blob]) => [side, plainDayBlob(blob)] as const)
  // A record is at least 9 bytes after the mark: no more partners than that.
  let max = 0
  for (const [, blob] of blobs) max += Math.floor(Math.max(0, blob.length - 1) / 9)
  const { slots, seenIn, seenAt, counts } = scratchFor(max)
  const byKind = { sent: new Float64Array(4), received: new Float64Array(4) }
  blobs.forEach(([side, blob], b) => {
    const dir = SIDE_DIRECTION[side]
    const offset = dir === 'sent' ? 0 : 4
    const total = byKind[dir]
    forEachRecordAt(blob, (kind, count, at) => {
      const known = slots.size
      const slot = slots.slotOf(blob, at)
      const c = slot * SLOTS + offset + kind
      if (slots.size !== known) {
        // A new partner: its first sighting, and its counts' slots still hold another day's.
        seenIn[slot] = b
        seenAt[slot] = at
        for (let k = slot * SLOTS; k < slot * SLOTS + SLOTS; k++) counts[k] = 0
      }
      counts[c] = (counts[c] as number) + count
      total[kind] = (total[kind] as number) + count
    })
  })
  const size = slots.size
  // Kept: each partner's counts, total and first sighting, exactly sized (the scratch serves the next day).
  const kept = counts.slice(0, size * SLOTS)
  const where = { blob: seenIn.slice(0, size), at: seenAt.slice(0, size) }
  const sums = new Float64Array(size)
  for (let s = 0; s < size; s++) {
    let n = 0
    for (let k = 0; k < SLOTS; k++) n += kept[s * SLOTS + k] as number
    sums[s] = n
  }
  const named: string[] = []
  return {
    day,
    sent: kindsAt(byKind.sent, 0),
    received: kindsAt(byKind.received, 0),
    size,
    idOf(s) {
      let id = named[s]
      if (id === undefined) {
        const at = where.at[s] as number
        const blob = (blobs[where.blob[s] as number] as readonly [LongTermSide, Buffer])[1]
        id = blob.toString('latin1', at, at + 8)
        named[s] = id
      }
      return id
    },
    idBefore(x, y) {
      const bx = (blobs[where.blob[x] as number] as readonly [LongTermSide, Buffer])[1]
      const by = (blobs[where.blob[y] as number] as readonly [LongTermSide, Buffer])[1]
      const ax = where.at[x] as number
      const ay = where.at[y] as number
      return bx.compare(by, ay, ay + 8, ax, ax + 8) < 0
    },
    counts: kept,
    totals: sums,
  }
}

function kindsAt(counts: Float64Array | Uint32Array, at: number): KindCounts {
  return {
    like: counts[at] as number,
    repost: counts[at + 1] as number,
    reply: counts[at + 2] as number,
    quote: counts[at + 3] as number,
  }
}

/** The partner in slot `s` of a tally. */
export function partnerAt(t: DayTally, s: number): TalliedPartner {
  return {
    id: t.idOf(s),
    sent: kindsAt(t.counts, s * SLOTS),
    received: kindsAt(t.counts, s * SLOTS + 4),
  }
}

/**
 * The slots of the day's `n` partners with the most interactions both ways, most first (ties by id, so
 * the answer is stable), leaving out ids in `rejected`. One pass with a small sorted buffer: a full sort
 * of every day's partners would cost more than the rest of a 90-day request.
 */
export function topSlots(t: DayTally, n: number, rejected: ReadonlySet<string>): number[] {
  const best: number[] = []
  if (n <= 0) return best
  const before = (a: number, b: number) =>
    (t.totals[a] as number) > (t.totals[b] as number) ||
    (t.totals[a] === t.totals[b] && t.idBefore(a, b))
  for (let s = 0; s < t.size; s++) {
    if (best.length === n && !before(s, best[n - 1] as number)) continue
    if (rejected.has(t.idOf(s))) continue
    let at = best.length === n ? n - 1 : best.length
    while (at > 0 && before(s, best[at - 1] as number)) {
      best[at] = best[at - 1] as number
      at--
    }
    best[at] = s
  }
  return best
}

/** Days since the epoch as a UTC calendar date (2026-12-07). */
export function dateOfDay(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10)
}
