import { existsSync } from 'node:fs'
import { relative, resolve } from 'node:path'
import { envEnum, envOptional, type RedisConfig, redisConfig } from '@circles/config'
import { RedisStartError } from '@circles/redis-server'
import { connectRedis } from '@circles/redis-wire'
import { checkRedisServer, formatChecks } from './doctor.js'
import { loadEcosystemApps } from './ecosystem.js'
import { mergeEnv, readEnvFile } from './env-file.js'
import { repoRoot } from './paths.js'
import { type PrivateRedis, RedisNotFoundError } from './private-redis.js'
import { chooseRedis, RedisUnreachableError } from './redis-choice.js'
import { createSupervisor } from './supervisor.js'

// `pnpm start`: the whole system in the foreground. Redis: REDIS_URL if set; else whatever answers on
// 127.0.0.1:REDIS_PORT (default 6379); else a private redis-server with AOF under ./data, stopped last on
// ctrl-C. Output: one readable line per log record; raw JSON logs in ./logs.

function print(line: string) {
  process.stdout.write(`${line}\n`)
}

function say(line: string) {
  print(`${new Date().toISOString().slice(11, 23)} start ${line}`)
}

export async function main(): Promise<number> {
  const root = repoRoot()
  const env = mergeEnv(readEnvFile(resolve(root, '.env')))
  const logDir = resolve(root, envOptional(env, 'LOG_DIR') ?? 'logs')
  const dataDir = resolve(root, envOptional(env, 'DATA_DIR') ?? 'data')
  const format = envEnum(env, 'LOG_FORMAT', 'pretty', ['pretty', 'json'] as const)
  let exitCode = 0
  // Set once the services run: what to do if the private Redis dies under them.
  let onRedisLost: (() => void) | undefined
  let redisLost = false

  let redis: PrivateRedis | undefined
  try {
    const choice = await chooseRedis(env, {
      dataDir,
      logFile: resolve(logDir, 'redis.log'),
      onStarting(port) {
        say(
          `no Redis on 127.0.0.1:${port}: starting a private redis-server (data and AOF in ${rel(root, dataDir)})`,
        )
      },
      onUnexpectedExit(code, signal) {
        say(
          `the private Redis exited on its own (${signal ?? `code ${code}`}; see ${rel(root, logDir)}/redis.log): stopping everything`,
        )
        exitCode = 1
        redisLost = true
        onRedisLost?.()
      },
    })
    if (choice.kind === 'cluster')
      say(`using the Redis Cluster at ${choice.seeds} (REDIS_CLUSTER_NODES)`)
    const where = choice.kind === 'cluster' ? '' : new URL(choice.url).host
    if (choice.kind === 'given') say(`using Redis at ${where} (REDIS_URL)`)
    if (choice.kind === 'running') say(`using the Redis already answering on ${where}`)
    if (choice.kind === 'private') {
      redis = choice.redis
      say(`private Redis ready on ${where} (pid ${redis.pid}, log ${rel(root, logDir)}/redis.log)`)
    }
    // a cluster's REDIS_URL (credentials, TLS) stays as given
    if (choice.kind !== 'cluster') env.REDIS_URL = choice.url
  } catch (err) {
    if (
      err instanceof RedisNotFoundError ||
      err instanceof RedisStartError ||
      err instanceof RedisUnreachableError
    ) {
      print(err.message)
      return 1
    }
    throw err
  }
  await warnAboutRedis(redisConfig(env))

  const apps = loadEcosystemApps(root)
  const missing = apps.filter((a) => !existsSync(a.script))
  if (missing.length > 0) {
    say(
      `not built: ${missing.map((a) => rel(root, a.script)).join(', ')}. Run pnpm build (pnpm start builds first).`,
    )
    await redis?.stop()
    return 1
  }

  if (exitCode !== 0) {
    // The private Redis died while we were getting ready.
    return exitCode
  }
  let resolveDone: () => void = () => {}
  const done = new Promise<void>((r) => {
    resolveDone = r
  })
  const supervisor = createSupervisor(apps, {
    cwd: root,
    env,
    logDir,
    format,
    print,
    onGiveUp(label, reason) {
      say(`${label} keeps failing at start, so everything stops. ${reason}`)
      exitCode = 1
      void shutdown('give-up')
    },
    onFinalExit(label, reason) {
      say(
        `${label} stopped and stays stopped (fix its settings, then restart); the others keep running. ${reason}`,
      )
    },
  })

  let stopping: Promise<void> | undefined
  function shutdown(why: string): Promise<void> {
    stopping ??= (async () => {
      say(`stopping (${why}): services first, then ${redis ? 'the private Redis' : 'done'}`)
      await supervisor.stop()
      if (redis && !redisLost) {
        await redis.stop()
        say('private Redis stopped (AOF flushed)')
      }
      say('all stopped')
      resolveDone()
    })()
    return stopping
  }
  let firstSignalAt = 0
  const onSignal = (sig: NodeJS.Signals) => {
    // pnpm forwards the terminal's ctrl-C to us, which had it already: one keypress, two SIGINTs.
    if (firstSignalAt > 0 && Date.now() - firstSignalAt < 500) return
    if (firstSignalAt > 0) {
      say(`${sig} again: the stop is already under way (it waits for each service's kill timeout)`)
      return
    }
    firstSignalAt = Date.now()
    void shutdown(sig)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  process.on('SIGHUP', onSignal)
  onRedisLost = () => void shutdown('Redis exited')

  const counts = apps.map((a) =>
    a.instances && a.instances > 1 ? `${a.name} x${a.instances}` : a.name,
  )
  say(`starting ${counts.join(', ')}; logs in ${rel(root, logDir)}/; ctrl-C stops everything`)
  supervisor.start()
  say(
    `API and circle page: http://localhost:${envOptional(env, 'PORT') ?? 8080}/ (once fart is ready)`,
  )
  await done
  process.off('SIGINT', onSignal)
  process.off('SIGTERM', onSignal)
  process.off('SIGHUP', onSignal)
  return exitCode
}

/** The Redis checks of `pnpm doctor`, printed as warnings: start anyway, but say what is risky. */
async function warnAboutRedis(target: RedisConfig) {
  const client = connectRedis(target, {
    lazyConnect: true,
    maxRetriesPerRequest: 1,
    retryStrategy: () => null,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    const bad = (await checkRedisServer(client)).filter((c) => c.status !== 'ok')
    if (bad.length > 0) {
      say('this Redis is not set up for keeping data (fine for a try-out, not for production):')
      print(formatChecks(bad))
    }
  } catch (err) {
    say(`could not check the Redis settings: ${(err as Error).message}`)
  } finally {
    client.disconnect()
  }
}

/** A path relative to the repo root when inside it, else absolute. */
function rel(root: string, path: string): string {
  const r = relative(root, path)
  return r.startsWith('..') ? path : r || '.'
}
