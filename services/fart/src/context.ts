import type { ProfileCache } from '@circles/bsky-client'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { ActorResolver } from './actors.js'
import type { AvatarFetcher } from './avatars.js'
import type { BackfillTracker } from './backfill-tracker.js'
import type { CircleService } from './circles.js'
import type { FartConfig } from './config.js'
import type { LivePartners } from './index-source.js'
import type { Metrics } from './metrics.js'

/** What route modules share; built once in buildApp. */
export interface AppContext {
  config: FartConfig
  /** Security headers a document (HTML, SVG) adds to those every answer has. */
  documentHeaders: Record<string, string>
  redis: Redis
  schema: RedisSchema
  index: LivePartners
  circles: CircleService
  /** Enqueues backfills and shows their state (backfill-tracker.ts). */
  backfill: BackfillTracker
  actors: ActorResolver
  profiles: ProfileCache
  avatars: AvatarFetcher
  metrics: Metrics
  log: Logger
  now: () => number
}
