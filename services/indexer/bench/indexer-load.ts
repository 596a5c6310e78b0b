// The indexer benches' shared parts (`pnpm bench:indexer`, `pnpm bench:cluster`): the 1M-interaction Zipf
// workload, its load into the event stream, the real indexer service as child processes, and the readings
// of Redis (memory, CPU) summed over every server the index lives on, so both benches measure the same way.
import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { loadavg } from 'node:os'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { encodeEvents, HOUR_MS, type InteractionCreate, type StreamEvent } from '@circles/core'
import { groupInfo } from '@circles/stream-info'
import { processCpuSeconds } from '@circles/testkit'
import { createWorkloadRandom, tidFromMicros } from '@circles/testkit/workload'
import type { Redis } from 'ioredis'

export const N = Number(process.env.BENCH_INTERACTIONS ?? 1_000_000)
/** Accounts in the population; authors and subjects are drawn from it by two independent Zipf rankings. */
export const POPULATION = Number(process.env.BENCH_POPULATION ?? 100_000)
/** Zipf exponent: s = 1 over 100k accounts gives the top author ~8.3% of all interactions (~83k of 1M). */
export const ZIPF_S = Number(process.env.BENCH_ZIPF_S ?? 1)
const DELETE_SHARE = 0.03
const UNKNOWN_DELETE_SHARE = 0.01
export const EVENTS_PER_ENTRY = 200
export const PREFIX = 'circles:'

const MAIN = resolve(dirname(fileURLToPath(import.meta.url)), '../src/main.js')
const profileArgs = process.env.BENCH_CPU_PROF
  ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`]
  : []
/** Extra node flags for the indexer processes (e.g. `--trace-gc`, `--max-semi-space-size=64`). */
const nodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)

/** A progress line writer tagged with the bench's name. */
export function progressFor(bench: string): (msg: string) => void {
  return (msg) => {
    // the load average says how much of the 2 cores this run really had (the machine may be shared)
    const load = loadavg()[0]?.toFixed(1)
    process.stdout.write(`[${bench}] ${new Date().toISOString()} load ${load} ${msg}\n`)
  }
}

export interface Generated {
  events: StreamEvent[]
  creates: number
  deleted: number
  dids: string[]
  authorRank: Int32Array
  authorCounts: Map<string, number>
}

/** The workload: N creates over the last 47 h in stream order, some deleted later. Same seed, same events. */
export function generate(nowMs: number): Generated {
  const { rand, zipfSampler, shuffled, randomDid, pickKind } = createWorkloadRandom(42)
  const dids = Array.from({ length: POPULATION }, randomDid)
  const authorRank = shuffled(POPULATION)
  const subjectRank = shuffled(POPULATION)
  const zipf = zipfSampler(POPULATION, ZIPF_S)
  const span = 47 * HOUR_MS
  const start = nowMs - span - 60_000
  const creates: InteractionCreate[] = []
  const authorCounts = new Map<string, number>()
  let last = 0
  while (creates.length < N) {
    const author = dids[authorRank[zipf()] as number] as string
    let subject = dids[subjectRank[zipf()] as number] as string
    while (subject === author) subject = dids[subjectRank[zipf()] as number] as string
    // time increases with the stream position (like a live firehose), microseconds unique
    const micros = Math.max(last + 1, Math.floor((start + (creates.length / N) * span) * 1000))
    last = micros
    const time = Math.floor(micros / 1000)
    const kind = pickKind()
    const rkey = tidFromMicros(micros, Math.floor(rand() * 1024))
    const chars = kind === 'reply' || kind === 'quote' ? Math.floor(rand() * 300) : 0
    creates.push({ type: 'create', kind, author, subject, rkey, time, chars })
    authorCounts.set(author, (authorCounts.get(author) ?? 0) + 1)
  }
  // Deletes come later in the stream than their creates; a few delete records the index never saw.
  const events: StreamEvent[] = []
  const pendingDeletes: { at: number; event: StreamEvent }[] = []
  let deleted = 0
  creates.forEach((c, i) => {
    events.push(c)
    if (rand() < DELETE_SHARE) {
      deleted++
      authorCounts.set(c.author, (authorCounts.get(c.author) ?? 0) - 1)
      const record = c.kind === 'like' ? 'like' : c.kind === 'repost' ? 'repost' : 'post'
      pendingDeletes.push({
        at: i + 1 + Math.floor(rand() * 5000),
        event: { type: 'delete', record, author: c.author, rkey: c.rkey, time: c.time + 1000 },
      })
    }
    if (rand() < UNKNOWN_DELETE_SHARE) {
      events.push({
        type: 'delete',
        record: 'like',
        author: c.author,
        rkey: tidFromMicros(Math.floor((c.time - 100 * HOUR_MS) * 1000), 7),
        time: c.time,
      })
    }
    while (pendingDeletes.length > 0 && (pendingDeletes[0] as { at: number }).at <= i) {
      events.push((pendingDeletes.shift() as { event: StreamEvent }).event)
    }
  })
  for (const d of pendingDeletes) events.push(d.event)
  return { events, creates: creates.length, deleted, dids, authorRank, authorCounts }
}

/** Seconds of CPU (user + system) the servers have used, summed. */
export async function redisCpu(servers: Redis[]): Promise<number> {
  let total = 0
  for (const server of servers) {
    const info = await server.info('cpu')
    total += Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1])
    total += Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1])
  }
  return total
}

/** `used_memory` of the servers, summed. */
export async function usedMemory(servers: Redis[]): Promise<number> {
  let total = 0
  for (const server of servers) {
    total += Number(/used_memory:(\d+)/.exec(await server.info('memory'))?.[1])
  }
  return total
}

/** XADDs the events, EVENTS_PER_ENTRY to an entry, 500 entries a pipeline; returns the entries written. */
export async function loadStream(
  redis: Redis,
  stream: string,
  events: StreamEvent[],
): Promise<number> {
  let entries = 0
  let pipe = redis.pipeline()
  for (let i = 0; i < events.length; i += EVENTS_PER_ENTRY) {
    pipe.xadd(stream, '*', 'e', encodeEvents(events.slice(i, i + EVENTS_PER_ENTRY)))
    entries++
    if (entries % 500 === 0) {
      await pipe.exec()
      pipe = redis.pipeline()
    }
  }
  await pipe.exec()
  return entries
}

/** Resolves once the group has read and acknowledged every entry, logging progress every 3 s. */
export async function waitDrained(
  redis: Redis,
  stream: string,
  group: string,
  total: number,
  t0: number,
  progress: (msg: string) => void,
): Promise<void> {
  let lastLog = 0
  for (;;) {
    const info = await groupInfo(redis, stream, group)
    if (!info) {
      // the service creates the group when it starts
      await new Promise((res) => setTimeout(res, 20))
      continue
    }
    // a lag Redis cannot tell (null) reads as 0: drained once nothing is pending
    const lag = info.lag ?? 0
    const pending = info.pending
    if (lag === 0 && pending === 0) return
    if (Date.now() - lastLog > 3000) {
      lastLog = Date.now()
      const done = total - lag - pending
      progress(
        `indexing: ${done}/${total} entries, ${((done * 1000) / (Date.now() - t0)).toFixed(0)} entries/s`,
      )
    }
    await new Promise((res) => setTimeout(res, 20))
  }
}

/**
 * `count` real indexer processes (`src/main.js`) on the Redis `env` names (REDIS_URL, or REDIS_CLUSTER_NODES).
 * BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each there.
 */
export function spawnIndexers(count: number, env: Record<string, string>): ChildProcess[] {
  return Array.from({ length: count }, (_, i) =>
    spawn(process.execPath, [...nodeArgs, ...profileArgs, MAIN], {
      env: {
        ...process.env,
        REDIS_PREFIX: PREFIX,
        // no /metrics: two indexers (or another helper's) would want the same port
        METRICS_PORT: '0',
        LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn',
        INDEXER_CONSUMER: `bench-${i + 1}`,
        ...env,
      },
      stdio: ['ignore', 'inherit', 'inherit'],
    }),
  )
}

/** Seconds of CPU the processes have used, summed. */
export function childrenCpu(children: ChildProcess[]): number {
  return children.reduce((sum, c) => sum + processCpuSeconds(c.pid), 0)
}

export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return
  child.kill('SIGTERM')
  await once(child, 'exit')
}
