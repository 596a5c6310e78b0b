/**
 * Counts per (partner, day, kind) of the creates for the day blobs. Each create is one number,
 * partner index * stride + (day - first day) * 4 + kind (a partner gets its index once), appended to a
 * typed array; the counts come from sorting them once. A Map per partner keyed by day, or one Map keyed
 * by those numbers, cost a Map update per create: most of a repo's classification time.
 */
const CACHE = 4096

export class DayCounts {
  private readonly names: string[] = []
  private readonly index = new Map<string, number>()
  private readonly removed = new Set<number>()
  private keys_ = new Float64Array(1024)
  private count = 0
  private readonly stride: number
  private readonly cachedName: (string | undefined)[] = new Array(CACHE)
  private readonly cachedIndex = new Int32Array(CACHE)

  /** Days from `firstDay` to `lastDay` (days since the epoch), both included, can be counted. */
  constructor(
    private readonly firstDay: number,
    lastDay: number,
  ) {
    this.stride = Math.max(1, lastDay - firstDay + 1) * 4
  }

  /** One create of `kind` (0..3) naming `partner` on `day`. */
  add(partner: string, day: number, kind: number): void {
    const offset = (day - this.firstDay) * 4 + kind
    if (!(offset >= 0 && offset < this.stride))
      throw new RangeError(`day ${day} is not counted here`)
    // A small cache by the DID's last characters in front of the Map: a hit compares two strings,
    // where the Map would hash the fresh one first.
    const n = partner.length
    const slot =
      (n * 31 +
        partner.charCodeAt(n - 1) * 7 +
        partner.charCodeAt(n - 2) * 227 +
        partner.charCodeAt(n - 3) * 4099) &
      (CACHE - 1)
    let p: number
    if (this.cachedName[slot] === partner) p = this.cachedIndex[slot] as number
    else {
      let found = this.index.get(partner)
      if (found === undefined) {
        found = this.names.length
        this.names.push(partner)
        this.index.set(partner, found)
      }
      p = found
      this.cachedName[slot] = partner
      this.cachedIndex[slot] = p
    }
    if (this.count === this.keys_.length) {
      const grown = new Float64Array(this.count * 2)
      grown.set(this.keys_)
      this.keys_ = grown
    }
    this.keys_[this.count++] = p * this.stride + offset
  }

  /** Partners counted (and not deleted). */
  get size(): number {
    return this.names.length - this.removed.size
  }

  has(partner: string): boolean {
    const p = this.index.get(partner)
    return p !== undefined && !this.removed.has(p)
  }

  /** The partners, in the order first counted. */
  keys(): string[] {
    return this.names.filter((_, p) => !this.removed.has(p))
  }

  /** One partner's counts, day * 4 + kind -> n, in that order. */
  get(partner: string): Map<number, number> | undefined {
    if (!this.has(partner)) return undefined
    const rows = this.rows()
    const out = new Map<number, number>()
    for (let r = 0; r < rows.length; r++) {
      if (rows.names[rows.partner[r] as number] !== partner) continue
      out.set((rows.day[r] as number) * 4 + (rows.kind[r] as number), rows.count[r] as number)
    }
    return out
  }

  /** Leaves a partner out; returns how many creates it had. */
  delete(partner: string): number {
    const p = this.index.get(partner)
    if (p === undefined || this.removed.has(p)) return 0
    this.removed.add(p)
    let n = 0
    for (let i = 0; i < this.count; i++)
      if (Math.floor((this.keys_[i] as number) / this.stride) === p) n++
    return n
  }

  clear(): void {
    for (let p = 0; p < this.names.length; p++) this.removed.add(p)
    this.count = 0
  }

  /**
   * Every count as columns, by partner (in the order first counted), then day, then kind; `partner`
   * indexes `names` (a deleted partner has no rows).
   */
  rows(): DayRows {
    const sorted = this.keys_.slice(0, this.count).sort()
    let n = 0
    for (let i = 0; i < sorted.length; i++) {
      if (i === 0 || sorted[i] !== sorted[i - 1]) n++
    }
    const rows: DayRows = {
      length: 0,
      names: this.names,
      partner: new Int32Array(n),
      day: new Int32Array(n),
      kind: new Uint8Array(n),
      count: new Uint32Array(n),
    }
    let r = -1
    let last = -1
    let keep = false
    for (let i = 0; i < sorted.length; i++) {
      const key = sorted[i] as number
      if (key === last) {
        if (keep) rows.count[r] = (rows.count[r] as number) + 1
        continue
      }
      last = key
      const p = Math.floor(key / this.stride)
      keep = !this.removed.has(p)
      if (!keep) continue
      const offset = key - p * this.stride
      r++
      rows.partner[r] = p
      rows.day[r] = this.firstDay + Math.floor(offset / 4)
      rows.kind[r] = offset % 4
      rows.count[r] = 1
    }
    rows.length = r + 1
    return rows
  }
}

export interface DayRows {
  length: number
  /** Partners by index (`partner` holds indexes into this). */
  names: readonly string[]
  partner: Int32Array
  day: Int32Array
  kind: Uint8Array
  count: Uint32Array
}
