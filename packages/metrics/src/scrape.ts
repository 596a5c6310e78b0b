import { Counter, Gauge, type Metric, type Registry } from 'prom-client'

// The services count in plain numbers on their hot paths (the firehose ~90k commits/s, the indexer ~90k
// interactions/s): prom-client validates and hashes labels on every inc. These helpers hand those numbers
// over at scrape time instead, so counting costs what it cost before there was a /metrics.

type Read<T> = () => T | Promise<T>

interface Named {
  registry: Registry
  name: string
  help: string
}

/** A counter whose value is read at scrape time (a running total the service keeps). */
export function scrapeCounter(m: Named, read: Read<number>): void {
  new Counter({
    name: m.name,
    help: m.help,
    registers: [m.registry],
    async collect() {
      const v = await read()
      this.reset()
      this.inc(Math.max(0, v))
    },
  })
}

/**
 * One counter per `[field, name, help]` row: `<prefix><name>_total`, read from `counters[field]` at scrape
 * time (the table of plain totals each service keeps).
 */
export function scrapeTotals<K extends PropertyKey>(
  registry: Registry,
  prefix: string,
  totals: readonly (readonly [K, string, string])[],
  counters: Record<K, unknown>,
): void {
  for (const [field, name, help] of totals) {
    scrapeCounter(
      { registry, name: `${prefix}${name}_total`, help },
      () => counters[field] as number,
    )
  }
}

type Labelled = Named & { label: string }

/** The options of a metric by one label whose values `read` gives at scrape time, put by `put`. */
function labelled<M extends { reset(): void }>(
  m: Labelled,
  read: Read<Record<string, number>>,
  put: (metric: M, labels: Record<string, string>, v: number) => void,
) {
  return {
    name: m.name,
    help: m.help,
    labelNames: [m.label],
    registers: [m.registry],
    async collect(this: M) {
      const values = await read()
      this.reset()
      for (const [k, v] of Object.entries(values)) put(this, { [m.label]: k }, v)
    },
  }
}

/** A counter by one label, read at scrape time as `{ labelValue: total }`. */
export function scrapeCounters(m: Labelled, read: Read<Record<string, number>>): void {
  new Counter(labelled<Counter>(m, read, (c, labels, v) => c.inc(labels, Math.max(0, v))))
}

/** A gauge by one label, read at scrape time as `{ labelValue: value }`. */
export function scrapeGauges(m: Labelled, read: Read<Record<string, number>>): void {
  new Gauge(labelled<Gauge>(m, read, (g, labels, v) => g.set(labels, v)))
}

/** A gauge read at scrape time; null (not known yet) is exposed as NaN, which no alert mistakes for 0. */
export function scrapeGauge(m: Named, read: Read<number | null>): void {
  new Gauge({
    name: m.name,
    help: m.help,
    registers: [m.registry],
    async collect() {
      this.set((await read()) ?? Number.NaN)
    },
  })
}

/**
 * A read shared by every metric of one scrape and kept `ttlMs` (a few seconds): several gauges from one
 * INFO or XINFO, and two Prometheus servers scraping at once, cost Redis one command. A failed read gives
 * null (the gauges show NaN) rather than failing the whole scrape.
 */
export function cachedRead<T>(read: () => Promise<T>, ttlMs: number): () => Promise<T | null> {
  let at = Number.NEGATIVE_INFINITY
  let value: Promise<T | null> = Promise.resolve(null)
  return () => {
    const now = Date.now()
    if (now - at >= ttlMs) {
      at = now
      value = read().catch(() => null)
    }
    return value
  }
}

export interface FastHistogram {
  /** Counts one observation; `values` in the order of `labelNames`. */
  observe(values: readonly string[], seconds: number): void
}

/**
 * A histogram counted in plain arrays and formatted by prom-client at scrape time. prom-client's own
 * Histogram validates and hashes the labels on every observation (~3 % of the CPU of a cached circle in
 * the API). Same exposition as a prom-client Histogram.
 */
export function fastHistogram(
  m: Named & { labelNames: readonly string[]; buckets: readonly number[] },
): FastHistogram {
  const { name, help, labelNames, buckets } = m
  interface Series {
    labels: Record<string, string>
    counts: number[]
    sum: number
    count: number
  }
  type Value = { labels: Record<string, string | number>; value: number; metricName: string }
  const series = new Map<string, Series>()
  const metric = {
    name,
    async get() {
      const values: Value[] = []
      const bucket = `${name}_bucket`
      for (const s of series.values()) {
        let cumulative = 0
        buckets.forEach((le, i) => {
          cumulative += s.counts[i] as number
          values.push({ labels: { ...s.labels, le }, value: cumulative, metricName: bucket })
        })
        values.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: bucket })
        values.push({ labels: s.labels, value: s.sum, metricName: `${name}_sum` })
        values.push({ labels: s.labels, value: s.count, metricName: `${name}_count` })
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' }
    },
  }
  m.registry.registerMetric(metric as unknown as Metric)
  return {
    observe(values, seconds) {
      const key = values.join('\u0000')
      let s = series.get(key)
      if (s === undefined) {
        const labels: Record<string, string> = {}
        labelNames.forEach((l, i) => {
          labels[l] = values[i] ?? ''
        })
        s = { labels, counts: buckets.map(() => 0), sum: 0, count: 0 }
        series.set(key, s)
      }
      s.sum += seconds
      s.count++
      for (let i = 0; i < buckets.length; i++) {
        if (seconds <= (buckets[i] as number)) {
          s.counts[i] = (s.counts[i] as number) + 1
          break
        }
      }
    },
  }
}
