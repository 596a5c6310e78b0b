import type { Partner, PartnerReader, TopPartnersQuery } from '@circles/interaction-index'

// What the API needs from the interaction index (packages/interaction-index) and from the scheduler's daily
// aggregates, in the index's own types (one definition of a partner and of a query), narrowed to the
// queries the API asks so that tests can stand in for the index with those alone.

export type { Partner, TopPartnersQuery }

/** The live 48-hour index's partner queries that the circle and list routes ask (its reader has them). */
export type LivePartners = Pick<PartnerReader, 'topPartners' | 'partners'>

/** The partner query the API asks over days (7/30/90): long-term's LongWindowReader, narrowed (wiring.ts). */
export interface LongPartners {
  topPartners(q: Omit<TopPartnersQuery, 'windowHours'> & { days: number }): Promise<Partner[]>
}
