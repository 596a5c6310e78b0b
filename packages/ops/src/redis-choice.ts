import { clusterSeeds, envInt, envOptional } from '@circles/config'
import { redisAnswers } from '@circles/redis-server'
import { type PrivateRedis, startPrivateRedis } from './private-redis.js'

// Which Redis `pnpm start` uses: the Redis Cluster of REDIS_CLUSTER_NODES when set (a node must answer);
// REDIS_URL when set (it must answer); else whatever answers on
// 127.0.0.1:REDIS_PORT; else a private redis-server it starts there, with its data under dataDir.

export class RedisUnreachableError extends Error {
  override name = 'RedisUnreachableError'
}

export type RedisChoice =
  | { kind: 'cluster'; seeds: string }
  | { kind: 'given'; url: string }
  | { kind: 'running'; url: string }
  | { kind: 'private'; url: string; redis: PrivateRedis }

export interface ChooseRedisOptions {
  dataDir: string
  logFile: string
  /** Told before a private redis-server starts (it can take a moment on a big AOF). */
  onStarting?: (port: number) => void
  onUnexpectedExit?: (code: number | null, signal: NodeJS.Signals | null) => void
}

/** @throws RedisUnreachableError, RedisNotFoundError (no binary: its message says how to get Redis), RedisStartError */
export async function chooseRedis(
  env: Record<string, string | undefined>,
  opts: ChooseRedisOptions,
): Promise<RedisChoice> {
  const seeds = clusterSeeds(envOptional(env, 'REDIS_CLUSTER_NODES'))
  if (seeds) {
    // One node that answers is enough: the services' cluster clients learn the others from it.
    for (const s of seeds)
      if (await redisAnswers(s.host, s.port, 3000))
        return { kind: 'cluster', seeds: envOptional(env, 'REDIS_CLUSTER_NODES') as string }
    throw new RedisUnreachableError(
      'REDIS_CLUSTER_NODES is set, but none of its nodes answers. Start the cluster, or unset REDIS_CLUSTER_NODES to use one Redis.',
    )
  }
  const given = envOptional(env, 'REDIS_URL')
  if (given) {
    const u = new URL(given)
    if (!(await redisAnswers(u.hostname, Number(u.port || 6379), 3000))) {
      throw new RedisUnreachableError(
        `REDIS_URL is set to ${u.host}, but no Redis answers there. Start it, or unset REDIS_URL to let pnpm start find or start one.`,
      )
    }
    return { kind: 'given', url: given }
  }
  const port = envInt(env, 'REDIS_PORT', 6379, { min: 1, max: 65535 })
  const url = `redis://127.0.0.1:${port}`
  if (await redisAnswers('127.0.0.1', port)) return { kind: 'running', url }
  const redis = await startPrivateRedis({
    port,
    dataDir: opts.dataDir,
    logFile: opts.logFile,
    onUnexpectedExit: opts.onUnexpectedExit,
    onStarting: opts.onStarting,
  })
  return { kind: 'private', url, redis }
}
