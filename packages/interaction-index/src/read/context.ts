import { isValidDid } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import type { DidCache } from '../did-cache.js'
import { WINDOW_HOURS } from '../layout.js'

/** What the parts of one reader share: its client, its clock and one DID cache for all its queries. */
export interface ReaderContext {
  redis: Redis
  schema: RedisSchema
  now: () => number
  cache: DidCache
}

/** A query the index cannot answer as asked (a bad DID, window, limit or cursor): the caller's fault. */
export class IndexQueryError extends Error {
  override name = 'IndexQueryError'
}

export function checkWindow(windowHours: number): void {
  if (!Number.isInteger(windowHours) || windowHours < 1 || windowHours > WINDOW_HOURS) {
    throw new IndexQueryError(`windowHours must be an integer from 1 to ${WINDOW_HOURS}`)
  }
}

export function checkDid(did: string): void {
  if (!isValidDid(did)) throw new IndexQueryError('invalid DID')
}
