import type { RedisSchema } from '@circles/redis-schema'
import { serverMemory } from '@circles/redis-wire'
import type { Redis } from 'ioredis'
import type { Check, DoctorThresholds } from './doctor.js'

// The doctor's memory line: what Redis needs at the rate the firehose sees now, against its `maxmemory`.
// The figures are the benchmarks' (BENCHMARKS.md; the README's "Sizing" section works them through):
// the 48-hour index takes ~86 B per interaction (`pnpm bench:indexer`, 85.7 B), the long-term daily
// aggregates ~31 B per (pair, kind, day) (`pnpm bench:rollup`, 31.3 B), and one network-scale hour of
// 5,000,000 interactions held 3,138,880 (pair, kind) rows: 0.63 per interaction. A day repeats more pairs
// than an hour, so 0.63 per interaction is an upper bound for a day's rows.

export const INDEX_BYTES_PER_INTERACTION = 86
export const AGGREGATE_BYTES_PER_PAIR_DAY = 31.3
export const PAIR_DAYS_PER_INTERACTION = 0.63
export const WINDOW_HOURS = 48

export interface MemoryEstimate {
  /** The 48-hour interaction index. */
  windowBytes: number
  /** The long-term daily aggregates, for every day kept. */
  aggregateBytes: number
  totalBytes: number
}

/** Redis memory for `interactionsPerSecond` sustained, with `retentionDays` of daily aggregates kept. */
export function estimateMemory(
  interactionsPerSecond: number,
  retentionDays: number,
): MemoryEstimate {
  const rate = Math.max(0, interactionsPerSecond)
  const windowBytes = rate * WINDOW_HOURS * 3600 * INDEX_BYTES_PER_INTERACTION
  const aggregateBytes =
    rate * 86_400 * PAIR_DAYS_PER_INTERACTION * AGGREGATE_BYTES_PER_PAIR_DAY * retentionDays
  return { windowBytes, aggregateBytes, totalBytes: windowBytes + aggregateBytes }
}

function gb(bytes: number): string {
  return `${(bytes / 1e9).toFixed(bytes < 1e10 ? 2 : 1)} GB`
}

/**
 * Compares `maxmemory` (and the machine's memory) with the estimate at the firehose's current interaction
 * rate. Only a live rate counts: while the firehose catches up (further behind the relay than
 * `relayLagWarnMs`) or is not reading, its rate says nothing about the network's, and the line says so.
 */
export async function checkMemory(
  redis: Redis,
  schema: RedisSchema,
  t: Pick<DoctorThresholds, 'relayLagWarnMs' | 'rollupRetentionDays'>,
): Promise<Check> {
  const retentionDays = t.rollupRetentionDays
  const name = 'redis memory'
  const m = await redis.hgetall(schema.firehoseMetrics)
  const rate = Number(m.interactionsPerSecond)
  const lagMs = m.lagMs === undefined || m.lagMs === '' ? Number.NaN : Number(m.lagMs)
  const mem = await serverMemory(redis)
  const used = `${gb(mem.used)} used${mem.nodes > 1 ? ` on ${mem.nodes} primaries` : ''}`
  if (m.state !== 'reading' || !Number.isFinite(rate) || !(lagMs < t.relayLagWarnMs)) {
    return {
      name,
      status: 'ok',
      message: `${used}; no live interaction rate to size from (the firehose is not reading live).`,
    }
  }
  const need = estimateMemory(rate, retentionDays)
  const needs = `${rate} interactions/s needs ~${gb(need.totalBytes)} (48 h window ${gb(need.windowBytes)}, ${retentionDays} days of aggregates ${gb(need.aggregateBytes)})`
  const { maxmemory, system } = mem
  if (maxmemory > 0 && maxmemory < need.totalBytes) {
    return {
      name,
      status: 'warn',
      message: `maxmemory is ${gb(maxmemory)}, below what ${needs}: Redis will refuse writes (noeviction) once full. Raise maxmemory or lower ROLLUP_RETENTION_DAYS (README "Sizing").`,
    }
  }
  if (maxmemory === 0 && system > 0 && system < need.totalBytes) {
    return {
      name,
      status: 'warn',
      message: `no maxmemory, and the machine's ${gb(system)} is below what ${needs} (README "Sizing").`,
    }
  }
  return { name, status: 'ok', message: `${used}; ${needs}` }
}
