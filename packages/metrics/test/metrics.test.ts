import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createLogger } from '@circles/logging'
import { afterEach, describe, expect, it } from 'vitest'
import {
  cachedRead,
  createRegistry,
  declaredMetrics,
  fastHistogram,
  mergeExposition,
  parseExposition,
  scrapeCounters,
  scrapeGauge,
  startMetricsServer,
} from '../src/index.js'

const log = createLogger('metrics-test')
let cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of cleanups.reverse()) await c()
  cleanups = []
})

describe('the metrics server', () => {
  it('serves the registry and the extra page on /metrics only, reading counters at scrape time', async () => {
    const registry = createRegistry()
    const counts: Record<string, number> = { a: 1 }
    scrapeCounters({ registry, name: 'x_total', help: 'x', label: 'k' }, () => counts)
    scrapeGauge({ registry, name: 'x_unknown', help: 'not known yet' }, () => null)
    const h = fastHistogram({
      registry,
      name: 'x_seconds',
      help: 'h',
      labelNames: ['q'],
      buckets: [0.1, 1],
    })
    h.observe(['a'], 0.5)
    h.observe(['a'], 5)
    const server = await startMetricsServer({
      registry,
      port: 0,
      host: '127.0.0.1',
      log,
      extra: async () => '# HELP y y\n# TYPE y gauge\ny 3',
    })
    cleanups.push(() => server.close())
    const url = `http://127.0.0.1:${server.port}`
    counts.a = 5
    counts.b = 2
    const text = await (await fetch(`${url}/metrics`)).text()
    const samples = parseExposition(text)
    const get = (name: string, labels: Record<string, string> = {}) =>
      samples.find(
        (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
      )?.value
    expect([get('x_total', { k: 'a' }), get('x_total', { k: 'b' }), get('y')]).toEqual([5, 2, 3])
    expect(get('x_unknown')).toBeNaN()
    expect([get('x_seconds_bucket', { le: '0.1' }), get('x_seconds_bucket', { le: '1' })]).toEqual([
      0, 1,
    ])
    expect([
      get('x_seconds_bucket', { le: '+Inf' }),
      get('x_seconds_sum'),
      get('x_seconds_count'),
    ]).toEqual([2, 5.5, 2])
    expect(declaredMetrics(text).get('process_cpu_seconds_total')).toBe('counter')
    expect((await fetch(`${url}/other`)).status).toBe(404)
    await server.close()
    await server.close()
    await expect(fetch(`${url}/metrics`)).rejects.toThrow()
  })

  it('goes on without the endpoint when the port is taken, and serves nothing for port null', async () => {
    const taken = createServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise((r) => taken.close(() => r())))
    const port = (taken.address() as AddressInfo).port
    const registry = createRegistry()
    const server = await startMetricsServer({ registry, port, host: '127.0.0.1', log })
    expect(server.port).toBeNull()
    await server.close()
    expect(
      (await startMetricsServer({ registry, port: null, host: '127.0.0.1', log })).port,
    ).toBeNull()
  })
})

describe('exposition', () => {
  it("merges BullMQ's per-queue pages into one family each", () => {
    const page = (q: string, n: number) =>
      `# HELP bullmq_job_count Jobs\n# TYPE bullmq_job_count gauge\nbullmq_job_count{queue="${q}", state="waiting"} ${n}\n# HELP bullmq_job_failed_total F\n# TYPE bullmq_job_failed_total counter\nbullmq_job_failed_total{queue="${q}"} 0`
    const merged = mergeExposition([page('a', 1), page('b', 2)])
    expect(merged.match(/# TYPE bullmq_job_count/g)).toHaveLength(1)
    expect(merged.split('\n').slice(0, 4)).toEqual([
      '# HELP bullmq_job_count Jobs',
      '# TYPE bullmq_job_count gauge',
      'bullmq_job_count{queue="a", state="waiting"} 1',
      'bullmq_job_count{queue="b", state="waiting"} 2',
    ])
    expect(parseExposition(merged).map((s) => [s.name, s.labels.queue, s.value])).toEqual([
      ['bullmq_job_count', 'a', 1],
      ['bullmq_job_count', 'b', 2],
      ['bullmq_job_failed_total', 'a', 0],
      ['bullmq_job_failed_total', 'b', 0],
    ])
  })

  it('reads escaped label values and refuses a line that is no sample', () => {
    expect(parseExposition('a{x="q\\"uote",y="b\\\\s"} 1.5\nb -Inf')).toEqual([
      { name: 'a', labels: { x: 'q"uote', y: 'b\\s' }, value: 1.5 },
      { name: 'b', labels: {}, value: Number.NEGATIVE_INFINITY },
    ])
    expect(() => parseExposition('not a sample')).toThrow(/not a Prometheus sample/)
  })

  it('shares one read among the metrics of a scrape, and reads again after the ttl', async () => {
    let reads = 0
    const read = cachedRead(async () => ++reads, 50)
    expect([await read(), await read()]).toEqual([1, 1])
    await new Promise((r) => setTimeout(r, 60))
    expect(await read()).toBe(2)
    const failing = cachedRead(async () => {
      throw new Error('down')
    }, 50)
    expect(await failing()).toBeNull()
  })
})
