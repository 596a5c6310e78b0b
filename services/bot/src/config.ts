import { hostname } from 'node:os'
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
  METRICS_ENV,
  type MetricsConfig,
  metricsConfig,
  pickEnv,
  REDIS_ENV,
  type RedisConfig,
  redisConfig,
} from '@circles/config'
import { isValidDid } from '@circles/core'

const NAMES = [
  ...REDIS_ENV,
  'LOG_LEVEL',
  'NODE_APP_INSTANCE',
  'BOT_ENABLED',
  'BOT_DID',
  'BOT_IDENTIFIER',
  'BOT_APP_PASSWORD',
  'BOT_SESSION_KEY',
  'BOT_PLC_URL',
  'BOT_API_URL',
  'BOT_CONSUMER',
  'BOT_BLOCK_MS',
  'BOT_MAX_AGE_MS',
  'BOT_AUTHOR_LIMIT',
  'BOT_AUTHOR_WINDOW_MS',
  'BOT_GLOBAL_LIMIT',
  'BOT_GLOBAL_WINDOW_MS',
  'BOT_METRICS_MS',
  ...METRICS_ENV,
] as const

/** Raw, unvalidated settings as they come from the environment (only the names this service reads). */
export type BotEnv = Partial<Record<(typeof NAMES)[number], string>>

/** The account the bot posts as. Never logged: `password` and `sessionKey` are secrets. */
export interface BotAccount {
  /** The bot account's DID: its PDS is resolved from it, and mentions of it are what the bot answers. */
  did: string
  /** Handle or email to log in with (`com.atproto.server.createSession`). */
  identifier: string
  /** An app password of the account (Settings -> Privacy and security -> App passwords). */
  password: string
  /** 32 bytes: the AES-256-GCM key that seals the session tokens kept in Redis. */
  sessionKey: Buffer
}

export interface BotConfig extends RedisConfig, MetricsConfig {
  logLevel: LogLevel
  /** false: the process starts, logs that it is disabled, and does nothing. @default true */
  enabled: boolean
  /** null only when disabled. */
  account: BotAccount | null
  /** PLC directory the bot's did:plc is resolved through. @default https://plc.directory */
  plcUrl: string
  /** The fart API the circles come from (its privacy rules apply). @default http://127.0.0.1:8080 */
  apiUrl: string
  /** Consumer name in the `bot` group. @default `<hostname>-<NODE_APP_INSTANCE or pid>` */
  consumer: string
  /** XREADGROUP BLOCK (ms). @default 1000 */
  blockMs: number
  /** Mentions older than this (after downtime) are not answered (ms). @default 900000 */
  maxAgeMs: number
  /** Replies to one author per `authorWindowMs`. @default 1 */
  authorLimit: number
  /** @default 3600000 */
  authorWindowMs: number
  /** Replies in all per `globalWindowMs`. @default 30 */
  globalLimit: number
  /** @default 60000 */
  globalWindowMs: number
  /** Counters log line and Redis hash interval (ms). @default 10000 */
  metricsIntervalMs: number
}

export function readEnv(env: Env = process.env): BotEnv {
  return pickEnv(env, NAMES)
}

function defaultConsumer(env: BotEnv): string {
  const instance = env.NODE_APP_INSTANCE
  return `${hostname()}-${instance !== undefined && /^\d+$/.test(instance) ? instance : process.pid}`
}

function required(env: BotEnv, name: keyof BotEnv & string): string {
  const v = envOptional(env, name)
  if (v === undefined) {
    throw new ConfigError(
      `${name} is required while the bot is enabled (set BOT_ENABLED=false to run without it)`,
    )
  }
  return v
}

function account(env: BotEnv): BotAccount {
  const did = envChecked(env, 'BOT_DID', isValidDid, 'a DID (did:plc:… or did:web:…)')
  const key = required(env, 'BOT_SESSION_KEY')
  if (!/^[0-9a-fA-F]{64}$/.test(key)) {
    // The value is a secret: the message says what is wrong with it, never what it is.
    throw new ConfigError('BOT_SESSION_KEY must be 64 hex digits (openssl rand -hex 32)')
  }
  return {
    did: did ?? required(env, 'BOT_DID'),
    identifier: required(env, 'BOT_IDENTIFIER'),
    password: required(env, 'BOT_APP_PASSWORD'),
    sessionKey: Buffer.from(key, 'hex'),
  }
}

/** Applies defaults and validates; a bad value throws a ConfigError naming the variable. */
export function toConfig(env: BotEnv): BotConfig {
  const enabled = envBool(env, 'BOT_ENABLED', true)
  const config: BotConfig = {
    ...redisConfig(env),
    logLevel: logLevel(env),
    enabled,
    account: enabled ? account(env) : null,
    plcUrl: envUrl(env, 'BOT_PLC_URL', 'https://plc.directory', ['https:', 'http:']),
    apiUrl: envUrl(env, 'BOT_API_URL', 'http://127.0.0.1:8080', ['https:', 'http:']),
    consumer: envString(env, 'BOT_CONSUMER', defaultConsumer(env)),
    blockMs: envInt(env, 'BOT_BLOCK_MS', 1000, { min: 1, max: 60_000 }),
    maxAgeMs: envInt(env, 'BOT_MAX_AGE_MS', 900_000, { min: 1000, max: 7 * 86_400_000 }),
    authorLimit: envInt(env, 'BOT_AUTHOR_LIMIT', 1, { min: 1, max: 10_000 }),
    authorWindowMs: envInt(env, 'BOT_AUTHOR_WINDOW_MS', 3_600_000, { min: 1000, max: 86_400_000 }),
    globalLimit: envInt(env, 'BOT_GLOBAL_LIMIT', 30, { min: 1, max: 100_000 }),
    globalWindowMs: envInt(env, 'BOT_GLOBAL_WINDOW_MS', 60_000, { min: 1000, max: 86_400_000 }),
    metricsIntervalMs: envInt(env, 'BOT_METRICS_MS', 10_000, { min: 100, max: 3_600_000 }),
    // Prometheus (docs/metrics.md): the firehose 9101, the scheduler 9102, the bot 9103.
    ...metricsConfig(env, 9103),
  }
  if (!/^[\w.:@-]{1,128}$/.test(config.consumer)) {
    throw new ConfigError(
      `BOT_CONSUMER must be 1-128 of [A-Za-z0-9_.:@-], got ${JSON.stringify(config.consumer)}`,
    )
  }
  return config
}
