import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { envInt, envOptional } from '@circles/config'
import { findOnPath, freePort } from '@circles/redis-server'
import { startDemoAppView } from './demo-appview.js'
import { loadEcosystemApps } from './ecosystem.js'
import { mergeEnv, readEnvFile } from './env-file.js'
import { repoRoot } from './paths.js'
import { howToGetRedis, type PrivateRedis, startPrivateRedis } from './private-redis.js'
import { createSupervisor } from './supervisor.js'

// `pnpm demo`: the whole pipeline with no internet. A local PDS (the test kit's real @atproto/pds) stands in
// for the relay; simulated accounts post, like, repost, reply, quote and unlike on it at a steady pace; the
// four services run against a throw-away Redis; the page's URL is printed once a circle has people in it.

// The test kit is a dev-only package with heavy dependencies (the PDS): loaded at run time only, so that
// building and testing packages/ops does not depend on it. These are the parts the demo uses.
interface DemoAccount {
  did: string
  handle: string
}
interface DemoPds {
  url: string
  firehoseUrl: string
  plcUrl: string
  close(): Promise<void>
}
interface DemoSimulator {
  accounts: readonly DemoAccount[]
  commits: number
  expected: unknown[]
  round(): Promise<void>
}
interface Testkit {
  startLocalPds(): Promise<DemoPds>
  ActivitySimulator: { create(pds: DemoPds, accounts: number): Promise<DemoSimulator> }
}

function say(line: string) {
  process.stdout.write(`${new Date().toISOString().slice(11, 23)} demo  ${line}\n`)
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer()
    server.once('error', () => done(false))
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)))
  })
}

export async function main(): Promise<number> {
  const root = repoRoot()
  const fileEnv = mergeEnv(readEnvFile(resolve(root, '.env')))
  const accounts = envInt(fileEnv, 'DEMO_ACCOUNTS', 30, { min: 4, max: 500 })
  const roundMs = envInt(fileEnv, 'DEMO_ROUND_MS', 2000, { min: 0, max: 600_000 })
  const wanted = envInt(fileEnv, 'PORT', 8080, { min: 1, max: 65535 })
  const port = (await portFree(wanted)) ? wanted : await freePort()
  const tmp = mkdtempSync(join(tmpdir(), 'circles-demo-'))
  const cleanups: (() => Promise<void>)[] = [
    async () => rmSync(tmp, { recursive: true, force: true }),
  ]
  let exitCode = 0

  let stopping: Promise<void> | undefined
  let resolveDone: () => void = () => {}
  const done = new Promise<void>((r) => {
    resolveDone = r
  })
  const shutdown = (why: string) => {
    stopping ??= (async () => {
      say(`stopping (${why})`)
      // Reverse order of start; every step runs even if one fails.
      for (const fn of cleanups.splice(0).reverse()) {
        await fn().catch((err: Error) => say(`cleanup step failed: ${err.message}`))
      }
      say('all stopped, temporary data removed')
      resolveDone()
    })()
    return stopping
  }
  const onSignal = (sig: NodeJS.Signals) => void shutdown(sig)
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  try {
    // A throw-away Redis of its own, so the demo never mixes with a real index.
    if (!findOnPath('redis-server')) {
      print(howToGetRedis(6379))
      print('(the demo runs its own temporary redis-server and needs the binary on the PATH)')
      await shutdown('no redis-server')
      return 1
    }
    const redis: PrivateRedis = await startPrivateRedis({
      port: await freePort(),
      dataDir: join(tmp, 'redis'),
      logFile: join(tmp, 'redis.log'),
    })
    cleanups.push(() => redis.stop())
    say(`temporary Redis on ${redis.url}`)

    say('starting a local PDS (no internet needed; takes a few seconds)...')
    const spec = '@circles/testkit/pds'
    const kit = (await import(spec)) as Testkit
    const pds = await kit.startLocalPds()
    cleanups.push(() => pds.close())
    say(`local PDS on ${pds.url}; creating ${accounts} accounts...`)
    const sim = await kit.ActivitySimulator.create(pds, accounts)
    say(`${sim.accounts.length} accounts ready`)
    const appview = await startDemoAppView(
      sim.accounts.map((a, i) => ({
        did: a.did,
        handle: a.handle,
        displayName: `Simulated ${i + 1}`,
      })),
    )
    cleanups.push(() => appview.close())

    let running = true
    const loop = (async () => {
      let rounds = 0
      while (running) {
        const started = Date.now()
        try {
          await sim.round()
          rounds++
          // The simulator records what it expects the firehose to publish (for tests); the demo has no use
          // for it and runs for hours.
          sim.expected.length = 0
          if (rounds % 30 === 0)
            say(`${rounds} rounds of activity, ${sim.commits} writes on the PDS`)
        } catch (err) {
          if (running) say(`a round of activity failed (going on): ${(err as Error).message}`)
        }
        const wait = roundMs - (Date.now() - started)
        if (running && wait > 0) await new Promise((r) => setTimeout(r, wait))
      }
    })()
    cleanups.push(async () => {
      running = false
      await loop
    })

    const env: Record<string, string> = {
      ...fileEnv,
      REDIS_URL: redis.url,
      REDIS_PREFIX: 'demo:',
      RELAY_URL: pds.firehoseUrl,
      // From the PDS's first event, so the accounts' first posts are indexed too.
      FIREHOSE_CURSOR: '0',
      // The demo's cursor checkpoint goes with its other temporary data.
      FIREHOSE_CHECKPOINT_FILE: join(tmp, 'firehose-checkpoint.json'),
      API_LISTS_FILE: join(tmp, 'api-lists.json'),
      HOST: '127.0.0.1',
      PORT: String(port),
      // The local PDS has no AppView: a stand-in knows the simulated accounts (no avatars).
      APPVIEW_URL: envOptional(fileEnv, 'DEMO_APPVIEW_URL') ?? appview.url,
      LOG_LEVEL: envOptional(fileEnv, 'DEMO_LOG_LEVEL') ?? 'warn',
      // Backfills read the simulated accounts' repos from the local PDS, whose PLC is on loopback.
      BACKFILL_PLC_URL: pds.plcUrl,
      BACKFILL_ALLOW_PRIVATE: 'true',
      // Circles change by the second here: a reload of the page shows them grow.
      CIRCLE_CACHE_TTL_SECONDS: envOptional(fileEnv, 'CIRCLE_CACHE_TTL_SECONDS') ?? '10',
    }
    const supervisor = createSupervisor(loadEcosystemApps(root), {
      cwd: root,
      env,
      logDir: join(tmp, 'logs'),
      print,
      onGiveUp(label, reason) {
        say(`${label} keeps failing at start: ${reason}`)
        exitCode = 1
        void shutdown('give-up')
      },
    })
    cleanups.push(() => supervisor.stop())
    supervisor.start()
    say(
      `services started against the PDS (logs at level ${env.LOG_LEVEL}; DEMO_LOG_LEVEL=info for more)`,
    )

    // The simulator rotates roles each round (account i plays a, b, c, d in rounds i, i-1, i-2, i-3): the
    // fourth account has played all four after four rounds, so its circle fills first.
    const who = sim.accounts[3] as DemoAccount
    const api = `http://127.0.0.1:${port}`
    const ready = await waitForCircle(api, who.handle, () => stopping !== undefined)
    if (ready) {
      say(`circle page of ${who.handle} (${who.did}):`)
      print(`\n    ${api}/?actor=${encodeURIComponent(who.handle)}\n`)
      say(`JSON: ${api}/v1/circles/${who.handle}   API docs: ${api}/docs   ctrl-C stops everything`)
      say(
        `health: REDIS_URL=${redis.url} REDIS_PREFIX=${env.REDIS_PREFIX} RELAY_URL=${pds.firehoseUrl} pnpm run doctor`,
      )
    } else if (!stopping) {
      say(`no circle after 3 minutes: see the services' logs in ${join(tmp, 'logs')}`)
    }
    await done
    return exitCode
  } catch (err) {
    say(`the demo failed: ${(err as Error).stack ?? String(err)}`)
    await shutdown('error')
    return 1
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

function print(line: string) {
  process.stdout.write(`${line}\n`)
}

/** Polls the API until the account's circle has someone in it (the pipeline works end to end). */
async function waitForCircle(api: string, actor: string, stopped: () => boolean): Promise<boolean> {
  const started = Date.now()
  let last = ''
  while (Date.now() - started < 180_000 && !stopped()) {
    try {
      const res = await fetch(`${api}/v1/circles/${actor}`, { signal: AbortSignal.timeout(5000) })
      const text = await res.text()
      // A few people make a circle worth looking at; after half a minute, anyone will do.
      const enough = Date.now() - started < 30_000 ? 4 : 1
      if (res.ok && countMembers(text) >= enough) return true
      last = `HTTP ${res.status}`
    } catch (err) {
      last = (err as Error).message
    }
    await new Promise((r) => setTimeout(r, 1000))
  }
  if (!stopped()) say(`last answer from the API: ${last}`)
  return false
}

function countMembers(body: string): number {
  try {
    const circle = JSON.parse(body) as { rings?: { members?: unknown[] }[] }
    return (circle.rings ?? []).reduce((n, r) => n + (r.members?.length ?? 0), 0)
  } catch {
    return 0
  }
}
