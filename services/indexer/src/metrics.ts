import type { ApplyStats } from '@circles/interaction-index'

/** Counters of one indexer process since it started. */
export interface IndexerCounters extends ApplyStats {
  entries: number
  events: number
  batches: number
  claimed: number
  badLines: number
  badEntries: number
  /** Entries acknowledged without being applied after failing alone with a Redis reply error. */
  failedEntries: number
  retries: number
}

export function emptyCounters(): IndexerCounters {
  return {
    creates: 0,
    deletes: 0,
    added: 0,
    duplicates: 0,
    refused: 0,
    removed: 0,
    expired: 0,
    invalid: 0,
    purges: 0,
    identities: 0,
    entries: 0,
    events: 0,
    batches: 0,
    claimed: 0,
    badLines: 0,
    badEntries: 0,
    failedEntries: 0,
    retries: 0,
  }
}

export function addStats(c: IndexerCounters, s: ApplyStats): void {
  for (const k of Object.keys(s) as (keyof ApplyStats)[]) c[k] += s[k]
}

/** Field-wise `a - b`, for the deltas each process adds to the shared metrics hash. */
export function diffCounters(a: IndexerCounters, b: IndexerCounters): Record<string, number> {
  const out: Record<string, number> = {}
  for (const k of Object.keys(a) as (keyof IndexerCounters)[]) {
    const d = a[k] - b[k]
    if (d !== 0) out[k] = d
  }
  return out
}
