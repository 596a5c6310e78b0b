import { randomBytes } from 'node:crypto'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import { Redis, type RedisOptions } from 'ioredis'

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

export interface TestRedis {
  redis: Redis
  url: string
  /** A random prefix private to this test, e.g. `test:3f9a1c2b:`. */
  prefix: string
  schema: RedisSchema
  /** Deletes every key under the prefix and closes the connection. */
  cleanup(): Promise<void>
}

/**
 * A connection to the real Redis with a private key prefix; call `cleanup()` in afterEach/afterAll.
 * `options` configure the client as the code under test configures its own (e.g. no offline queue).
 */
export async function createTestRedis(
  label = 'test',
  options: RedisOptions = {},
): Promise<TestRedis> {
  const prefix = `${label}:${randomBytes(4).toString('hex')}:`
  const redis = new Redis(TEST_REDIS_URL, {
    lazyConnect: true,
    maxRetriesPerRequest: 2,
    ...options,
  })
  await redis.connect()
  return {
    redis,
    url: TEST_REDIS_URL,
    prefix,
    schema: createSchema(prefix),
    async cleanup() {
      await deleteByPrefix(redis, prefix)
      redis.disconnect()
    },
  }
}

export async function deleteByPrefix(redis: Redis, prefix: string): Promise<number> {
  let cursor = '0'
  let n = 0
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length > 0) n += await redis.unlink(...keys)
  } while (cursor !== '0')
  return n
}

/**
 * Redis losing everything under `prefix` at once, as a restart without persistence does: the keys are
 * found first and deleted in one command. (deleteByPrefix deletes while it scans: under load a service
 * notices the loss between two scan steps, writes again, and the next step deletes that too, a second loss.)
 */
export async function loseByPrefix(redis: Redis, prefix: string): Promise<number> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    keys.push(...found)
  } while (cursor !== '0')
  return keys.length > 0 ? redis.unlink(...new Set(keys)) : 0
}
