import type { Direction, KindCounts, Weights } from './params.js'

// What the API needs from the interaction index (packages/interaction-index) and from the scheduler's daily
// aggregates. Declared here structurally so the API depends on the contract, not on the implementation.

export interface Partner {
  did: string
  score: number
  sent: KindCounts
  received: KindCounts
}

export interface TopPartnersQuery {
  did: string
  direction: Direction
  windowHours: number
  weights: Weights
  limit: number
  exclude?: ReadonlySet<string>
}

export interface IndexReader {
  topPartners(q: TopPartnersQuery): Promise<Partner[]>
  partners(q: {
    did: string
    windowHours: number
    limit: number
    cursor?: string
  }): Promise<{ partners: Partner[]; cursor?: string }>
}

/** Circles over days (7/30/90) from the scheduler's daily aggregates; absent until those exist. */
export interface LongWindowReader {
  topPartners(q: Omit<TopPartnersQuery, 'windowHours'> & { days: number }): Promise<Partner[]>
}
