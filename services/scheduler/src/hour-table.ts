import { INTERACTION_KINDS, type InteractionKind, isValidDid } from '@circles/core'
import { kindIndex, packDid, type RecordColumns } from '@circles/long-term'
import type { HourRow, LiveHours } from './live-source.js'

// One hour of the live index in memory, in columns that the day blob encoder reads straight
// (`encodeDayBlobRows`): the roll-up's read side. Nothing here writes to Redis.

const KIND_OK = new Set<string>(INTERACTION_KINDS)

function grow<T extends Int32Array | Uint8Array | Uint32Array>(arr: T, make: (n: number) => T): T {
  const next = make(arr.length * 2)
  next.set(arr)
  return next
}

/**
 * Rows of one hour, accounts interned to indexes by their 8-byte DID ids (an open-addressing table over the
 * ids' two halves: no string per row), in growable typed arrays (5M rows fit in ~70 MB).
 */
export class HourTable {
  /** Account i's DID ('' until named: the id read names it once per account, after the scan). */
  dids: string[] = []
  n = 0
  author = new Int32Array(1 << 16)
  subject = new Int32Array(1 << 16)
  kind = new Uint8Array(1 << 16)
  count = new Uint32Array(1 << 16)
  private idLo = new Int32Array(1 << 12)
  private idHi = new Int32Array(1 << 12)
  /** account + 1 per slot, 0 = empty; at most half full */
  private slots = new Int32Array(1 << 13)
  /** The row read's DIDs (sources in memory): hashed to an id once each. */
  private byDid = new Map<string, number>()

  get accounts(): number {
    return this.dids.length
  }

  /** The account of the 8-byte id at `off` of `buf`, added (unnamed) if new. */
  internId(buf: Buffer, off: number): number {
    // by hand (as readInt32LE would): Buffer's readers were not inlined in this loop of ~6M ids an hour
    const lo =
      (buf[off] as number) |
      ((buf[off + 1] as number) << 8) |
      ((buf[off + 2] as number) << 16) |
      ((buf[off + 3] as number) << 24)
    const hi =
      (buf[off + 4] as number) |
      ((buf[off + 5] as number) << 8) |
      ((buf[off + 6] as number) << 16) |
      ((buf[off + 7] as number) << 24)
    // SHA-1 bytes: the low half is as good a hash as any
    let h = lo & (this.slots.length - 1)
    for (let s = this.slots[h] as number; s !== 0; s = this.slots[h] as number) {
      if (this.idLo[s - 1] === lo && this.idHi[s - 1] === hi) return s - 1
      h = (h + 1) & (this.slots.length - 1)
    }
    const i = this.dids.length
    if (i === this.idLo.length) {
      this.idLo = grow(this.idLo, (n) => new Int32Array(n))
      this.idHi = grow(this.idHi, (n) => new Int32Array(n))
    }
    this.idLo[i] = lo
    this.idHi[i] = hi
    this.dids.push('')
    this.slots[h] = i + 1
    if (2 * this.dids.length > this.slots.length) this.rehash()
    return i
  }

  private rehash(): void {
    let size = this.slots.length * 2
    while (size < 2 * this.dids.length) size *= 2
    const slots = new Int32Array(size)
    const mask = slots.length - 1
    for (let i = 0; i < this.dids.length; i++) {
      let h = (this.idLo[i] as number) & mask
      while (slots[h] !== 0) h = (h + 1) & mask
      slots[h] = i + 1
    }
    this.slots = slots
  }

  intern(did: string): number {
    let id = this.byDid.get(did)
    if (id === undefined) {
      id = this.internId(packDid(did), 0)
      this.dids[id] = did
      this.byDid.set(did, id)
    }
    return id
  }

  has(did: string): boolean {
    return this.byDid.has(did)
  }

  /** The accounts' 8-byte ids, account i's at 8 * i: what the day blobs hold for partners. */
  idArena(): Buffer {
    const arena = Buffer.allocUnsafe(8 * this.dids.length)
    for (let i = 0; i < this.dids.length; i++) {
      arena.writeInt32LE(this.idLo[i] as number, 8 * i)
      arena.writeInt32LE(this.idHi[i] as number, 8 * i + 4)
    }
    return arena
  }

  push(a: number, s: number, k: number, c: number): void {
    if (this.n === this.author.length) {
      this.author = grow(this.author, (n) => new Int32Array(n))
      this.subject = grow(this.subject, (n) => new Int32Array(n))
      this.kind = grow(this.kind, (n) => new Uint8Array(n))
      this.count = grow(this.count, (n) => new Uint32Array(n))
    }
    this.author[this.n] = a
    this.subject[this.n] = s
    this.kind[this.n] = k
    this.count[this.n] = c
    this.n++
  }

  /** The rows as the day blob encoder reads them, the partner of row `r` being `partner[r]`. */
  rows(partner: Int32Array, ids: Buffer): RecordColumns {
    return { kind: this.kind, count: this.count, partner, ids }
  }

  /** Drops the rows not in `keep` (one flag per row), and the accounts no row is left with. */
  keepRows(keep: Uint8Array): void {
    const to = new Int32Array(this.dids.length).fill(-1)
    const dids: string[] = []
    const lo = new Int32Array(Math.max(16, this.dids.length))
    const hi = new Int32Array(lo.length)
    const renumber = (i: number): number => {
      if (to[i] === -1) {
        to[i] = dids.length
        lo[dids.length] = this.idLo[i] as number
        hi[dids.length] = this.idHi[i] as number
        dids.push(this.dids[i] as string)
      }
      return to[i] as number
    }
    let n = 0
    for (let r = 0; r < this.n; r++) {
      if (!keep[r]) continue
      this.author[n] = renumber(this.author[r] as number)
      this.subject[n] = renumber(this.subject[r] as number)
      this.kind[n] = this.kind[r] as number
      this.count[n] = this.count[r] as number
      n++
    }
    this.n = n
    this.dids = dids
    this.idLo = lo
    this.idHi = hi
    this.byDid = new Map(dids.map((d, i) => [d, i]))
    this.slots = new Int32Array(8)
    this.rehash()
  }

  /**
   * Row indexes grouped by `by` (counting sort): rows of account i are order[start[i]..start[i+1]). The
   * sort is stable: rows taken in the order `pre` (default: as stored) keep it within each account.
   */
  groupBy(by: Int32Array, pre?: Int32Array): { order: Int32Array; start: Int32Array } {
    const accounts = this.dids.length
    const start = new Int32Array(accounts + 1)
    for (let i = 0; i < this.n; i++) (start[(by[i] as number) + 1] as number)++
    for (let i = 0; i < accounts; i++)
      start[i + 1] = (start[i + 1] as number) + (start[i] as number)
    const fill = start.slice(0, accounts)
    const order = new Int32Array(this.n)
    for (let j = 0; j < this.n; j++) {
      const i = pre ? (pre[j] as number) : j
      const a = by[i] as number
      order[fill[a] as number] = i
      fill[a] = (fill[a] as number) + 1
    }
    return { order, start }
  }
}

/** Reads one hour of the live index into a table, skipping (and counting) malformed rows. */
export async function loadHour(
  source: LiveHours,
  hour: number,
  onProgress?: () => Promise<void>,
): Promise<{ table: HourTable; skipped: number }> {
  if (source.ids) return loadHourIds(source.ids, hour, onProgress)
  const table = new HourTable()
  let skipped = 0
  // A DID is checked once, when first seen, not once per row: an hour has ~30 rows per account, and the
  // check (a regular expression) was a tenth of the scan's time.
  const bad = new Set<string>()
  const valid = (did: string): boolean => {
    if (table.has(did)) return true
    if (bad.has(did)) return false
    if (isValidDid(did)) return true
    bad.add(did)
    return false
  }
  await source.scanHour(hour, async (rows: HourRow[]) => {
    await onProgress?.()
    for (const row of rows) {
      if (
        !KIND_OK.has(row.kind) ||
        !Number.isSafeInteger(row.count) ||
        row.count <= 0 ||
        row.author === row.subject ||
        !valid(row.author) ||
        !valid(row.subject)
      ) {
        skipped++
        continue
      }
      table.push(
        table.intern(row.author),
        table.intern(row.subject),
        kindIndex(row.kind as InteractionKind),
        row.count,
      )
    }
  })
  return { table, skipped }
}

/**
 * `loadHour` over the source's id read: rows interned and summed by id (an author's records come together:
 * a (subject, kind) row of the current author is at or after its first row), DIDs resolved once per
 * account at the end. The same table and skips as the row read: a subject the DID table cannot name is
 * left out uncounted, as the index's row read leaves it out; a malformed DID or a self-interaction counts.
 */
async function loadHourIds(
  ids: NonNullable<LiveHours['ids']>,
  hour: number,
  onProgress?: () => Promise<void>,
): Promise<{ table: HourTable; skipped: number }> {
  const table = new HourTable()
  let lastRow = new Int32Array(1 << 16).fill(-1) // per 4 * account + kind
  await ids.scanHour(hour, async (b) => {
    await onProgress?.()
    for (let a = 0; a < b.authors.length; a++) {
      const r0 = b.start[a] as number
      const r1 = b.start[a + 1] as number
      if (r1 === r0) continue
      const author = table.internId(b.authorIds, 8 * a)
      table.dids[author] = b.authors[a] as string
      const first = table.n
      for (let r = r0; r < r1; r++) {
        const k = b.kinds[r] as number
        const key = 4 * table.internId(b.subjects, 8 * r) + k
        if (key >= lastRow.length) {
          const next = new Int32Array(Math.max(2 * lastRow.length, key + 1)).fill(-1)
          next.set(lastRow)
          lastRow = next
        }
        const at = lastRow[key] as number
        if (at >= first) table.count[at] = (table.count[at] as number) + 1
        else {
          lastRow[key] = table.n
          table.push(author, key >> 2, k, 1)
        }
      }
    }
  })
  await nameAccounts(ids, table)
  const ok = new Uint8Array(table.accounts) // 0 unnamed, 1 malformed, 2 valid
  table.dids.forEach((d, i) => {
    ok[i] = d === '' ? 0 : isValidDid(d) ? 2 : 1
  })
  const keep = new Uint8Array(table.n)
  let skipped = 0
  let dropped = 0
  for (let r = 0; r < table.n; r++) {
    const a = ok[table.author[r] as number] as number
    const s = ok[table.subject[r] as number] as number
    if (s === 0) dropped++
    else if (a === 2 && s === 2 && table.author[r] !== table.subject[r]) keep[r] = 1
    else skipped++
  }
  if (skipped + dropped > 0) table.keepRows(keep)
  return { table, skipped }
}

/** Names the accounts the scan left unnamed (subjects), in chunks of one pipelined DID table read. */
async function nameAccounts(ids: NonNullable<LiveHours['ids']>, table: HourTable): Promise<void> {
  const arena = table.idArena()
  const unnamed: number[] = []
  table.dids.forEach((d, i) => {
    if (d === '') unnamed.push(i)
  })
  const CHUNK = 10_000
  for (let c = 0; c < unnamed.length; c += CHUNK) {
    const part = unnamed.slice(c, c + CHUNK)
    const buf = Buffer.allocUnsafe(8 * part.length)
    part.forEach((i, j) => {
      arena.copy(buf, 8 * j, 8 * i, 8 * i + 8)
    })
    const dids = await ids.resolve(buf)
    part.forEach((i, j) => {
      table.dids[i] = dids[j] ?? ''
    })
  }
}

/** Each account's place in the order of the ids (8 * i of `arena`; the order a compact day blob keeps). */
export function idRanks(arena: Buffer): Int32Array {
  const n = arena.length / 8
  const byId = new Int32Array(n)
  for (let i = 0; i < n; i++) byId[i] = i
  byId.sort((x, y) => arena.compare(arena, 8 * y, 8 * y + 8, 8 * x, 8 * x + 8))
  const rank = new Int32Array(n)
  for (let r = 0; r < n; r++) rank[byId[r] as number] = r
  return rank
}

/**
 * The table's rows ordered by (partner id, kind), the partner of row r being `partner[r]`: two stable
 * counting sorts, kind then rank. Grouped by account after this (`groupBy(by, pre)`), each account's rows
 * come as a compact day blob holds them, and its encoder has nothing left to sort.
 */
export function orderByPartner(
  table: HourTable,
  partner: Int32Array,
  rank: Int32Array,
): Int32Array {
  const byKind = new Int32Array(table.n)
  let o = 0
  for (let k = 0; k < 4; k++) {
    for (let i = 0; i < table.n; i++) if (table.kind[i] === k) byKind[o++] = i
  }
  const start = new Int32Array(rank.length + 1)
  for (let i = 0; i < table.n; i++) (start[(rank[partner[i] as number] as number) + 1] as number)++
  for (let r = 0; r < rank.length; r++)
    start[r + 1] = (start[r + 1] as number) + (start[r] as number)
  const out = new Int32Array(table.n)
  for (let j = 0; j < table.n; j++) {
    const i = byKind[j] as number
    const r = rank[partner[i] as number] as number
    out[start[r] as number] = i
    start[r] = (start[r] as number) + 1
  }
  return out
}
