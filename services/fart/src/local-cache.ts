// The in-process copy of served circles: a hot circle then costs no Redis round trip, no parsing and no
// hashing, only a Map lookup by the request URL. An entry is served for `ttlMs` (LOCAL_CACHE_MS) after Redis
// last confirmed it (opt-outs, purge marker, version, ETag: see `createCircleService`), which bounds how late
// a purge made elsewhere (an account deleted on the firehose) shows in this process. Opt-out changes clear it
// at once, here and, through pub/sub, in every other process. Bounded by entries and by bytes; the oldest go
// first.

export interface LocalEntry {
  /** What the entry is a copy of: `schema.circle(did, variant)`. */
  did: string
  variant: string
  body: Buffer
  etag: string
  /** The backfill mark the circle was made under (backfill-view.ts). */
  mark: string
  /**
   * The last answer sent from it: the body with a backfill state and its ETag, kept while the state holds
   * (routes/circles.ts). Not counted in the byte bound: it is the body and ~60 bytes more, so the copies can
   * hold up to twice `maxBytes`.
   */
  shown?: { tag: string; body: Buffer; etag: string }
  /** Served until then without asking Redis again. */
  until: number
  /** Never served past this, confirmed or not: a URL naming a handle follows a moved handle by then. */
  hardUntil: number
  /** Served since Redis last confirmed it (only those are worth confirming again). */
  used: boolean
}

export interface LocalCache {
  /** The entry if it may be served now (and marks it used). */
  get(key: string): LocalEntry | undefined
  /**
   * Keeps a copy under `key`, unless the cache was cleared since `generation` was read: a request that read
   * Redis before an opt-out change must not put a circle made before it back.
   */
  set(
    key: string,
    copy: { did: string; variant: string; body: Buffer; etag: string; mark: string },
    generation: number,
  ): void
  /** Read before a Redis round trip whose answer may be kept. */
  readonly generation: number
  /** Every entry (expired ones are dropped on the way). */
  entries(): [string, LocalEntry][]
  /** Drops `key` if it still holds `entry`. */
  drop(key: string, entry: LocalEntry): void
  clear(): void
  readonly ttlMs: number
  readonly size: number
}

export function createLocalCache(opts: {
  ttlMs: number
  /** @default 10000 */
  maxEntries?: number
  /** @default 64 MiB */
  maxBytes?: number
  /** @default 60000 */
  maxAgeMs?: number
  now?: () => number
}): LocalCache {
  const now = opts.now ?? Date.now
  const { ttlMs } = opts
  const maxEntries = opts.maxEntries ?? 10_000
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024
  const maxAgeMs = Math.max(ttlMs, opts.maxAgeMs ?? 60_000)
  const map = new Map<string, LocalEntry>()
  let bytes = 0
  let generation = 0
  const remove = (key: string, e: LocalEntry) => {
    map.delete(key)
    bytes -= e.body.length
  }
  return {
    get(key) {
      const e = map.get(key)
      if (e === undefined) return undefined
      const t = now()
      if (e.until > t && e.hardUntil > t) {
        e.used = true
        return e
      }
      remove(key, e)
      return undefined
    },
    set(key, copy, gen) {
      if (ttlMs <= 0 || gen !== generation || copy.body.length > maxBytes) return
      const old = map.get(key)
      if (old) remove(key, old)
      const t = now()
      map.set(key, { ...copy, until: t + ttlMs, hardUntil: t + maxAgeMs, used: false })
      bytes += copy.body.length
      for (const [k, e] of map) {
        if (map.size <= maxEntries && bytes <= maxBytes) break
        remove(k, e)
      }
    },
    get generation() {
      return generation
    },
    entries() {
      const t = now()
      const out: [string, LocalEntry][] = []
      for (const [k, e] of map) {
        if (e.until > t && e.hardUntil > t) out.push([k, e])
        else remove(k, e)
      }
      return out
    },
    drop(key, entry) {
      if (map.get(key) === entry) remove(key, entry)
    },
    clear() {
      generation++
      map.clear()
      bytes = 0
    },
    ttlMs,
    get size() {
      return map.size
    },
  }
}
