// Prometheus for every process: a registry with the process metrics, served on the process's own
// METRICS_PORT (config: @circles/config `metricsConfig`), and helpers that read the services' plain
// counters at scrape time. The metric names are documented in docs/metrics.md.

export type { Registry } from 'prom-client'
export {
  declaredMetrics,
  mergeExposition,
  parseExposition,
  type Sample,
} from './exposition.js'
export {
  cachedRead,
  type FastHistogram,
  fastHistogram,
  scrapeCounter,
  scrapeCounters,
  scrapeGauge,
  scrapeGauges,
  scrapeTotals,
} from './scrape.js'
export {
  createRegistry,
  type MetricsServer,
  type MetricsServerOptions,
  startMetricsServer,
} from './server.js'
