import { isIP } from 'node:net'
import {
  ConfigError,
  type Env,
  envBool,
  envChecked,
  envInt,
  envOptional,
  envString,
  envUrl,
  type LogLevel,
  logLevel,
  pickEnv,
  REDIS_ENV,
  type RedisConfig,
  redisConfig,
} from '@circles/config'
import { isValidDid } from '@circles/core'

const NAMES = [
  ...REDIS_ENV,
  'LOG_LEVEL',
  'HOST',
  'PORT',
  'ADMIN_TOKEN',
  'CORS_ORIGINS',
  'RATE_LIMIT_MAX',
  'RATE_LIMIT_WINDOW_MS',
  'TRUST_PROXY',
  'API_LISTS_FILE',
  'API_LISTS_SYNC_MS',
  'API_REDIS_TIMEOUT_MS',
  'CIRCLE_CACHE_TTL_SECONDS',
  'PARTIAL_CACHE_TTL_SECONDS',
  'CIRCLE_LOCK_MS',
  'LOCAL_CACHE_MS',
  'HISTORY_MEMO_DAYS',
  'PROFILE_TTL_SECONDS',
  'HANDLE_TTL_SECONDS',
  'APPVIEW_URL',
  'APPVIEW_TIMEOUT_MS',
  'AVATAR_HOSTS',
  'AVATAR_INSECURE_HOSTS',
  'AVATAR_MAX_BYTES',
  'AVATAR_TIMEOUT_MS',
  'READY_MAX_LAG_ENTRIES',
  'SERVICE_DID',
  'BACKFILL_ON_REQUEST',
  'BACKFILL_MAX_WAITING',
] as const

/** Raw, unvalidated settings as they come from the environment (only the names this service reads). */
export type FartEnv = Partial<Record<(typeof NAMES)[number], string>>

// The API's whole configuration, read once at start. ADMIN_TOKEN has no default on purpose: the original
// system shipped an API key defaulting to "secret"; here, without a token the admin routes do not exist.

export interface FartConfig extends RedisConfig {
  /** @default 127.0.0.1 */
  host: string
  /** @default 8080 */
  port: number
  /** Bearer token for /admin routes; unset disables them (404). At least 16 characters. */
  adminToken?: string
  /** Allowed CORS origins; `*` allows any. @default * */
  corsOrigins: string[] | '*'
  /** Requests per window per client IP; 0 disables rate limiting. @default 300 */
  rateLimitMax: number
  /** @default 60000 */
  rateLimitWindowMs: number
  /** File mirroring the opt-out and tracked lists, to refill a Redis that lost them (durable-lists.ts). */
  listsFile: string | null
  /** How often the lists are mirrored to the file, or refilled from it (ms). @default 5000 */
  listsSyncMs: number
  /**
   * A Redis command unanswered this long fails (the request answers 503): a frozen Redis (stopped by a
   * signal, swapping, a network partition that drops packets) would otherwise hold every request. @default 5000
   */
  redisTimeoutMs: number
  /** Circle cache TTL. @default 300 */
  circleCacheTtlSeconds: number
  /** TTL of a circle served without complete profiles (AppView down), so they fill in soon. @default 30 */
  partialCacheTtlSeconds: number
  /** How long a single-flight lock lives at most (a crashed computation frees it after this). @default 10000 */
  circleLockMs: number
  /** In-process copy of served circles, served at most this long after Redis confirmed it (bounds how late a purge shows). 0 disables. @default 1000 */
  localCacheMs: number
  /**
   * Complete days of account histories remembered in this process (history-memo.ts), ~1.5 KB each; 0
   * disables. @default 10000
   */
  historyMemoDays: number
  /** @default 86400 */
  profileTtlSeconds: number
  /** Handle -> DID cache TTL in Redis (a handle that moves to another account is followed after this). @default 600 */
  handleTtlSeconds: number
  /** @default https://public.api.bsky.app */
  appviewUrl: string
  /** @default 3000 */
  appviewTimeoutMs: number
  /** Avatar fetch timeout for drawn circles. @default 2000 */
  avatarTimeoutMs: number
  /** Hosts (host[:port]) avatars may be fetched from when drawing, over https only. @default cdn.bsky.app */
  avatarHosts: string[]
  /**
   * Of AVATAR_HOSTS, those also fetched over plain http and at private or loopback addresses: a local
   * stand-in CDN (tests, a demo). @default none
   */
  avatarInsecureHosts: string[]
  /** An avatar larger than this is not read further (drawn as initials). @default 262144 */
  avatarMaxBytes: number
  /** /readyz fails when the indexer's consumer group is more stream entries behind than this. @default 50000 */
  readyMaxLagEntries: number
  /**
   * Whose X-Forwarded-For to believe (Fastify's `trustProxy`): `false` nobody's; `1` (TRUST_PROXY=true) the
   * one proxy in front, whose appended entry is the client; a list of proxy addresses/CIDRs: the client is
   * the last entry not from one of them. @default false
   */
  trustProxy: false | 1 | string[]
  /** The service's own Bluesky account: blocking it opts out (shown on the page and in /docs). */
  serviceDid: string | null
  /** The first circle request of an account never backfilled enqueues its backfill. @default true */
  backfillOnRequest: boolean
  /**
   * Requests enqueue no backfill while this many wait (so anonymous requests cannot queue the whole
   * network); admin and tracked backfills are not limited. @default 1000
   */
  backfillMaxWaiting: number
  logLevel: LogLevel
}

/** Comma-separated host[:port] names, as a URL's `host` writes them (lower case, no default port). */
function hostList(text: string): string[] {
  return text
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean)
    .map((h) => {
      let url: URL
      try {
        url = new URL(`https://${h}`)
      } catch {
        throw new ConfigError(
          `AVATAR_HOSTS / AVATAR_INSECURE_HOSTS: ${JSON.stringify(h)} is not a host`,
        )
      }
      if (url.pathname !== '/' || url.username || url.search || url.hash) {
        throw new ConfigError(
          `AVATAR_HOSTS / AVATAR_INSECURE_HOSTS: ${JSON.stringify(h)} is not a host`,
        )
      }
      return url.host
    })
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal'])

/** An address, a CIDR, or one of proxy-addr's names for the private ranges. */
function isProxyEntry(entry: string): boolean {
  if (PROXY_NAMES.has(entry)) return true
  const [addr = '', bits, extra] = entry.split('/')
  const family = isIP(addr)
  if (family === 0 || extra !== undefined) return false
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128))
}

/**
 * TRUST_PROXY. `true` believes only the last X-Forwarded-For entry, the one the proxy in front appended:
 * Fastify's `trustProxy: true` would take the first, which the client writes itself, and so let anyone
 * claim a fresh address (and a fresh rate limit) per request.
 */
export function parseTrustProxy(text: string): false | 1 | string[] {
  const v = text.toLowerCase()
  if (['0', 'false', 'no', 'off'].includes(v)) return false
  if (['1', 'true', 'yes', 'on'].includes(v)) return 1
  const list = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
  for (const entry of list) {
    if (!isProxyEntry(entry)) {
      throw new ConfigError(
        `TRUST_PROXY must be true, false or comma-separated proxy addresses or CIDRs like 10.0.0.0/8,127.0.0.1, got ${JSON.stringify(entry)}`,
      )
    }
  }
  return list
}

export function readEnv(env: Env = process.env): FartEnv {
  return pickEnv(env, NAMES)
}

/** Applies defaults and validates; a bad value throws a ConfigError naming the variable. */
export function toConfig(env: FartEnv): FartConfig {
  const adminToken = envOptional(env, 'ADMIN_TOKEN')
  if (adminToken !== undefined && adminToken.length < 16) {
    throw new ConfigError(
      'ADMIN_TOKEN must be at least 16 characters (or unset to disable admin routes)',
    )
  }
  const cors = envString(env, 'CORS_ORIGINS', '*')
  const corsOrigins =
    cors === '*'
      ? ('*' as const)
      : cors
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean)
  if (corsOrigins !== '*') {
    for (const o of corsOrigins) {
      if (!/^https?:\/\/[^/\s]+$/.test(o)) {
        throw new ConfigError(
          `CORS_ORIGINS must be * or comma-separated origins like https://a.example, got ${JSON.stringify(o)}`,
        )
      }
    }
  }
  const avatarHosts = hostList(envString(env, 'AVATAR_HOSTS', 'cdn.bsky.app'))
  const avatarInsecureHosts = hostList(envOptional(env, 'AVATAR_INSECURE_HOSTS') ?? '')
  for (const h of avatarInsecureHosts) {
    if (!avatarHosts.includes(h)) {
      throw new ConfigError(
        `AVATAR_INSECURE_HOSTS may only relax hosts in AVATAR_HOSTS; ${JSON.stringify(h)} is not there`,
      )
    }
  }
  return {
    ...redisConfig(env),
    host: envString(env, 'HOST', '127.0.0.1'),
    port: envInt(env, 'PORT', 8080, { min: 0, max: 65535 }),
    adminToken,
    corsOrigins,
    rateLimitMax: envInt(env, 'RATE_LIMIT_MAX', 300, { min: 0 }),
    rateLimitWindowMs: envInt(env, 'RATE_LIMIT_WINDOW_MS', 60_000, { min: 1000 }),
    listsFile: envOptional(env, 'API_LISTS_FILE') ?? null,
    listsSyncMs: envInt(env, 'API_LISTS_SYNC_MS', 5000, { min: 100, max: 3_600_000 }),
    redisTimeoutMs: envInt(env, 'API_REDIS_TIMEOUT_MS', 5000, { min: 50, max: 600_000 }),
    circleCacheTtlSeconds: envInt(env, 'CIRCLE_CACHE_TTL_SECONDS', 300, { min: 1, max: 86_400 }),
    partialCacheTtlSeconds: envInt(env, 'PARTIAL_CACHE_TTL_SECONDS', 30, { min: 1, max: 3600 }),
    circleLockMs: envInt(env, 'CIRCLE_LOCK_MS', 10_000, { min: 100, max: 120_000 }),
    localCacheMs: envInt(env, 'LOCAL_CACHE_MS', 1000, { min: 0, max: 60_000 }),
    historyMemoDays: envInt(env, 'HISTORY_MEMO_DAYS', 10_000, { min: 0, max: 1_000_000 }),
    profileTtlSeconds: envInt(env, 'PROFILE_TTL_SECONDS', 86_400, { min: 1 }),
    handleTtlSeconds: envInt(env, 'HANDLE_TTL_SECONDS', 600, { min: 1 }),
    appviewUrl: envUrl(env, 'APPVIEW_URL', 'https://public.api.bsky.app', ['http:', 'https:']),
    appviewTimeoutMs: envInt(env, 'APPVIEW_TIMEOUT_MS', 3000, { min: 100, max: 60_000 }),
    avatarHosts,
    avatarInsecureHosts,
    avatarMaxBytes: envInt(env, 'AVATAR_MAX_BYTES', 262_144, { min: 1024, max: 16 * 1024 * 1024 }),
    avatarTimeoutMs: envInt(env, 'AVATAR_TIMEOUT_MS', 2000, { min: 100, max: 30_000 }),
    readyMaxLagEntries: envInt(env, 'READY_MAX_LAG_ENTRIES', 50_000, { min: 0 }),
    trustProxy: parseTrustProxy(envString(env, 'TRUST_PROXY', 'false')),
    serviceDid: envChecked(env, 'SERVICE_DID', isValidDid, 'a DID (did:plc:… or did:web:…)'),
    backfillOnRequest: envBool(env, 'BACKFILL_ON_REQUEST', true),
    backfillMaxWaiting: envInt(env, 'BACKFILL_MAX_WAITING', 1000, { min: 0, max: 10_000_000 }),
    logLevel: logLevel(env),
  }
}
