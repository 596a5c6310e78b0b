import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { findOnPath, redisAnswers } from '@circles/redis-server'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { howToGetRedis, RedisNotFoundError, startPrivateRedis } from './private-redis.js'
import { freePort, tempDir } from './test-helpers.js'

// The "nothing answers on the port" path of `pnpm start`, on a free port and a temp data folder (never 6379:
// that Redis is shared).

describe('private redis-server', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('starts with AOF and noeviction under the data folder, keeps data across a restart', async () => {
    const dir = tempDir('private')
    dirs.push(dir)
    const port = await freePort()
    expect(await redisAnswers('127.0.0.1', port, 300)).toBe(false)
    const opts = { port, dataDir: join(dir, 'data'), logFile: join(dir, 'redis.log') }
    const server = await startPrivateRedis(opts)
    const redis = new Redis(server.url)
    expect(await redis.config('GET', 'appendonly')).toEqual(['appendonly', 'yes'])
    expect(await redis.config('GET', 'maxmemory-policy')).toEqual([
      'maxmemory-policy',
      'noeviction',
    ])
    await redis.set('kept', 'yes')
    redis.disconnect()
    await server.stop()
    await server.stop() // idempotent
    expect(await redisAnswers('127.0.0.1', port, 300)).toBe(false)
    // Redis 7 keeps the AOF in a folder of its own under --dir.
    expect(existsSync(join(dir, 'data'))).toBe(true)
    expect(readdirSync(join(dir, 'data')).length).toBeGreaterThan(0)

    const again = await startPrivateRedis(opts)
    const redis2 = new Redis(again.url)
    expect(await redis2.get('kept')).toBe('yes')
    redis2.disconnect()
    await again.stop()
  })

  it('without a redis-server binary, says how to get Redis', async () => {
    expect(findOnPath('redis-server', '/nonexistent')).toBeUndefined()
    const dir = tempDir('nobinary')
    dirs.push(dir)
    const oldPath = process.env.PATH
    process.env.PATH = '/nonexistent'
    try {
      await expect(
        startPrivateRedis({
          port: await freePort(),
          dataDir: join(dir, 'data'),
          logFile: join(dir, 'r.log'),
        }),
      ).rejects.toThrow(RedisNotFoundError)
    } finally {
      process.env.PATH = oldPath
    }
    const help = howToGetRedis(6390)
    expect(help).toMatch(/127\.0\.0\.1:6390/)
    expect(help).toMatch(/apt-get install redis-server/)
    expect(help).toMatch(/docker compose up -d redis/)
    expect(help).toMatch(/REDIS_URL=/)
  })
})
