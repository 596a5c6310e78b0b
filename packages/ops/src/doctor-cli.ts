import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { envBool, envChecked, envInt, envUrl, redisConfig } from '@circles/config'
import { isValidDid } from '@circles/core'
import { createSchema } from '@circles/redis-schema'
import { connectRedis } from '@circles/redis-wire'
import { DEFAULT_THRESHOLDS, type DoctorThresholds, formatChecks, runDoctor } from './doctor.js'
import { metricsTargets } from './doctor-metrics.js'
import { mergeEnv, readEnvFile } from './env-file.js'
import { repoRoot } from './paths.js'

// `pnpm doctor [--skip-relay]`: reads the same .env as the services, prints one line per check, exits 1 on
// any failure. Output is for people, so it goes to stdout in plain words (this is a CLI, not a service).

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const env = mergeEnv(readEnvFile(resolve(repoRoot(), '.env')))
  const target = redisConfig(env)
  const { redisUrl, redisPrefix } = target
  const skipRelay = argv.includes('--skip-relay') || !envBool(env, 'DOCTOR_CHECK_RELAY', true)
  const relayUrl = envUrl(env, 'RELAY_URL', 'wss://bsky.network', [
    'wss:',
    'ws:',
    'https:',
    'http:',
  ])
  const botDid = envChecked(env, 'BOT_DID', isValidDid, 'a DID') ?? undefined
  const relayTimeoutMs = envInt(env, 'DOCTOR_RELAY_TIMEOUT_MS', 5000, { min: 100, max: 60_000 })
  // The services' own settings set the bars: the firehose pauses at FIREHOSE_MAX_LAG unread entries, and
  // the scheduler's heartbeat key lives three heartbeats.
  const thresholds: DoctorThresholds = {
    ...DEFAULT_THRESHOLDS,
    lagWarn: envInt(env, 'FIREHOSE_MAX_LAG', 2000, { min: 1 }),
    heartbeatMaxAgeMs: 3 * envInt(env, 'SCHEDULER_HEARTBEAT_MS', 10_000, { min: 100 }),
    firehoseMaxSilenceMs: 3 * envInt(env, 'FIREHOSE_METRICS_MS', 10_000, { min: 100 }),
    indexerMaxSilenceMs: 3 * envInt(env, 'INDEXER_METRICS_MS', 10_000, { min: 100 }),
    rollupRetentionDays: envInt(env, 'ROLLUP_RETENTION_DAYS', 90, { min: 1, max: 3650 }),
  }

  const redis = connectRedis(target, {
    lazyConnect: true,
    connectTimeout: 3000,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  })
  redis.on('error', () => {
    // reported below through connect()'s rejection
  })
  console.log(`bsky-circles doctor: Redis ${redactUrl(redisUrl)}, prefix "${redisPrefix}"`)
  try {
    await redis.connect()
  } catch (err) {
    console.log(
      ` FAIL  redis  cannot connect to ${redactUrl(redisUrl)}: ${(err as Error).message}. Is Redis running? (\`pnpm start\` launches one when nothing answers on 6379; or \`docker compose up -d redis\`; or set REDIS_URL.)`,
    )
    redis.disconnect()
    return 1
  }
  try {
    const { ok, checks } = await runDoctor({
      redis,
      schema: createSchema(redisPrefix),
      relayUrl: skipRelay ? undefined : relayUrl,
      relayTimeoutMs,
      thresholds,
      metricsTargets: metricsTargets(env),
      botDid,
      streamShards: target.firehoseShards,
    })
    console.log(formatChecks(checks))
    console.log(ok ? 'All checks passed.' : 'Some checks failed: see FAIL above.')
    return ok ? 0 : 1
  } finally {
    redis.disconnect()
  }
}

/** Hides a password in a redis:// URL before printing it. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return url
  }
}

// Run directly in the Docker image, which has no scripts/ and no pnpm:
// `node packages/ops/dist/src/doctor-cli.js [--skip-relay]` (scripts/doctor.mjs imports main instead).
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main()
}
