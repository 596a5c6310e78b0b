import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { findOnPath, freePort, redisAnswers } from '@circles/redis-server'
import { repoRoot } from './paths.js'
import { howToGetRedis, type PrivateRedis, startPrivateRedis } from './private-redis.js'

// `pnpm test` after the install and build: vitest against TEST_REDIS_URL if set, else the Redis on
// 127.0.0.1:6379, else a throw-away redis-server of its own (as `pnpm start` starts one when none runs).
// Tests keep to their own random key prefixes, so a `pnpm start` beside them on the same Redis is safe.

function say(line: string) {
  process.stdout.write(`test  ${line}\n`)
}

export async function main(args: string[]): Promise<number> {
  const env = { ...process.env }
  let redis: PrivateRedis | undefined
  let tmp: string | undefined
  try {
    if (!env.TEST_REDIS_URL && !(await redisAnswers('127.0.0.1', 6379))) {
      if (!findOnPath('redis-server')) {
        process.stdout.write(
          `${howToGetRedis(6379)}\n(the tests also start redis-servers of their own)\n`,
        )
        return 1
      }
      tmp = mkdtempSync(join(tmpdir(), 'circles-test-redis-'))
      redis = await startPrivateRedis({
        port: await freePort(),
        dataDir: join(tmp, 'data'),
        logFile: join(tmp, 'redis.log'),
      })
      env.TEST_REDIS_URL = redis.url
      say(`no Redis on 127.0.0.1:6379: the tests use a temporary one on ${redis.url}`)
    }
    const vitest = join(repoRoot(), 'node_modules/vitest/vitest.mjs')
    const child = spawn(process.execPath, [vitest, 'run', ...args], { stdio: 'inherit', env })
    // ctrl-C reaches vitest too (same process group): wait for it to finish its own cleanup.
    const ignore = () => {}
    process.on('SIGINT', ignore)
    process.on('SIGTERM', ignore)
    const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null]
    process.off('SIGINT', ignore)
    process.off('SIGTERM', ignore)
    return code ?? (signal ? 1 : 0)
  } finally {
    await redis?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  }
}
