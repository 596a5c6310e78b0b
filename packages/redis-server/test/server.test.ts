import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, describe, expect, it } from 'vitest'
import {
  freePort,
  pingReply,
  RedisStartError,
  redisAnswers,
  startRedisProcess,
} from '../src/index.js'

// Real redis-server processes on free ports (never 6379: that Redis is shared).

describe('startRedisProcess', () => {
  const dirs: string[] = []
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true })
  })

  it('starts with the given settings, answers PONG, stops once however often asked', async () => {
    const server = await startRedisProcess({ args: ['--save', '', '--maxmemory', '12mb'] })
    expect(server.url).toBe(`redis://127.0.0.1:${server.port}`)
    expect(await pingReply('127.0.0.1', server.port)).toBe('+PONG')
    const redis = new Redis(server.url)
    expect(await redis.config('GET', 'maxmemory')).toEqual(['maxmemory', String(12 * 2 ** 20)])
    redis.disconnect()
    await Promise.all([server.stop(), server.stop()])
    await server.stop()
    expect(server.hasExited()).toBe(true)
    expect(await redisAnswers('127.0.0.1', server.port, 300)).toBe(false)
  })

  it('crash() kills it at once (SIGKILL); a new one on the same port and folder finds the AOF', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-server-test-'))
    dirs.push(dir)
    const args = ['--dir', dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
    const first = await startRedisProcess({ args })
    const redis = new Redis(first.url, { maxRetriesPerRequest: 0, retryStrategy: () => null })
    redis.on('error', () => {})
    await redis.set('kept', 'yes')
    await first.crash()
    expect(first.child.signalCode).toBe('SIGKILL')
    redis.disconnect()
    const again = await startRedisProcess({ port: first.port, args })
    const redis2 = new Redis(again.url)
    expect(await redis2.get('kept')).toBe('yes')
    redis2.disconnect()
    await again.stop()
  })

  it('a server that cannot start fails with what it said, and leaves nothing running', async () => {
    const port = await freePort()
    const err = await startRedisProcess({ port, args: ['--no-such-setting', 'x'] }).catch((e) => e)
    expect(err).toBeInstanceOf(RedisStartError)
    expect(String(err.message)).toMatch(/no-such-setting/)
    expect(await redisAnswers('127.0.0.1', port, 300)).toBe(false)
  })

  it('with a log file, the failure quotes its last lines', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'redis-server-test-'))
    dirs.push(dir)
    const logFile = join(dir, 'redis.log')
    const err = await startRedisProcess({ args: ['--no-such-setting', 'x'], logFile }).catch(
      (e) => e,
    )
    expect(err).toBeInstanceOf(RedisStartError)
    expect(String(err.message)).toContain(`Last lines of ${logFile}`)
    expect(String(err.message)).toMatch(/no-such-setting/)
  })

  it('a missing binary fails as a start error, not a hang', async () => {
    const err = await startRedisProcess({ binary: '/nonexistent/redis-server' }).catch((e) => e)
    expect(err).toBeInstanceOf(RedisStartError)
  })
})
