import { HOUR_MS, INTERACTION_KINDS, type InteractionKind, isValidDid } from '@circles/core'
import { hiddenAccounts } from '@circles/interaction-index'
import { type RedisSchema, shardsOf } from '@circles/redis-schema'
import { parseGroups } from '@circles/stream-info'
import type { Redis } from 'ioredis'
import type { HourRow, LiveHours } from './live-source.js'
import { topN } from './top-n.js'

// Global stats: one JSON document in `schema.globalStats`, so the API serves it with one GET.
// Tops are exact: full per-account counts are summed over the whole window for every kind, and only then
// cut to the top N (the original system cut each kind's list to 100 before merging, which is wrong).
// Accounts that opted out, were purged or wait to be forgotten are left out before the cut (hiddenAccounts);
// the API filters again at serve time, for those that left since the run.

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

  idOf(did: string): number | undefined {
    return this.ids.get(did)
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
  /** Which of these accounts no top list may name (opted out, purged, queued to be forgotten). */
  hide?: (dids: readonly string[]) => Promise<ReadonlySet<string>>
  /** The stream shards whose lag `pipeline.stream` sums (FIREHOSE_SHARDS). @default 1 */
  streamShards?: number
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
  const top = await visibleTops(cache, sum, limit, opts.hide)
  return { hours, top: { windowHours: topWindow, limit, ...top }, skippedRows }
}

/**
 * The top lists from whole per-account counts (`sum`: 8 per account), without the accounts `hide` names.
 * Hidden accounts count 0, so they are left out before the cut and every list stays full. The lists are
 * ranked, the accounts they name asked about, and ranked again until they name no hidden account: a round
 * ends the loop or hides one more, and only accounts near the top are ever asked.
 */
async function visibleTops(
  cache: StatsCache,
  sum: Float64Array,
  limit: number,
  hide: ComputeStatsOptions['hide'],
): Promise<Pick<GlobalStats['top'], 'authors' | 'subjects'>> {
  const n = cache.accounts
  const didOf = (id: number) => cache.didOf(id)
  const hidden = new Uint8Array(n)
  const count = (id: number, at: number) => (hidden[id] ? 0 : (sum[8 * id + at] as number))
  const tops = (offset: number) => {
    const out = {} as Record<KindOrAll, Ranked[]>
    INTERACTION_KINDS.forEach((kind, k) => {
      out[kind] = topN(n, (id) => count(id, offset + k), didOf, limit)
    })
    out.all = topN(
      n,
      (id) =>
        count(id, offset) + count(id, offset + 1) + count(id, offset + 2) + count(id, offset + 3),
      didOf,
      limit,
    )
    return out
  }
  const asked = new Set<string>()
  for (;;) {
    const top = { authors: tops(0), subjects: tops(4) }
    const named = [...Object.values(top.authors), ...Object.values(top.subjects)].flat()
    const fresh = [...new Set(named.map((r) => r.did))].filter((d) => !asked.has(d))
    const found = hide && fresh.length > 0 ? await hide(fresh) : new Set<string>()
    if (found.size === 0) return top
    for (const d of fresh) asked.add(d)
    for (const d of found) {
      const id = cache.idOf(d)
      if (id !== undefined) hidden[id] = 1
    }
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

type StreamStats = PipelineStats['stream']

/** One stream shard's length, the indexer group's undelivered and pending entries there, and its lag. */
async function readShardStream(
  redis: Redis,
  schema: RedisSchema,
  stream: string,
  now: number,
): Promise<StreamStats> {
  const [length, groups] = await Promise.all([
    redis.xlen(stream),
    redis.xinfo('GROUPS', stream).catch(() => [] as unknown[]),
  ])
  const group = parseGroups(groups).find((g) => g.name === schema.indexerGroup)
  if (!group) return { length, undelivered: null, pending: null, lagMs: null }
  if (group.lag === 0) return { length, undelivered: 0, pending: group.pending, lagMs: 0 }
  // The oldest undelivered entry is the first one after the group's last-delivered id.
  const after = await redis.xrange(stream, `(${group.lastDeliveredId}`, '+', 'COUNT', 1)
  const ms = entryMs(after[0]?.[0])
  return {
    length,
    undelivered: group.lag,
    pending: group.pending,
    lagMs: ms === null ? 0 : Math.max(0, now - ms),
  }
}

/** Every shard's figures in one: lengths and entries summed, the lag of the shard furthest behind. */
function combineShards(parts: StreamStats[]): StreamStats {
  if (parts.length === 1) return parts[0] as StreamStats
  const sum = (f: (p: StreamStats) => number | null) =>
    parts.some((p) => f(p) === null) ? null : parts.reduce((n, p) => n + (f(p) as number), 0)
  const lags = parts.map((p) => p.lagMs)
  return {
    length: sum((p) => p.length) as number,
    undelivered: sum((p) => p.undelivered),
    pending: sum((p) => p.pending),
    lagMs: lags.includes(null) ? null : Math.max(...(lags as number[])),
  }
}

/** Firehose and indexer counters, their rates since the previous document, and the stream's lag. */
export async function readPipelineStats(
  redis: Redis,
  schema: RedisSchema,
  now: number,
  previous: GlobalStats | null,
  streamShards = 1,
): Promise<PipelineStats> {
  const indexerKey = (schema as { indexerMetrics?: unknown }).indexerMetrics
  const [firehoseRaw, indexerRaw, ...shards] = await Promise.all([
    redis.hgetall(schema.firehoseMetrics),
    typeof indexerKey === 'string' ? redis.hgetall(indexerKey) : Promise.resolve({}),
    ...shardsOf(schema, streamShards).map((s) => readShardStream(redis, schema, s.stream, now)),
  ])
  const firehose = numericOrString(firehoseRaw as Record<string, string>)
  const indexer = numericOrString(indexerRaw as Record<string, string>)

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
  return { firehose, indexer, rates, stream: combineShards(shards as StreamStats[]) }
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
  const interactions = await computeInteractionStats(source, {
    ...opts,
    hide: opts.hide ?? ((dids) => hiddenAccounts(redis, schema, dids)),
  })
  const pipeline = await readPipelineStats(redis, schema, opts.now, previous, opts.streamShards)
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
