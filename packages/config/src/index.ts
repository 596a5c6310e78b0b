// Env -> typed config helpers. Each process reads its env in one place (its config.ts): `readEnv(env)`
// picks the names it reads (`pickEnv`), raw and optional, and `toConfig(raw)` applies defaults and validates
// with these, so that a bad value fails at start with a message naming the variable, never later in a hot
// path. `runService` (run.ts) is the step after: every main.ts hands it `create...Service(toConfig(readEnv()))`.

export { type RunLog, type RunnableService, runService } from './run.js'

export class ConfigError extends Error {
  override name = 'ConfigError'
}

export type Env = Record<string, string | undefined>

/**
 * A variable of `E`. Given what `pickEnv` returns, the helpers accept only the names picked: a variable a
 * config reads but its `readEnv` forgot fails to compile, rather than reading as unset in production.
 */
type Name<E> = keyof E & string

/** The variables of `names` that are set in `env`: what a service's `readEnv` returns. */
export function pickEnv<N extends string>(
  env: Env,
  names: readonly N[],
): Partial<Record<N, string>> {
  const out: Partial<Record<N, string>> = {}
  for (const name of names) {
    const v = env[name]
    if (v !== undefined) out[name] = v
  }
  return out
}

function raw(env: Env, name: string): string | undefined {
  const v = env[name]
  return v === undefined || v.trim() === '' ? undefined : v.trim()
}

export function envString<E extends Env>(env: E, name: Name<E>, fallback: string): string {
  return raw(env, name) ?? fallback
}

export function envOptional<E extends Env>(env: E, name: Name<E>): string | undefined {
  return raw(env, name)
}

/** An optional value that must pass `valid` (e.g. a DID): null when unset. */
export function envChecked<E extends Env>(
  env: E,
  name: Name<E>,
  valid: (v: string) => boolean,
  what: string,
): string | null {
  const v = raw(env, name)
  if (v === undefined) return null
  if (!valid(v)) throw new ConfigError(`${name} must be ${what}, got ${JSON.stringify(v)}`)
  return v
}

export function envInt<E extends Env>(
  env: E,
  name: Name<E>,
  fallback: number,
  opts: { min?: number; max?: number } = {},
): number {
  const v = raw(env, name)
  if (v === undefined) return fallback
  const n = Number(v)
  const { min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER } = opts
  if (!/^-?\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(
      `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
    )
  }
  return n
}

export function envBool<E extends Env>(env: E, name: Name<E>, fallback: boolean): boolean {
  const v = raw(env, name)?.toLowerCase()
  if (v === undefined) return fallback
  if (['1', 'true', 'yes', 'on'].includes(v)) return true
  if (['0', 'false', 'no', 'off'].includes(v)) return false
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(v)}`)
}

export function envUrl<E extends Env>(
  env: E,
  name: Name<E>,
  fallback: string,
  protocols: readonly string[],
): string {
  const v = raw(env, name) ?? fallback
  let url: URL
  try {
    url = new URL(v)
  } catch {
    throw new ConfigError(`${name} must be a URL, got ${JSON.stringify(v)}`)
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got ${JSON.stringify(v)}`)
  }
  return v
}

export function envEnum<T extends string, E extends Env = Env>(
  env: E,
  name: Name<E>,
  fallback: T,
  values: readonly T[],
): T {
  const v = raw(env, name)
  if (v === undefined) return fallback
  if (!(values as readonly string[]).includes(v)) {
    throw new ConfigError(`${name} must be one of ${values.join(', ')}, got ${JSON.stringify(v)}`)
  }
  return v as T
}

/** One node of a Redis Cluster to start from (the client learns the others from it). */
export interface ClusterSeed {
  host: string
  port: number
}

/** Settings every service shares: where Redis is and which key prefix to use. */
export interface RedisConfig {
  /** @default redis://127.0.0.1:6379 */
  redisUrl: string
  /** @default circles: */
  redisPrefix: string
  /**
   * Nodes of a Redis Cluster (REDIS_CLUSTER_NODES): set, every connection is a cluster client started from
   * them, and REDIS_URL gives only the credentials and TLS of every node. @default null: one Redis
   */
  redisClusterNodes: readonly ClusterSeed[] | null
  /**
   * Streams the firehose spreads events over, by author (FIREHOSE_SHARDS, 1..64): every process that
   * writes or reads them must be given the same number. @default 1: the one stream `{fh}:events`
   */
  firehoseShards: number
}

/** The variables `redisConfig` reads: a service's `readEnv` picks them with its own. */
export const REDIS_ENV = [
  'REDIS_URL',
  'REDIS_PREFIX',
  'REDIS_CLUSTER_NODES',
  'FIREHOSE_SHARDS',
] as const

export function redisConfig(env: Partial<Record<(typeof REDIS_ENV)[number], string>>): RedisConfig {
  return {
    redisUrl: envUrl(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    redisPrefix: envString(env, 'REDIS_PREFIX', 'circles:'),
    redisClusterNodes: clusterSeeds(envOptional(env, 'REDIS_CLUSTER_NODES')),
    // Here, with the key layout, since every process that touches the stream must agree on it.
    firehoseShards: envInt(env, 'FIREHOSE_SHARDS', 1, { min: 1, max: 64 }),
  }
}

/** `host:port,host:port,...` (an IPv6 host in brackets) -> seeds; null when unset. */
export function clusterSeeds(value: string | undefined): ClusterSeed[] | null {
  if (value === undefined) return null
  return value.split(',').map((item) => {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(item.trim())
    const port = Number(m?.[2])
    if (!m || port < 1 || port > 65535) {
      throw new ConfigError(
        `REDIS_CLUSTER_NODES must be host:port,host:port,..., got ${JSON.stringify(item.trim())}`,
      )
    }
    return { host: (m[1] as string).replace(/^\[|\]$/g, ''), port }
  })
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/**
 * LOG_LEVEL, as each service's config lists it. The root logger reads process.env.LOG_LEVEL itself, when
 * logging is first imported (logging/src/index.ts), and pino refuses a bad level there, before any config.
 */
export function logLevel(env: { LOG_LEVEL?: string }): LogLevel {
  return envEnum(env, 'LOG_LEVEL', 'info', LOG_LEVELS)
}

/** Where a process serves its Prometheus `/metrics` (packages/metrics); `port` null: not served. */
export interface MetricsConfig {
  /** @default the service's own port (firehose 9101, scheduler 9102, indexer 9110 + NODE_APP_INSTANCE); 0: off */
  metricsPort: number | null
  /** @default 127.0.0.1 (loopback: metrics are for the operator's Prometheus, not the world) */
  metricsHost: string
}

/** The variables `metricsConfig` reads: a service's `readEnv` picks them with its own. */
export const METRICS_ENV = ['METRICS_PORT', 'METRICS_HOST'] as const

/**
 * METRICS_PORT / METRICS_HOST with the service's default port. `instance` (PM2's NODE_APP_INSTANCE) is
 * added to the default only: several indexers on one host each get a port of their own, while an explicit
 * METRICS_PORT is taken as given (one per process, as the operator set it).
 */
export function metricsConfig(
  env: Partial<Record<(typeof METRICS_ENV)[number], string>>,
  defaultPort: number,
  instance = 0,
): MetricsConfig {
  const port = envInt(env, 'METRICS_PORT', defaultPort + instance, { min: 0, max: 65_535 })
  return {
    metricsPort: port === 0 ? null : port,
    metricsHost: envString(env, 'METRICS_HOST', '127.0.0.1'),
  }
}
