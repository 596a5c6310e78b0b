import { existsSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import { RedisNotFoundError, startPrivateRedis } from './private-redis.js'
import { chooseRedis, RedisUnreachableError } from './redis-choice.js'
import { freePort, tempDir } from './test-helpers.js'

// How `pnpm start` picks its Redis, with the probed port overridden (REDIS_PORT) so that the shared Redis
// on 6379 is never the one found, stopped or started.

describe('chooseRedis', () => {
  const dirs: string[] = []
  const dir = () => {
    const d = tempDir('choice')
    dirs.push(d)
    return d
  }
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('nothing on the port: starts a private Redis with AOF and noeviction under the data folder', async () => {
    const d = dir()
    const port = await freePort()
    let told = 0
    const choice = await chooseRedis(
      { REDIS_PORT: String(port) },
      {
        dataDir: join(d, 'data'),
        logFile: join(d, 'logs/redis.log'),
        onStarting: (p) => (told = p),
      },
    )
    expect(choice.kind).toBe('private')
    if (choice.kind !== 'private') return
    expect(choice.url).toBe(`redis://127.0.0.1:${port}`)
    expect(told).toBe(port)
    const r = new Redis(choice.url)
    expect(await r.config('GET', 'dir')).toEqual(['dir', join(d, 'data')])
    expect(await r.config('GET', 'appendonly')).toEqual(['appendonly', 'yes'])
    expect(await r.config('GET', 'maxmemory-policy')).toEqual(['maxmemory-policy', 'noeviction'])
    r.disconnect()
    expect(existsSync(join(d, 'logs/redis.log'))).toBe(true)
    await choice.redis.stop()
  })

  it('a Redis on the port: uses it and starts nothing', async () => {
    const d = dir()
    const server = await startPrivateRedis({
      port: await freePort(),
      dataDir: join(d, 'data'),
      logFile: join(d, 'redis.log'),
    })
    try {
      const choice = await chooseRedis(
        { REDIS_PORT: String(server.port) },
        { dataDir: join(d, 'unused'), logFile: join(d, 'unused.log') },
      )
      expect(choice).toEqual({ kind: 'running', url: server.url })
      expect(existsSync(join(d, 'unused'))).toBe(false)
      // REDIS_URL wins over the port.
      const given = await chooseRedis(
        { REDIS_URL: server.url, REDIS_PORT: '1' },
        { dataDir: join(d, 'unused'), logFile: join(d, 'unused.log') },
      )
      expect(given).toEqual({ kind: 'given', url: server.url })
    } finally {
      await server.stop()
    }
  })

  it('REDIS_URL that does not answer: says so, starts nothing', async () => {
    const d = dir()
    await expect(
      chooseRedis(
        { REDIS_URL: `redis://127.0.0.1:${await freePort()}` },
        { dataDir: join(d, 'data'), logFile: join(d, 'r.log') },
      ),
    ).rejects.toThrow(RedisUnreachableError)
    expect(existsSync(join(d, 'data'))).toBe(false)
  })

  it('nothing on the port and no redis-server binary: stops with the ways to get Redis', async () => {
    const d = dir()
    const oldPath = process.env.PATH
    process.env.PATH = '/nonexistent'
    try {
      const err = await chooseRedis(
        { REDIS_PORT: String(await freePort()) },
        { dataDir: join(d, 'data'), logFile: join(d, 'r.log') },
      ).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RedisNotFoundError)
      expect((err as Error).message).toMatch(/apt-get install redis-server/)
      expect((err as Error).message).toMatch(/docker compose up -d redis/)
      expect((err as Error).message).toMatch(/REDIS_URL/)
    } finally {
      process.env.PATH = oldPath
    }
  })

  it('REDIS_CLUSTER_NODES: uses the cluster when one of its nodes answers, and never starts a Redis', async () => {
    const d = dir()
    const [dead, live] = [await freePort(), await freePort()]
    const node = await startPrivateRedis({
      port: live,
      dataDir: join(d, 'node'),
      logFile: join(d, 'node.log'),
    })
    try {
      const seeds = `127.0.0.1:${dead},127.0.0.1:${live}`
      const opts = { dataDir: join(d, 'data'), logFile: join(d, 'logs/redis.log') }
      expect(await chooseRedis({ REDIS_CLUSTER_NODES: seeds }, opts)).toEqual({
        kind: 'cluster',
        seeds,
      })
      await expect(chooseRedis({ REDIS_CLUSTER_NODES: `127.0.0.1:${dead}` }, opts)).rejects.toThrow(
        RedisUnreachableError,
      )
      expect(existsSync(join(d, 'data'))).toBe(false)
    } finally {
      await node.stop()
    }
  })
})
