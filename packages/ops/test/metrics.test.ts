import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { join } from 'node:path'
import type { CorpusFrame } from '@circles/testkit'
import {
  documentedMetrics,
  freePort,
  namesOf,
  type Page,
  type PrivateRedis,
  pollUntil,
  type ReplayServer,
  type Service,
  scrape,
  startRedisServer,
  startReplayServer,
  synthesizeFrames,
} from '@circles/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../src/paths.js'

// The four built services as separate processes on a private Redis, the firehose reading a synthetic corpus
// from a loopback relay in two halves: each /metrics must serve every name docs/metrics.md gives it (and no
// name of ours it does not), and the counters must move from one half to the next.

const SERVICES: Service[] = ['firehose', 'indexer', 'scheduler', 'fart']
const TABLE = documentedMetrics(repoRoot())

interface Running {
  url: string
  child: ChildProcess
}

describe('/metrics of every process, while the corpus replays', () => {
  let redis: PrivateRedis
  let relay: ReplayServer
  const frames: CorpusFrame[] = []
  const running = new Map<Service, Running>()
  let api = ''

  beforeAll(async () => {
    for await (const f of synthesizeFrames({ commits: 2000, repos: 80, seed: 23 })) frames.push(f)
    redis = await startRedisServer()
    relay = await startReplayServer(frames, {
      releasedThrough: (frames[Math.floor(frames.length / 2)] as CorpusFrame).seq,
    })
    const apiPort = await freePort()
    api = `http://127.0.0.1:${apiPort}`
    for (const service of SERVICES) {
      const port = service === 'fart' ? apiPort : await freePort()
      const env: Record<string, string> = {
        ...(process.env as Record<string, string>),
        REDIS_URL: redis.url,
        REDIS_PREFIX: 'metrics:',
        LOG_LEVEL: process.env.TEST_SERVICE_LOGS ?? 'silent',
        RELAY_URL: relay.url,
        FIREHOSE_CURSOR: '0',
        FIREHOSE_CHECKPOINT_FILE: '',
        API_LISTS_FILE: '',
        STATS_EVERY_MS: '1000',
        ROLLUP_EVERY_MS: '1000',
        HOST: '127.0.0.1',
        PORT: String(apiPort),
        RATE_LIMIT_MAX: '0',
        ...(service === 'fart' ? {} : { METRICS_PORT: String(port) }),
      }
      const child = spawn(
        process.execPath,
        [join(repoRoot(), `services/${service}/dist/src/main.js`)],
        { env, stdio: process.env.TEST_SERVICE_LOGS ? 'inherit' : 'ignore' },
      )
      running.set(service, { url: `http://127.0.0.1:${port}/metrics`, child })
    }
  }, 120_000)

  afterAll(async () => {
    for (const { child } of running.values()) {
      if (child.exitCode !== null || child.signalCode !== null) continue
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
    await relay?.close()
    await redis?.stop()
  })

  async function scrapeAll(): Promise<Record<Service, Page>> {
    const pages = await Promise.all(SERVICES.map((s) => scrape(running.get(s)?.url as string)))
    return Object.fromEntries(SERVICES.map((s, i) => [s, pages[i]])) as Record<Service, Page>
  }

  /** Polls every page until `done` holds, and returns the last pages either way. */
  function scrapeUntil(done: (p: Record<Service, Page>) => boolean) {
    return pollUntil(scrapeAll, done, { timeoutMs: 60_000, pollMs: 250 })
  }

  /** A few API requests (once it answers), so that its latency histogram has something to count. */
  async function askApi(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      const status = await pollUntil(
        async () => (await fetch(`${api}/healthz`)).status,
        (s) => s === 200,
      )
      expect(status).toBe(200)
    }
  }

  it('serves every documented name on each process, and the counters move with the replay', async () => {
    const half = relay.releasedThrough
    const last = (frames.at(-1) as CorpusFrame).seq
    await askApi(3)
    const first = await scrapeUntil(
      (p) =>
        p.firehose.value('circles_firehose_cursor') === half &&
        p.indexer.value('circles_indexer_group_lag_entries') === 0 &&
        p.indexer.value('circles_indexer_applied_total', { outcome: 'added' }) > 0 &&
        p.scheduler.value('circles_scheduler_jobs_completed_total', { queue: 'stats' }) > 0,
    )
    expect(first.firehose.value('circles_firehose_cursor')).toBe(half)

    for (const service of SERVICES) {
      const page = first[service]
      const missing = namesOf(TABLE, service).filter((n) => !page.declared.has(n))
      expect({ service, missing }).toEqual({ service, missing: [] })
      // And the other way: every name of ours it serves is in the table, under this service.
      const ours = [...page.declared.keys()].filter((n) => /^(circles|fart|bullmq)_/.test(n))
      const undocumented = ours.filter((n) => !namesOf(TABLE, service).includes(n))
      expect({ service, undocumented }).toEqual({ service, undocumented: [] })
    }

    relay.release()
    await askApi(3)
    const second = await scrapeUntil(
      (p) =>
        p.firehose.value('circles_firehose_cursor') === last &&
        p.indexer.value('circles_indexer_group_lag_entries') === 0 &&
        p.indexer.value('circles_indexer_events_total') ===
          p.firehose.value('circles_firehose_events_published_total') &&
        p.scheduler.value('circles_scheduler_jobs_completed_total', { queue: 'stats' }) >
          first.scheduler.value('circles_scheduler_jobs_completed_total', { queue: 'stats' }) &&
        p.scheduler.value('circles_index_interactions') > 0,
    )

    const moved = (service: Service, name: string, labels?: Record<string, string>) => ({
      name,
      labels,
      before: first[service].value(name, labels),
      after: second[service].value(name, labels),
    })
    const grew = [
      moved('firehose', 'circles_firehose_frames_total'),
      moved('firehose', 'circles_firehose_commits_total'),
      moved('firehose', 'circles_firehose_events_published_total'),
      moved('firehose', 'circles_firehose_interactions_total'),
      moved('firehose', 'circles_firehose_cursor'),
      moved('indexer', 'circles_indexer_events_total'),
      moved('indexer', 'circles_indexer_batches_total'),
      moved('indexer', 'circles_indexer_applied_total', { outcome: 'added' }),
      moved('indexer', 'circles_indexer_batch_duration_seconds_count'),
      moved('scheduler', 'circles_scheduler_jobs_completed_total', { queue: 'stats' }),
      moved('scheduler', 'circles_scheduler_job_duration_seconds_count', { queue: 'stats' }),
      moved('fart', 'fart_http_request_duration_seconds_count'),
      moved('fart', 'process_cpu_seconds_total'),
    ]
    expect(grew.filter((m) => !(m.after > m.before))).toEqual([])

    // Every event the firehose published was applied, and what the indexer's group shows agrees.
    expect(second.indexer.value('circles_indexer_events_total')).toBe(
      second.firehose.value('circles_firehose_events_published_total'),
    )
    expect(second.firehose.value('circles_firehose_state', { state: 'reading' })).toBe(1)
    const relayLag = second.firehose.value('circles_firehose_relay_lag_seconds')
    expect(relayLag).toBeGreaterThan(0)
    // Redis memory, and per interaction: the live window holds what the corpus made.
    const used = second.scheduler.value('circles_redis_used_memory_bytes')
    const interactions = second.scheduler.value('circles_index_interactions')
    expect(used).toBeGreaterThan(0)
    expect(second.scheduler.value('circles_redis_bytes_per_interaction')).toBeCloseTo(
      used / interactions,
      0,
    )
    expect(
      second.scheduler.value('circles_scheduler_rollup_lateness_seconds'),
    ).toBeGreaterThanOrEqual(0)
    // BullMQ's own export, one family for all queues (the stats queue completed jobs).
    expect(
      second.scheduler.value('bullmq_job_count', { queue: 'stats', state: 'completed' }),
    ).toBeGreaterThan(0)
    expect(second.fart.value('fart_pipeline', { metric: 'firehose_cursor' })).toBe(last)
  }, 180_000)
})
