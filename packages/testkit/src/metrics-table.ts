import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { declaredMetrics, parseExposition, type Sample } from '@circles/metrics'

// The documented metrics (docs/metrics.md, the one table) and what tests read off a /metrics page.

export type Service = 'firehose' | 'indexer' | 'scheduler' | 'fart' | 'bot'

export interface DocumentedMetric {
  name: string
  type: string
  service: Service | 'all'
}

/** The rows of the table in docs/metrics.md of the repository at `root`. */
export function documentedMetrics(root: string): DocumentedMetric[] {
  const text = readFileSync(join(root, 'docs/metrics.md'), 'utf8')
  const rows: DocumentedMetric[] = []
  for (const line of text.split('\n')) {
    const m = /^\|\s*`([a-z_:][a-z0-9_:]*)`\s*\|\s*(\w+)\s*\|[^|]*\|\s*(\w+)\s*\|/.exec(line)
    if (m) rows.push({ name: m[1] as string, type: m[2] as string, service: m[3] as Service })
  }
  return rows
}

/** The names one service must serve: its own rows and the rows of every process. */
export function namesOf(table: DocumentedMetric[], service: Service): string[] {
  return table.filter((r) => r.service === service || r.service === 'all').map((r) => r.name)
}

/**
 * The metric a series name in a query belongs to: `x_bucket`, `x_sum`, `x_count` are histogram `x`'s.
 * Null for a name the table does not hold.
 */
export function metricOf(table: DocumentedMetric[], series: string): string | null {
  if (table.some((r) => r.name === series)) return series
  const base = series.replace(/_(bucket|sum|count)$/, '')
  return table.some((r) => r.name === base && r.type === 'histogram') ? base : null
}

/** Every series name a PromQL expression reads (the project's prefixes and prom-client's). */
export function seriesIn(expr: string): string[] {
  return [...expr.matchAll(/\b((?:circles|fart|bullmq|process|nodejs)_[a-zA-Z0-9_]+)/g)].map(
    (m) => m[1] as string,
  )
}

export class Page {
  readonly samples: Sample[]
  readonly declared: Map<string, string>
  constructor(readonly text: string) {
    this.samples = parseExposition(text)
    this.declared = declaredMetrics(text)
  }

  /** The sum of a series' samples whose labels include `labels` (0 when none). */
  value(name: string, labels: Record<string, string> = {}): number {
    let sum = 0
    for (const s of this.samples) {
      if (s.name !== name) continue
      if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value
    }
    return sum
  }

  has(name: string): boolean {
    return this.samples.some((s) => s.name === name)
  }
}

export async function scrape(url: string): Promise<Page> {
  const res = await fetch(url)
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`)
  return new Page(await res.text())
}
