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

  /** Row indexes grouped by `by` (counting sort): rows of account i are order[start[i]..start[i+1]). */
  groupBy(by: Int32Array): { order: Int32Array; start: Int32Array } {
    const accounts = this.dids.length
    const start = new Int32Array(accounts + 1)
    for (let i = 0; i < this.n; i++) (start[(by[i] as number) + 1] as number)++
    for (let i = 0; i < accounts; i++)
      start[i + 1] = (start[i + 1] as number) + (start[i] as number)
    const fill = start.slice(0, accounts)
    const order = new Int32Array(this.n)
    for (let i = 0; i < this.n; i++) {
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
  await source.scanHour(hour, async (rows: HourRow[]) => {
    await onProgress?.()
    for (const row of rows) {
      if (
        !KIND_OK.has(row.kind) ||
        !Number.isSafeInteger(row.count) ||
        row.count <= 0 ||
        row.author === row.subject ||
        !isValidDid(row.author) ||
        !isValidDid(row.subject)
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
}
