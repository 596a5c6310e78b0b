import { type IdentityEvent, isValidHandle } from '@circles/core'
import type { RedisSchema } from '@circles/redis-schema'

/**
 * The caches an identity event makes stale, which the index writer deletes with the writes of the events
 * around it (its `staleKeysOf`): the API's cached profile of the account (handle, name, avatar), and a
 * cached resolution of its new handle to another account.
 */
export function identityStaleKeys(schema: RedisSchema): (event: IdentityEvent) => string[] {
  return (e) => {
    const keys = [schema.profile(e.did)]
    // The handle is now this DID's: a cached resolution of it to another account is stale. (Its old
    // handle is dropped the same way when someone else's identity event claims it.)
    if (e.handle !== null && isValidHandle(e.handle)) keys.push(schema.handleDid(e.handle))
    return keys
  }
}
