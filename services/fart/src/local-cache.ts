// The in-process copy of served circles: a hot circle then costs no Redis round trip, no parsing and no
// hashing, only a Map lookup by the request URL. Entries live `ttlMs` (LOCAL_CACHE_MS): that bounds how late a
// purge made elsewhere (an account deleted on the firehose) shows in this process. Opt-out changes clear it at
// once, here and, through pub/sub, in every other process. Bounded by entries and by bytes; the oldest go first.

export interface LocalEntry {
  body: Buffer
  etag: string
  until: number
}

export interface LocalCache {
  get(key: string): LocalEntry | undefined
  /**
   * Keeps `body` under `key`, unless the cache was cleared since `generation` was read: a request that read
   * Redis before an opt-out change must not put a circle made before it back.
   */
  set(key: string, body: Buffer, etag: string, generation: number): void
  /** Read before the Redis round trip whose answer may be kept. */
  readonly generation: number
  clear(): void
  readonly size: number
}

export function createLocalCache(opts: {
  ttlMs: number
  /** @default 10000 */
  maxEntries?: number
  /** @default 64 MiB */
  maxBytes?: number
  now?: () => number
}): LocalCache {
  const now = opts.now ?? Date.now
  const maxEntries = opts.maxEntries ?? 10_000
  const maxBytes = opts.maxBytes ?? 64 * 1024 * 1024
  const map = new Map<string, LocalEntry>()
  let bytes = 0
  let generation = 0
  const drop = (key: string, e: LocalEntry) => {
    map.delete(key)
    bytes -= e.body.length
  }
  return {
    get(key) {
      const e = map.get(key)
      if (e === undefined) return undefined
      if (e.until > now()) return e
      drop(key, e)
      return undefined
    },
    set(key, body, etag, gen) {
      if (opts.ttlMs <= 0 || gen !== generation || body.length > maxBytes) return
      const old = map.get(key)
      if (old) drop(key, old)
      map.set(key, { body, etag, until: now() + opts.ttlMs })
      bytes += body.length
      for (const [k, e] of map) {
        if (map.size <= maxEntries && bytes <= maxBytes) break
        drop(k, e)
      }
    },
    get generation() {
      return generation
    },
    clear() {
      generation++
      map.clear()
      bytes = 0
    },
    get size() {
      return map.size
    },
  }
}
