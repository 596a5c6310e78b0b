import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import {
  BACKFILL_QUEUE,
  type BackfillJobData,
  backfillJobId,
  backfillQueueOptions,
  enqueueBackfill,
  readBackfillState,
} from '@circles/backfill'
import { createSchema, type RedisSchema } from '@circles/redis-schema'
import {
  InteractionLedger,
  type KindTally,
  type PrivateRedis,
  pollUntil,
  pollUntilEqual,
  type StallProxy,
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
import { Queue, QueueEvents } from 'bullmq'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../src/paths.js'
import { expectedInteractions, indexTallies, Names, type Tallies } from './chain-views.js'

// Issue 16, "kill -9 of the worker mid-backfill, rerun: counted once", for the real worker: the built
// scheduler takes ali's `backfill` job, is killed with SIGKILL in the middle of it, and a new scheduler
// runs the job again through BullMQ's own stalled-job recovery (its lock lapses; nobody enqueues it
// again). The accounts acted before anything started, so the backfill is the index's only source: the
// index must then hold the script's ledger for ali and her partners, every count once, both directions.

const MAIN = join(repoRoot(), 'services/scheduler/dist/src/main.js')
/** BACKFILL_LOCK_MS: the dead scheduler's job runs again within seconds (BullMQ's defaults: up to ~90 s). */
const LOCK_MS = 3000
const WAIT = { timeoutMs: 60_000 }

interface Scheduler {
  proc: ChildProcess
  output: string[]
}

describe('backfill worker killed (kill -9) mid-job, its job recovered by BullMQ: counted once', () => {
  let redis: PrivateRedis
  let pds: LocalPds
  let acct: ScriptAccounts
  let names: Names
  let reader: Redis
  const ledger = new InteractionLedger()
  const started: Scheduler[] = []

  beforeAll(async () => {
    redis = await startRedisServer()
    pds = await startLocalPds()
    acct = await createScriptAccounts(pds)
    names = new Names(acct)
    await runLedgerScript(new LedgerWriter(pds, ledger), acct) // all of it before any scheduler exists
    reader = new Redis(redis.url)
  }, 120_000)

  afterAll(async () => {
    await Promise.all(started.map(stop))
    reader?.disconnect()
    await pds?.close()
    await redis?.stop()
  })

  /** ali and everyone the ledger says she interacted with: the repos her job folds, both sides whole. */
  function aliAndPartners(): PdsAccount[] {
    const partners = ledger.partnersOf(acct.ali.did)
    return Object.values(acct).filter((a) => a.did === acct.ali.did || partners.has(a.did))
  }

  function scheduler(env: Record<string, string>): Scheduler {
    const s = startScheduler(env)
    started.push(s)
    return s
  }

  /**
   * Enqueues ali's job for a first scheduler (`env`), waits for `proxy` to stall it, kills that scheduler
   * with SIGKILL and checks the job was left running half-way; `check` may look at what it left.
   */
  async function killMidJob(
    jobs: Jobs,
    proxy: StallProxy,
    env: Record<string, string>,
    check?: () => Promise<void>,
  ): Promise<void> {
    const first = scheduler(env)
    await enqueueBackfill(jobs.queue, acct.ali.did, 'request')
    const stalled = await pollUntilEqual(async () => proxy.stalled, true, WAIT)
    expect(stalled, tail(first)).toBe(true)
    first.proc.kill('SIGKILL')
    await once(first.proc, 'exit')
    const at = await reader.hgetall(jobs.schema.backfillAccount(acct.ali.did))
    expect(at.state, tail(first)).toBe('running')
    expect(Number(at.done)).toBeLessThan(Number(at.total))
    // Still BullMQ's active job, under a lock nobody renews: what the next worker must find by itself.
    expect(await jobs.queue.getJobState(jobs.id)).toBe('active')
    await check?.()
    await proxy.close()
  }

  /** A second scheduler, straight to Redis and the PLC; the job must come back to it and finish. */
  async function recoverAndCompare(jobs: Jobs, prefix: string): Promise<void> {
    const second = scheduler(schedulerEnv(redis.url, prefix, pds.plcUrl))
    try {
      const state = await pollUntilEqual(
        () => readBackfillState(reader, jobs.schema, acct.ali.did),
        { state: 'done', progress: 1 },
        WAIT,
      )
      expect(state, tail(second)).toEqual({ state: 'done', progress: 1 })
      const recovered = await pollUntil(
        async () => jobs.stalled,
        (s) => s.includes(jobs.id),
        WAIT,
      )
      expect(recovered).toContain(jobs.id)
      const who = aliAndPartners()
      expect(who.length).toBeGreaterThan(2)
      expect(await indexTallies(reader, prefix, names, who)).toEqual(
        expectedInteractions(ledger, names, who),
      )
    } finally {
      await stop(second)
    }
  }

  it('between repos: stalled at a partner’s DID document, killed, run again to the end', async () => {
    const prefix = 'wk-plc:'
    const jobs = await openJobs(redis, prefix, acct.ali.did)
    // The PLC directory behind a proxy that stalls at a partner's DID document (one partner at a time):
    // the job is then between repos, ali's own and maybe some partners' folded, the rest not.
    const target = acct.dan.did
    const proxy = await startStallProxy(pds.plcUrl.replace('http:', 'redis:'), {
      stallWhen: (b) => b.includes(`/${target}`),
    })
    try {
      await killMidJob(
        jobs,
        proxy,
        schedulerEnv(redis.url, prefix, `http://127.0.0.1:${proxy.port}`),
        async () => {
          const repoState = (a: PdsAccount) => reader.hget(jobs.schema.backfillRepo(a.did), 'state')
          expect(await repoState(acct.ali)).toBe('done')
          expect(await repoState(acct.dan)).toBeNull()
        },
      )
      await recoverAndCompare(jobs, prefix)
    } finally {
      await proxy.close()
      await jobs.close()
    }
  }, 180_000)

  it('inside a repo: its interactions written, its done mark not, killed, folded again', async () => {
    const prefix = 'wk-redis:'
    const jobs = await openJobs(redis, prefix, acct.ali.did)
    // The scheduler's Redis behind a proxy that stalls at the command marking ali's own repo folded: every
    // write of that repo has landed, the mark has not, so the next run folds the whole repo again.
    const mark = `${jobs.schema.backfillRepo(acct.ali.did)}\r\n$5\r\nstate\r\n$4\r\ndone\r\n`
    const proxy = await startStallProxy(redis.url, { stallWhen: (b) => b.includes(mark) })
    try {
      await killMidJob(jobs, proxy, schedulerEnv(proxy.url, prefix, pds.plcUrl), async () => {
        expect(await reader.hget(jobs.schema.backfillRepo(acct.ali.did), 'state')).toBeNull()
        // Her own repo's share is in, whole: her sent side (her received side is in her partners' repos).
        const seen = sentSide((await indexTallies(reader, prefix, names, [acct.ali])).ali ?? {})
        const expected = sentSide(expectedInteractions(ledger, names, [acct.ali]).ali ?? {})
        expect(Object.keys(expected).length).toBeGreaterThan(0)
        expect(seen).toEqual(expected)
      })
      await recoverAndCompare(jobs, prefix)
    } finally {
      await proxy.close()
      await jobs.close()
    }
  }, 180_000)
})

interface Jobs {
  schema: RedisSchema
  queue: Queue<BackfillJobData>
  /** Ids of the jobs BullMQ reported stalled (moved back to wait from a dead worker). */
  stalled: string[]
  id: string
  close(): Promise<void>
}

/** The `backfill` queue under `prefix`, as the API enqueues to it, and its `stalled` events. */
async function openJobs(redis: PrivateRedis, prefix: string, did: string): Promise<Jobs> {
  const schema = createSchema(prefix)
  const connection = { host: '127.0.0.1', port: redis.port }
  const queue = new Queue<BackfillJobData>(BACKFILL_QUEUE, {
    connection,
    ...backfillQueueOptions(schema),
  })
  const events = new QueueEvents(BACKFILL_QUEUE, { connection, ...backfillQueueOptions(schema) })
  const stalled: string[] = []
  events.on('stalled', ({ jobId }) => stalled.push(jobId))
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady()])
  return {
    schema,
    queue,
    stalled,
    id: backfillJobId(did),
    async close() {
      await events.close()
      await queue.close()
    },
  }
}

function schedulerEnv(redisUrl: string, prefix: string, plcUrl: string): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    REDIS_URL: redisUrl,
    REDIS_PREFIX: prefix,
    BACKFILL_PLC_URL: plcUrl,
    BACKFILL_ALLOW_PRIVATE: 'true',
    // One partner at a time: a stall at one partner holds the job there, with the rest still to do.
    BACKFILL_PARTNER_CONCURRENCY: '1',
    // Longer than the test: the stalled request must not time out (and fail the job) before the kill.
    BACKFILL_TIMEOUT_MS: '600000',
    BACKFILL_LOCK_MS: String(LOCK_MS),
    LOG_LEVEL: 'info',
  }
}

/** The built scheduler, as `pnpm start` runs it. */
function startScheduler(env: Record<string, string>): Scheduler {
  const output: string[] = []
  const proc = spawn(process.execPath, [MAIN], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  proc.stdout?.on('data', (d: Buffer) => output.push(d.toString()))
  proc.stderr?.on('data', (d: Buffer) => output.push(d.toString()))
  return { proc, output }
}

async function stop(s: Scheduler): Promise<void> {
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return
  const exited = once(s.proc, 'exit')
  s.proc.kill('SIGTERM')
  const late = setTimeout(() => s.proc.kill('SIGKILL'), 10_000)
  await exited
  clearTimeout(late)
}

/** Partner -> what was sent to it, for the partners sent anything. */
function sentSide(t: Tallies): Record<string, KindTally> {
  const sent = Object.entries(t).filter(([, p]) => Object.values(p.sent).some((n) => n > 0))
  return Object.fromEntries(sent.map(([name, p]) => [name, p.sent]))
}

function tail(s: Scheduler): string {
  return s.output.join('').split('\n').slice(-40).join('\n')
}
