import { HOUR_MS, INTERACTION_KINDS, type InteractionKind, isValidDid } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { HourRow, LiveHours } from './live-source.js'

// Global stats: one JSON document in `schema.globalStats`, so the API serves it with one GET.
// Tops are exact: full per-account counts are summed over the whole window for every kind, and only then
// cut to the top N (the original system cut each kind's list to 100 before merging, which is wrong).

export type KindOrAll = InteractionKind | 'all'
export const KINDS_AND_ALL: readonly KindOrAll[] = [...INTERACTION_KINDS, 'all']

export interface Ranked {
  did: string
  count: number
}

export interface HourTotals {
  hour: number
  /** ISO time of the hour's start, for readers. */
  start: string
  like: number
  repost: number
  reply: number
  quote: number
}

export interface PipelineStats {
  /** Raw firehose counters and gauges (`schema.firehoseMetrics`). */
  firehose: Record<string, number | string>
  /** Raw indexer counters, when the indexer publishes them. */
  indexer: Record<string, number | string>
  /** Per-second rates of every counter that grew since the previous stats run (`firehose.events`...). */
  rates: Record<string, number>
  stream: {
    length: number
    /** Entries not yet delivered to the indexer group (Redis 7 `lag`), and delivered but unacknowledged. */
    undelivered: number | null
    pending: number | null
    /** Age of the oldest entry the indexer has not read yet: 0 when it is caught up. */
    lagMs: number | null
  }
}

export interface GlobalStats {
  version: 1
  generatedAt: string
  /** ms */
  generatedAtMs: number
  /** Totals per kind for each of the last `hoursWindow` hours, oldest first (current hour included). */
  hours: HourTotals[]
  top: {
    windowHours: number
    limit: number
    authors: Record<KindOrAll, Ranked[]>
    subjects: Record<KindOrAll, Ranked[]>
  }
  pipeline: PipelineStats
  /** Rows of the live index that were malformed and skipped. */
  skippedRows: number
}

/** One hour's exact contribution: totals, and per account 8 counts (sent by kind, then received by kind). */
interface HourPart {
  totals: number[]
  skipped: number
  ids: Int32Array
  counts: Float64Array
}

/**
 * What the stats job keeps between runs: each completed hour is scanned once and kept as a compact
 * contribution (account ids interned once, counts in typed arrays), so a run scans only the last two
 * hours and sums the rest in memory. Tops stay exact: whole per-account counts are summed over the
 * window for every kind before any cut. Hours completed more than an hour ago are not rescanned, so a
 * delete arriving later than that is not reflected in the stats (it is in the index and the roll-up).
 */
export class StatsCache {
  private readonly ids = new Map<string, number>()
  private readonly dids: string[] = []
  private readonly parts = new Map<number, HourPart>()

  /** Drops everything (also bounds memory if the interned accounts grow past `maxAccounts`). */
  clear(): void {
    this.ids.clear()
    this.dids.length = 0
    this.parts.clear()
  }

  private intern(did: string): number {
    let id = this.ids.get(did)
    if (id === undefined) {
      id = this.dids.length
      this.ids.set(did, id)
      this.dids.push(did)
    }
    return id
  }

  didOf(id: number): string {
    return this.dids[id] as string
  }

  get accounts(): number {
    return this.dids.length
  }

  async part(
    source: LiveHours,
    hour: number,
    reusable: boolean,
    onProgress?: () => Promise<void>,
  ): Promise<HourPart> {
    const cached = this.parts.get(hour)
    if (cached && reusable) return cached
    const local = new Map<number, number>()
    let counts = new Float64Array(8 * 1024)
    const ids: number[] = []
    const totals = [0, 0, 0, 0]
    let skipped = 0
    const slot = (id: number): number => {
      let i = local.get(id)
      if (i === undefined) {
        i = ids.length
        local.set(id, i)
        ids.push(id)
        if (8 * ids.length > counts.length) {
          const next = new Float64Array(counts.length * 2)
          next.set(counts)
          counts = next
        }
      }
      return i
    }
    await source.scanHour(hour, async (rows: HourRow[]) => {
      await onProgress?.()
      for (const row of rows) {
        const k = KIND_INDEX.get(row.kind)
        if (
          k === undefined ||
          !Number.isSafeInteger(row.count) ||
          row.count <= 0 ||
          !isValidDid(row.author) ||
          !isValidDid(row.subject)
        ) {
          skipped++
          continue
        }
        totals[k] = (totals[k] as number) + row.count
        const a = 8 * slot(this.intern(row.author)) + k
        counts[a] = (counts[a] as number) + row.count
        const s = 8 * slot(this.intern(row.subject)) + 4 + k
        counts[s] = (counts[s] as number) + row.count
      }
    })
    const part = {
      totals,
      skipped,
      ids: Int32Array.from(ids),
      counts: counts.slice(0, 8 * ids.length),
    }
    if (reusable) this.parts.set(hour, part)
    return part
  }

  /** Forgets hours before `oldest`. */
  prune(oldest: number): void {
    for (const h of this.parts.keys()) if (h < oldest) this.parts.delete(h)
  }
}

function better(a: Ranked, b: Ranked): boolean {
  return a.count > b.count || (a.count === b.count && a.did < b.did)
}

/** Top N by a bounded min-heap: O(accounts log N), no sort of millions of entries. */
function topN(
  accounts: number,
  countOf: (id: number) => number,
  didOf: (id: number) => string,
  limit: number,
): Ranked[] {
  const heap: Ranked[] = [] // heap[0] is the worst of the kept ones
  const worse = (i: number, j: number) => better(heap[j] as Ranked, heap[i] as Ranked)
  const swap = (i: number, j: number) => {
    const t = heap[i] as Ranked
    heap[i] = heap[j] as Ranked
    heap[j] = t
  }
  for (let id = 0; id < accounts; id++) {
    const count = countOf(id)
    if (count <= 0) continue
    if (heap.length === limit) {
      const worst = heap[0] as Ranked
      // Cheap reject before building a DID string comparison.
      if (count < worst.count) continue
      const item = { did: didOf(id), count }
      if (!better(item, worst)) continue
      heap[0] = item
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < heap.length && worse(l, m)) m = l
        if (r < heap.length && worse(r, m)) m = r
        if (m === i) break
        swap(i, m)
        i = m
      }
    } else if (limit > 0) {
      heap.push({ did: didOf(id), count })
      let i = heap.length - 1
      while (i > 0) {
        const p = (i - 1) >> 1
        if (!worse(i, p)) break
        swap(i, p)
        i = p
      }
    }
  }
  return heap.sort((a, b) => (better(a, b) ? -1 : better(b, a) ? 1 : 0))
}

const KIND_INDEX = new Map<string, number>(INTERACTION_KINDS.map((k, i) => [k, i]))

export interface ComputeStatsOptions {
  now: number
  /** @default 48 */
  hoursWindow?: number
  /** @default 24 */
  topWindowHours?: number
  /** @default 100 */
  limit?: number
  /** Kept between runs by the service; a fresh one (a full scan) when absent. */
  cache?: StatsCache
  /** Called between read batches (the job extends its lock there). */
  onProgress?: () => Promise<void>
}

/** Totals and exact tops from the live index. */
export async function computeInteractionStats(
  source: LiveHours,
  opts: ComputeStatsOptions,
): Promise<Pick<GlobalStats, 'hours' | 'top' | 'skippedRows'>> {
  const hoursWindow = opts.hoursWindow ?? 48
  const topWindow = opts.topWindowHours ?? 24
  const limit = opts.limit ?? 100
  const current = Math.floor(opts.now / HOUR_MS)
  const cache = opts.cache ?? new StatsCache()
  if (cache.accounts > 20_000_000) cache.clear()
  cache.prune(current - hoursWindow + 1)
  const hours: HourTotals[] = []
  const inTop: HourPart[] = []
  let skippedRows = 0
  for (let hour = current - hoursWindow + 1; hour <= current; hour++) {
    // The current and the previous hour are still being written (late events, deletes): always rescanned.
    const part = await cache.part(source, hour, hour < current - 1, opts.onProgress)
    skippedRows += part.skipped
    if (hour > current - topWindow) inTop.push(part)
    hours.push({
      hour,
      start: new Date(hour * HOUR_MS).toISOString(),
      like: part.totals[0] as number,
      repost: part.totals[1] as number,
      reply: part.totals[2] as number,
      quote: part.totals[3] as number,
    })
  }
  // Whole counts per account over the top window, every kind, before any cut.
  const n = cache.accounts
  const sum = new Float64Array(8 * n)
  for (const part of inTop) {
    const { ids, counts } = part
    for (let i = 0; i < ids.length; i++) {
      const base = 8 * (ids[i] as number)
      for (let c = 0; c < 8; c++)
        sum[base + c] = (sum[base + c] as number) + (counts[8 * i + c] as number)
    }
  }
  const didOf = (id: number) => cache.didOf(id)
  const tops = (offset: number) => {
    const out = {} as Record<KindOrAll, Ranked[]>
    INTERACTION_KINDS.forEach((kind, k) => {
      out[kind] = topN(n, (id) => sum[8 * id + offset + k] as number, didOf, limit)
    })
    out.all = topN(
      n,
      (id) => {
        const b = 8 * id + offset
        return (
          (sum[b] as number) +
          (sum[b + 1] as number) +
          (sum[b + 2] as number) +
          (sum[b + 3] as number)
        )
      },
      didOf,
      limit,
    )
    return out
  }
  return {
    hours,
    top: { windowHours: topWindow, limit, authors: tops(0), subjects: tops(4) },
    skippedRows,
  }
}

function numericOrString(raw: Record<string, string>): Record<string, number | string> {
  const out: Record<string, number | string> = {}
  for (const [k, v] of Object.entries(raw)) {
    const n = Number(v)
    out[k] = v !== '' && Number.isFinite(n) ? n : v
  }
  return out
}

function entryMs(id: string | null | undefined): number | null {
  if (!id) return null
  const ms = Number(id.split('-')[0])
  return Number.isFinite(ms) ? ms : null
}

/** Firehose and indexer counters, their rates since the previous document, and the stream's lag. */
export async function readPipelineStats(
  redis: Redis,
  schema: RedisSchema,
  now: number,
  previous: GlobalStats | null,
): Promise<PipelineStats> {
  const indexerKey = (schema as { indexerMetrics?: unknown }).indexerMetrics
  const [firehoseRaw, indexerRaw, length, groups] = await Promise.all([
    redis.hgetall(schema.firehoseMetrics),
    typeof indexerKey === 'string' ? redis.hgetall(indexerKey) : Promise.resolve({}),
    redis.xlen(schema.eventStream),
    redis.xinfo('GROUPS', schema.eventStream).catch(() => [] as unknown[]),
  ])
  const firehose = numericOrString(firehoseRaw)
  const indexer = numericOrString(indexerRaw as Record<string, string>)

  let undelivered: number | null = null
  let pending: number | null = null
  let lagMs: number | null = null
  for (const g of groups as unknown[][]) {
    const info: Record<string, unknown> = {}
    for (let i = 0; i + 1 < g.length; i += 2) info[String(g[i])] = g[i + 1]
    if (info.name !== schema.indexerGroup) continue
    pending = Number(info.pending ?? 0)
    undelivered = info.lag === null || info.lag === undefined ? null : Number(info.lag)
    if (undelivered === 0) lagMs = 0
    else {
      // The oldest undelivered entry is the first one after the group's last-delivered id.
      const after = await redis.xrange(
        schema.eventStream,
        `(${String(info['last-delivered-id'])}`,
        '+',
        'COUNT',
        1,
      )
      const ms = entryMs(after[0]?.[0])
      lagMs = ms === null ? 0 : Math.max(0, now - ms)
    }
  }

  const rates: Record<string, number> = {}
  if (previous) {
    const dt = (now - previous.generatedAtMs) / 1000
    const prev = previous.pipeline
    for (const [source, cur, old] of [
      ['firehose', firehose, prev.firehose],
      ['indexer', indexer, prev.indexer],
    ] as const) {
      for (const [k, v] of Object.entries(cur)) {
        const before = old?.[k]
        if (dt > 0 && typeof v === 'number' && typeof before === 'number' && v >= before) {
          rates[`${source}.${k}`] = Math.round(((v - before) / dt) * 100) / 100
        }
      }
    }
  }
  return { firehose, indexer, rates, stream: { length, undelivered, pending, lagMs } }
}

export async function readGlobalStats(
  redis: Redis,
  schema: RedisSchema,
): Promise<GlobalStats | null> {
  const raw = await redis.get(schema.globalStats)
  if (!raw) return null
  try {
    return JSON.parse(raw) as GlobalStats
  } catch {
    return null
  }
}

/** Computes the whole document and stores it in one SET. */
export async function runGlobalStats(
  redis: Redis,
  schema: RedisSchema,
  source: LiveHours,
  opts: ComputeStatsOptions,
): Promise<GlobalStats> {
  const previous = await readGlobalStats(redis, schema)
  const interactions = await computeInteractionStats(source, opts)
  const pipeline = await readPipelineStats(redis, schema, opts.now, previous)
  const doc: GlobalStats = {
    version: 1,
    generatedAt: new Date(opts.now).toISOString(),
    generatedAtMs: opts.now,
    ...interactions,
    pipeline,
  }
  await redis.set(schema.globalStats, JSON.stringify(doc))
  return doc
}
