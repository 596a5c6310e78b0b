import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { documentedMetrics, havePromtool, metricOf, seriesIn } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { metricsTargets } from '../src/doctor-metrics.js'
import { repoRoot } from '../src/paths.js'

// The monitoring files (ops/, the compose profile) against the one table of metric names: a dashboard
// panel or an alert that reads a name no service serves would show nothing, silently. promtool, when
// installed (`apt-get install prometheus`), checks the Prometheus files as Prometheus itself would.

const ROOT = repoRoot()
const TABLE = documentedMetrics(ROOT)
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8')

/** Series names in `expr` that the table does not hold. */
function unknownSeries(expr: string): string[] {
  return seriesIn(expr).filter((s) => metricOf(TABLE, s) === null)
}

interface Panel {
  id: number
  type: string
  title: string
  datasource?: { type: string; uid: string }
  gridPos: { h: number; w: number; x: number; y: number }
  targets?: { refId: string; expr: string; datasource?: { uid: string } }[]
}

const withPromtool = havePromtool('the monitoring files test (promtool)')

function promtool(...args: string[]): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: ROOT, encoding: 'utf8' })
  return { status: r.status, output: `${r.stdout}${r.stderr}` }
}

describe('monitoring files', () => {
  it('the table is read whole: names unique, every service and type known', () => {
    expect(TABLE.length).toBeGreaterThan(50)
    expect(new Set(TABLE.map((r) => r.name)).size).toBe(TABLE.length)
    for (const r of TABLE) {
      expect(['firehose', 'indexer', 'scheduler', 'bot', 'fart', 'all']).toContain(r.service)
      expect(['counter', 'gauge', 'histogram']).toContain(r.type)
    }
  })

  it('the dashboard: well-formed panels on the provisioned data source, reading documented names only', () => {
    const dash = JSON.parse(read('ops/grafana/dashboards/bsky-circles.json'))
    const source = parse(read('ops/grafana/provisioning/datasources/prometheus.yml'))
    const uid = source.datasources[0].uid as string
    const panels = dash.panels as Panel[]
    expect(dash.uid).toBe('bsky-circles')
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length)
    const unknown: string[] = []
    for (const p of panels) {
      expect(p.type, p.title).toBe('timeseries')
      expect(p.datasource?.uid, p.title).toBe(uid)
      const { x, y, w, h } = p.gridPos
      expect([x, y, w, h].every(Number.isInteger) && x >= 0 && x + w <= 24 && h > 0, p.title).toBe(
        true,
      )
      expect(p.targets?.length, p.title).toBeGreaterThan(0)
      const refIds = (p.targets ?? []).map((t) => t.refId)
      expect(new Set(refIds).size, p.title).toBe(refIds.length)
      for (const t of p.targets ?? []) {
        expect(seriesIn(t.expr).length, `${p.title}: ${t.expr}`).toBeGreaterThan(0)
        unknown.push(...unknownSeries(t.expr).map((s) => `${p.title}: ${s}`))
      }
    }
    expect(unknown).toEqual([])
    // What the dashboard is for (issue #19): each of these has its panel.
    const titles = panels.map((p) => p.title)
    for (const want of [
      'Ingest rate',
      'Relay lag',
      'Stream lag',
      'Indexer rate',
      'Redis memory',
      'Bytes per interaction',
      'API latency',
      'API circle cache hit ratio',
      'Job durations',
      'Job failures',
    ]) {
      expect(titles).toContain(want)
    }
    const provider = parse(read('ops/grafana/provisioning/dashboards/bsky-circles.yml'))
    expect(provider.providers[0].options.path).toBe('/var/lib/grafana/dashboards')
  })

  it('the alert rules parse and read documented names only', () => {
    const rules = parse(read('ops/prometheus/alerts.yml'))
    const all = rules.groups.flatMap((g: { rules: unknown[] }) => g.rules) as {
      alert: string
      expr: string
      labels: { severity: string }
      annotations: { summary: string }
    }[]
    const unknown = all.flatMap((r) => unknownSeries(r.expr).map((s) => `${r.alert}: ${s}`))
    expect(unknown).toEqual([])
    for (const r of all) {
      expect(seriesIn(r.expr).length, r.alert).toBeGreaterThan(0)
      expect(['warning', 'critical'], r.alert).toContain(r.labels.severity)
      expect(r.annotations.summary, r.alert).toBeTruthy()
    }
    expect(all.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'RelayStalled',
        'StreamLagGrowing',
        'RedisMemoryHigh',
        'RollupLate',
        'JobFailures',
      ]),
    )
  })

  it('the scrape config reaches each service on the port it serves by default', () => {
    const config = parse(read('ops/prometheus/prometheus.yml'))
    for (const f of config.rule_files as string[]) {
      expect(existsSync(join(ROOT, 'ops/prometheus', f)), f).toBe(true)
    }
    const ports = Object.fromEntries(
      (
        config.scrape_configs as {
          job_name: string
          static_configs?: { targets: string[] }[]
          dns_sd_configs?: { port: number }[]
        }[]
      ).map((j) => [
        j.job_name,
        j.static_configs
          ? Number(j.static_configs[0]?.targets[0]?.split(':')[1])
          : j.dns_sd_configs?.[0]?.port,
      ]),
    )
    // The doctor's idea of the defaults (the ports the services' configs give themselves, docs/metrics.md).
    const defaults = Object.fromEntries(
      metricsTargets({}).map((t) => [t.service, Number(new URL(t.url).port)]),
    )
    expect(ports).toEqual(defaults)
  })

  it('the compose profile runs pinned Prometheus and Grafana with these files', () => {
    // With YAML merge keys: the services take the shared `x-service` block with `<<`.
    const compose = parse(read('docker-compose.yml'), { merge: true })
    for (const name of ['prometheus', 'grafana']) {
      const s = compose.services[name]
      expect(s.profiles, name).toEqual(['monitoring'])
      expect(s.image, name).toMatch(/:v?\d+\.\d+\.\d+$/)
      for (const v of s.volumes as string[]) {
        const source = v.split(':')[0] as string
        if (source.startsWith('./')) expect(existsSync(join(ROOT, source)), v).toBe(true)
      }
      // Loopback only, like every other published port of the file.
      for (const p of s.ports as string[]) expect(p.startsWith('127.0.0.1:'), p).toBe(true)
    }
    expect(compose.services.grafana.environment.GF_AUTH_ANONYMOUS_ORG_ROLE).toBe('Viewer')
    for (const name of ['firehose', 'indexer', 'scheduler']) {
      expect(compose.services[name].environment.METRICS_HOST, name).toBe('0.0.0.0')
    }
  })

  it.runIf(withPromtool)(
    'promtool accepts the scrape config and the rules, and the rules fire as meant',
    () => {
      const config = promtool('check', 'config', 'ops/prometheus/prometheus.yml')
      expect(config.status, config.output).toBe(0)
      const rules = promtool('check', 'rules', 'ops/prometheus/alerts.yml')
      expect(rules.status, rules.output).toBe(0)
      // Synthetic series: each alert fires where it should (and only there), with its texts.
      const unit = promtool('test', 'rules', 'ops/prometheus/alerts.test.yml')
      expect(unit.status, unit.output).toBe(0)
      // Every panel's query is valid PromQL: as recording rules, promtool parses them.
      const dash = JSON.parse(read('ops/grafana/dashboards/bsky-circles.json'))
      const record = (dash.panels as Panel[]).flatMap((p) =>
        (p.targets ?? []).map((t) => ({
          record: `dashboard:panel${p.id}:${t.refId}`,
          expr: t.expr,
        })),
      )
      const dir = mkdtempSync(join(tmpdir(), 'dashboard-rules-'))
      try {
        const file = join(dir, 'panels.yml')
        writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: record }] }))
        const panels = promtool('check', 'rules', file)
        expect(panels.status, panels.output).toBe(0)
        expect(panels.output).toContain(`${record.length} rules found`)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  )
})
