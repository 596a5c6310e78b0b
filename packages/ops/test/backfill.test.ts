import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { createSchema } from '@circles/redis-schema'
import {
  freePort,
  InteractionLedger,
  type PrivateRedis,
  pollUntilEqual,
  startRedisServer,
  startStallProxy,
} from '@circles/testkit'
import {
  createScriptAccounts,
  LedgerWriter,
  type LocalPds,
  type PdsAccount,
  runLedgerScript,
  type ScriptAccounts,
  startLocalPds,
} from '@circles/testkit/pds'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type DemoAppView, startDemoAppView } from '../src/demo-appview.js'
import { loadEcosystemApps } from '../src/ecosystem.js'
import { repoRoot } from '../src/paths.js'
import { createSupervisor, type Supervisor } from '../src/supervisor.js'
import { tempDir } from '../src/test-helpers.js'
import {
  expectedCircles,
  expectedInteractions,
  getJson,
  indexTallies,
  Names,
  readCircles,
  readInteractions,
} from './chain-views.js'

// Issue 16 end to end: the accounts act on a local PDS BEFORE the system starts, so the live stream never
// shows it; the system (the four built services, as `pnpm start` runs them) then learns it from the repos.
// What it must answer is the script's own ledger of who did what to whom, which is also what the whole
// chain test (chain.test.ts) proves a system that indexed the same activity live answers.

describe('backfill: circles from the accounts’ own repos', () => {
  let redis: PrivateRedis
  let pds: LocalPds
  let appview: DemoAppView
  let supervisor: Supervisor
  let api: string
  let acct: ScriptAccounts
  let names: Names
  let w: LedgerWriter
  const logDir = tempDir('backfill-logs')
  const output: string[] = []
  const ledger = new InteractionLedger()

  beforeAll(async () => {
    redis = await startRedisServer()
    pds = await startLocalPds()
    acct = await createScriptAccounts(pds)
    names = new Names(acct)
    w = new LedgerWriter(pds, ledger)
    await runLedgerScript(w, acct) // all of it before the system exists
    appview = await startDemoAppView(
      Object.entries(acct).map(([name, a]) => ({
        did: a.did,
        handle: a.handle,
        displayName: name,
      })),
    )
    const port = await freePort()
    api = `http://127.0.0.1:${port}`
    supervisor = createSupervisor(loadEcosystemApps(repoRoot()), {
      cwd: repoRoot(),
      env: { ...systemEnv(redis.url, pds, 'bf:'), PORT: String(port), APPVIEW_URL: appview.url },
      logDir,
      format: 'json',
      print: (line) => output.push(line),
    })
    supervisor.start()
  }, 120_000)

  afterAll(async () => {
    await supervisor?.stop()
    await appview?.close()
    await pds?.close()
    await redis?.stop()
    rmSync(logDir, { recursive: true, force: true })
  })

  const nobody = (accounts: readonly PdsAccount[]) =>
    Object.fromEntries(accounts.map((a) => [names.of(a.did), {}]))

  it('knows nothing at first; the first circle request backfills: the live system’s answers', async () => {
    const { ali, bob, cat, dan } = acct
    // The system is up and live, and has seen none of the history.
    const ready = await pollUntilEqual(async () => (await getJson(`${api}/readyz`)).status, 200)
    expect(ready, tail(output)).toBe(200)
    expect(await readInteractions(api, names, [ali])).toEqual(nobody([ali]))

    const first = await getJson(`${api}/v1/circles/${ali.handle}`)
    expect(first.status).toBe(200)
    const state = (first.body as { backfill?: { state: string } }).backfill?.state
    expect(['queued', 'running', 'done']).toContain(state)

    // ali's own repo gives her sent side; her partners' repos (bob, cat, dan: all within the bound) her
    // received side and their own sent sides.
    const who = [ali, bob, cat, dan]
    const backfill = await pollUntilEqual(
      async () =>
        ((await getJson(`${api}/v1/circles/${ali.handle}`)).body as { backfill?: unknown })
          .backfill,
      { state: 'done', progress: 1 },
    )
    expect(backfill, tail(output)).toEqual({ state: 'done', progress: 1 })
    const expected = {
      interactions: expectedInteractions(ledger, names, who),
      circles: expectedCircles(ledger, names, [ali]),
    }
    const seen = await pollUntilEqual(
      async () => ({
        interactions: await readInteractions(api, names, who),
        circles: await readCircles(api, names, [ali]),
      }),
      expected,
    )
    expect(seen, tail(output)).toEqual(expected)

    // And literally the answers of a system that indexed the same activity live: a firehose and an
    // indexer reading the PDS from its first event, under another prefix of the same Redis.
    const live = startLiveIndex(redis.url, pds, 'bf-live:')
    const reader = new Redis(redis.url)
    try {
      const backfilled = await indexTallies(reader, 'bf:', names, who)
      const indexedLive = await pollUntilEqual(
        () => indexTallies(reader, 'bf-live:', names, who),
        backfilled,
      )
      expect(indexedLive, live.output.join('')).toEqual(backfilled)
    } finally {
      reader.disconnect()
      await live.stop()
    }
  }, 120_000)

  it('counts once what both the live stream and a backfill running beside it see', async () => {
    const { ali, bob, cat } = acct
    const env = { ...systemEnv(redis.url, pds, 'bf:'), APPVIEW_URL: appview.url }
    // New activity written while backfills of the same repos run (re-syncs: getRepo?since=), then again
    // once everything settled: each record reaches the index from both sides, and counts once. (Named by
    // handle, as a user would: the CLI resolves them through the AppView.)
    const write = async () => {
      const p = await w.post(bob)
      await w.like(ali, p)
      await w.post(ali, { reply: { root: p, parent: p } })
      await w.remove(ali, await w.repost(ali, p))
      await w.post(cat, { quote: p })
    }
    const [during] = await Promise.all([
      runCli(['--resync', ali.handle, `@${bob.handle}`, cat.did], env),
      write(),
    ])
    expect(during.code, during.output).toBe(0)
    const who = [ali, bob, cat]
    const expected = expectedInteractions(ledger, names, who)
    const live = await pollUntilEqual(() => readInteractions(api, names, who), expected)
    expect(live, tail(output)).toEqual(expected)
    const after = await runCli(['--resync', ali.did, bob.did, cat.did], env)
    expect(after.code, after.output).toBe(0)
    expect(await readInteractions(api, names, who)).toEqual(expected)
  }, 90_000)

  it('a backfill killed half-way (kill -9) and run again counts everything once', async () => {
    const prefix = 'bf-kill:'
    const everyone = Object.values(acct)
    // The PLC directory behind a proxy that stalls at one partner's DID document: the backfill is then
    // between repos, its own and some partners' folded, the rest not.
    const target = acct.dan.did
    const proxy = await startStallProxy(pds.plcUrl.replace('http:', 'redis:'), {
      stallWhen: (b) => b.includes(`/${target}`),
    })
    const env = {
      ...systemEnv(redis.url, pds, prefix),
      BACKFILL_PLC_URL: `http://127.0.0.1:${proxy.port}`,
      BACKFILL_PARTNER_CONCURRENCY: '1',
      BACKFILL_TIMEOUT_MS: '60000',
    }
    const child = startCli([acct.ali.did], env)
    await pollUntilEqual(async () => proxy.stalled, true, { timeoutMs: 30_000 })
    child.proc.kill('SIGKILL')
    await once(child.proc, 'exit')
    await proxy.close()
    const reader = new Redis(redis.url)
    try {
      const schema = createSchema(prefix)
      const at = await reader.hgetall(schema.backfillAccount(acct.ali.did))
      expect(at.state, child.output.join('')).toBe('running')
      expect(Number(at.done)).toBeLessThan(Number(at.total))
      // Again, to the end, then every account's repo too: each counted once.
      const dids = everyone.map((a) => a.did)
      const again = await runCli(dids, systemEnv(redis.url, pds, prefix))
      expect(again.code, again.output).toBe(0)
      expect(await indexTallies(reader, prefix, names, everyone)).toEqual(
        expectedInteractions(ledger, names, everyone),
      )
    } finally {
      reader.disconnect()
    }
  }, 120_000)
})

/** The built firehose and indexer, reading the PDS from its first event (FIREHOSE_CURSOR=0). */
function startLiveIndex(redisUrl: string, pds: LocalPds, prefix: string) {
  const env = { ...systemEnv(redisUrl, pds, prefix), FIREHOSE_CURSOR: '0' }
  const mains = ['services/firehose/dist/src/main.js', 'services/indexer/dist/src/main.js']
  const output: string[] = []
  const procs = mains.map((m) => {
    const proc = spawn(process.execPath, [join(repoRoot(), m)], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()))
    proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()))
    return proc
  })
  return {
    output,
    async stop() {
      await Promise.all(
        procs.map(async (p) => {
          if (p.exitCode !== null || p.signalCode !== null) return
          const exited = once(p, 'exit')
          p.kill('SIGTERM')
          await exited
        }),
      )
    },
  }
}

function systemEnv(redisUrl: string, pds: LocalPds, prefix: string): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    RELAY_URL: pds.firehoseUrl,
    // Live: the firehose starts at the PDS's present, after the script ran.
    FIREHOSE_CURSOR: '',
    FIREHOSE_CHECKPOINT_FILE: '',
    API_LISTS_FILE: '',
    BACKFILL_PLC_URL: pds.plcUrl,
    BACKFILL_ALLOW_PRIVATE: 'true',
    SCHEDULER_HEARTBEAT_MS: '1000',
    HOST: '127.0.0.1',
    RATE_LIMIT_MAX: '0',
    CIRCLE_CACHE_TTL_SECONDS: '1',
    LOCAL_CACHE_MS: '0',
    LOG_LEVEL: 'warn',
  }
}

interface Cli {
  proc: ChildProcess
  output: string[]
}

/** `pnpm run backfill` as a user runs it (the script, which builds first if needed). */
function startCli(args: string[], env: Record<string, string>): Cli {
  const output: string[] = []
  const proc = spawn(process.execPath, [join(repoRoot(), 'scripts/backfill.mjs'), ...args], {
    cwd: repoRoot(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()))
  proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()))
  return { proc, output }
}

async function runCli(args: string[], env: Record<string, string>) {
  const cli = startCli(args, env)
  const [code] = (await once(cli.proc, 'exit')) as [number | null]
  return { code, output: cli.output.join('') }
}

function tail(lines: readonly string[]): string {
  return lines.slice(-40).join('\n')
}
