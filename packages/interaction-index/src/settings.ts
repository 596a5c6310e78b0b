import { onEveryNode } from '@circles/redis-wire'
import type { Cluster, Redis } from 'ioredis'

/**
 * Server settings the layout's memory figures depend on: the DID table's hash buckets stay listpacks
 * (compact) up to `hash-max-listpack-entries`, and each hour's author index shards stay intsets (8 bytes
 * per member instead of a ~60-byte hashtable entry) up to `set-max-intset-entries`. The long-term hashes
 * stay listpacks while their day blobs are at most `hash-max-listpack-value` bytes: a hashtable costs
 * ~120 bytes more per hash, and at 64 more than half of them (any blob of 7 partners or more) became one.
 * 1024 keeps all but the heaviest ~6 % of blobs in listpacks; rewriting a 90-day listpack of such blobs
 * (the roll-up's HSET) moves under 100 kB. Only ever raised.
 */
export const REQUIRED_REDIS_SETTINGS: Readonly<Record<string, number>> = {
  'hash-max-listpack-entries': 512,
  'hash-max-listpack-value': 1024,
  'set-max-intset-entries': 8192,
}

export interface SettingsReport {
  /** Settings raised by this call. */
  changed: Record<string, { from: number; to: number }>
  /** Settings below the requirement that could not be raised (e.g. CONFIG disabled on a managed Redis). */
  unmet: Record<string, { current: number | null; wanted: number; error?: string }>
}

/**
 * Raises the settings above where they are lower, on every node of a cluster (replicas too: each server
 * encodes the keys it holds by its own settings, and a promoted replica keeps them). Never throws for CONFIG
 * errors: reports them as unmet.
 */
export async function ensureRedisSettings(redis: Redis | Cluster): Promise<SettingsReport> {
  const report: SettingsReport = { changed: {}, unmet: {} }
  // through the cluster client CONFIG would reach one node only (2026-12-07: the others kept 512 intset
  // entries, and `pnpm bench:cluster` measured more bytes per interaction on the cluster)
  try {
    await onEveryNode(redis, (node) => raise(node, report))
  } catch (err) {
    // a node out of reach: what it holds is not known, so every setting is reported unmet
    for (const [name, wanted] of Object.entries(REQUIRED_REDIS_SETTINGS))
      report.unmet[name] ??= { current: null, wanted, error: (err as Error).message }
  }
  return report
}

async function raise(redis: Redis, report: SettingsReport): Promise<void> {
  for (const [name, wanted] of Object.entries(REQUIRED_REDIS_SETTINGS)) {
    let current: number | null = null
    try {
      const res = (await redis.config('GET', name)) as string[]
      current = res[1] === undefined ? null : Number(res[1])
      if (current !== null && current >= wanted) continue
      await redis.config('SET', name, String(wanted))
      report.changed[name] = { from: current ?? 0, to: wanted }
    } catch (err) {
      report.unmet[name] = { current, wanted, error: (err as Error).message }
    }
  }
}
