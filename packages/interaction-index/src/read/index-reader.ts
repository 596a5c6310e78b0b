import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { DidCache } from '../did-cache.js'
import type { ReaderContext } from './context.js'
import { createHourView, type HourView } from './hour-view.js'
import { findInteraction, type InteractionInfo } from './interaction.js'
import { type ExtraCounts, topPartnersWith } from './merged.js'
import {
  createPartnerReader,
  type Partner,
  type PartnerReader,
  type TopPartnersQuery,
} from './partners.js'

// The read path of the live 48-hour index: the partner queries the API asks (partners.ts, counted in
// aggregate.ts), one interaction by URI (interaction.ts) and the hours the scheduler rolls up
// (hour-view.ts), the long windows' merged top (merged.ts), over one DID cache.

/** The whole live reader: what the API asks and what the scheduler's roll-up scans. */
export interface IndexReader extends PartnerReader, HourView {
  interaction(uri: string): Promise<InteractionInfo | null>
  /** Top partners over the live window plus counts the caller adds (the long windows: merged.ts). */
  topPartnersWith(q: TopPartnersQuery, extra: ExtraCounts): Promise<Partner[]>
}

export function createIndexReader(
  redis: Redis,
  schema: RedisSchema,
  opts: { now?: () => number } = {},
): IndexReader {
  const ctx: ReaderContext = {
    redis,
    schema,
    now: opts.now ?? Date.now,
    cache: new DidCache(200_000),
  }
  return {
    ...createPartnerReader(ctx),
    ...createHourView(ctx),
    interaction: (uri) => findInteraction(ctx, uri),
    topPartnersWith: (q, extra) => topPartnersWith(ctx, q, extra),
  }
}
