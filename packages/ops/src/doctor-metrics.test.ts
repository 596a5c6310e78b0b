import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createLogger } from '@circles/logging'
import { createRegistry, scrapeCounter, scrapeGauge, startMetricsServer } from '@circles/metrics'
import { freePort } from '@circles/testkit'
import { afterEach, describe, expect, it } from 'vitest'
import { checkMetrics, metricsTargets } from './doctor-metrics.js'

const log = createLogger('doctor-metrics-test')
let cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.reverse()) await c()
  cleanups = []
})

describe('the doctor reads /metrics', () => {
  it('sums up a page that answers, warns about a port that answers for another, lists the silent ones', async () => {
    const registry = createRegistry()
    scrapeGauge(
      { registry, name: 'circles_scheduler_rollup_lateness_seconds', help: 'x' },
      () => 7200,
    )
    scrapeCounter({ registry, name: 'circles_scheduler_jobs_failed_total', help: 'x' }, () => 0)
    scrapeGauge(
      { registry, name: 'circles_redis_used_memory_bytes', help: 'x' },
      () => 3 * 1_048_576,
    )
    scrapeGauge({ registry, name: 'circles_redis_maxmemory_bytes', help: 'x' }, () => 0)
    const scheduler = await startMetricsServer({ registry, port: 0, host: '127.0.0.1', log })
    cleanups.push(() => scheduler.close())
    const other = createServer((_req, res) => res.end('hello'))
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise((r) => other.close(() => r())))
    const silent = await freePort()

    const checks = await checkMetrics([
      { service: 'scheduler', url: `http://127.0.0.1:${scheduler.port}/metrics` },
      {
        service: 'firehose',
        url: `http://127.0.0.1:${(other.address() as AddressInfo).port}/metrics`,
      },
      { service: 'indexer', url: `http://127.0.0.1:${silent}/metrics` },
    ])
    expect(checks.map((c) => [c.name, c.status])).toEqual([
      ['metrics scheduler', 'warn'],
      ['metrics firehose', 'warn'],
      ['metrics endpoints', 'ok'],
    ])
    expect(checks[0]?.message).toMatch(/roll-up 7200 s late .*Redis 3\.0 MB used of no limit/)
    expect(checks[1]?.message).toMatch(/not with the firehose's metrics/)
    expect(checks[2]?.message).toContain(`indexer http://127.0.0.1:${silent}/metrics`)
  })

  it('knows the default ports, one per indexer instance, and reads a wildcard host as loopback', () => {
    const targets = metricsTargets({
      METRICS_HOST: '0.0.0.0',
      INDEXER_INSTANCES: '2',
      PORT: '8081',
    })
    expect(targets.map((t) => t.url)).toEqual([
      'http://127.0.0.1:9101/metrics',
      'http://127.0.0.1:9110/metrics',
      'http://127.0.0.1:9111/metrics',
      'http://127.0.0.1:9102/metrics',
      'http://127.0.0.1:8081/metrics',
    ])
    // The bot's page only where the bot runs.
    const withBot = metricsTargets({ BOT_DID: 'did:plc:abcdefghijklmnopqrstuvwx' })
    expect(withBot.map((t) => `${t.service} ${t.url}`)).toContain(
      'bot http://127.0.0.1:9103/metrics',
    )
  })
})
