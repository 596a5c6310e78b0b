import { INTERACTION_KINDS, type InteractionKind, isValidDid } from '@circles/core'
import { kindIndex, packDid, type RecordColumns } from '@circles/long-term'
import type { HourRow, LiveHours } from './live-source.js'

// One hour of the live index in memory, in columns that the day blob encoder reads straight
// (`encodeDayBlobRows`): the roll-up's read side. Nothing here writes to Redis.

const KIND_OK = new Set<string>(INTERACTION_KINDS)

/** Rows of one hour, DIDs interned to indexes, in growable typed arrays (5M rows fit in ~70 MB). */
export class HourTable {
  ids = new Map<string, number>()
  dids: string[] = []
  n = 0
  author = new Int32Array(1 << 16)
  subject = new Int32Array(1 << 16)
  kind = new Uint8Array(1 << 16)
  count = new Uint32Array(1 << 16)

  intern(did: string): number {
    let id = this.ids.get(did)
    if (id === undefined) {
      id = this.dids.length
      this.ids.set(did, id)
      this.dids.push(did)
    }
    return id
  }

  push(a: number, s: number, k: number, c: number): void {
    if (this.n === this.author.length) {
      const grow = <T extends Int32Array | Uint8Array | Uint32Array>(
        arr: T,
        make: (n: number) => T,
      ) => {
        const next = make(arr.length * 2)
        next.set(arr)
        return next
      }
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
  rows(partner: Int32Array, ids: PackedIds): RecordColumns {
    return { kind: this.kind, count: this.count, partner, ids: ids.arena }
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
  const table = new HourTable()
  let skipped = 0
  // A DID is checked once, when first seen, not once per row: an hour has ~30 rows per account, and the
  // check (a regular expression) was a tenth of the scan's time.
  const bad = new Set<string>()
  const valid = (did: string): boolean => {
    if (table.ids.has(did)) return true
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

/** 8-byte DID ids of a table's accounts in one arena: no Buffer object per account. */
export class PackedIds {
  readonly arena: Buffer
  constructor(dids: readonly string[]) {
    this.arena = Buffer.allocUnsafe(8 * dids.length)
    dids.forEach((d, i) => {
      packDid(d).copy(this.arena, 8 * i)
    })
  }

  /** Each account's place in the order of the ids (the order a compact day blob keeps its partners). */
  ranks(): Int32Array {
    const n = this.arena.length / 8
    const byId = new Int32Array(n)
    for (let i = 0; i < n; i++) byId[i] = i
    const a = this.arena
    byId.sort((x, y) => a.compare(a, 8 * y, 8 * y + 8, 8 * x, 8 * x + 8))
    const rank = new Int32Array(n)
    for (let r = 0; r < n; r++) rank[byId[r] as number] = r
    return rank
  }
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
