import { parseExposition, type Sample } from '@circles/metrics'
import type { Check } from './doctor.js'

// The doctor's /metrics lines: each service's endpoint (docs/metrics.md) read once, when its port answers,
// and summed up in a sentence. A port that does not answer is no failure here (the Redis-side checks say
// whether a service runs; METRICS_PORT=0 turns an endpoint off): the last line lists them.

export type MetricsService = 'firehose' | 'indexer' | 'scheduler' | 'bot' | 'fart'

export interface MetricsTarget {
  service: MetricsService
  url: string
}

/** A roll-up later than this is a warning (it runs every ROLLUP_EVERY_MS, 5 min by default). */
const ROLLUP_LATE_WARN_S = 1800

/**
 * Where the services serve /metrics by default (the ports of docs/metrics.md) as seen from this host:
 * METRICS_HOST and HOST as the doctor's .env sets them (a wildcard address read as loopback).
 */
export function metricsTargets(env: Record<string, string | undefined>): MetricsTarget[] {
  const local = (h: string | undefined) =>
    !h || h === '0.0.0.0' || h === '::' ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h
  const host = local(env.METRICS_HOST)
  const instances = Math.max(1, Number(env.INDEXER_INSTANCES ?? 1) || 1)
  return [
    { service: 'firehose', url: `http://${host}:9101/metrics` },
    ...Array.from({ length: instances }, (_, i) => ({
      service: 'indexer' as const,
      url: `http://${host}:${9110 + i}/metrics`,
    })),
    { service: 'scheduler', url: `http://${host}:9102/metrics` },
    // The bot runs only where its account is set (BOT_DID).
    ...(env.BOT_DID ? [{ service: 'bot' as const, url: `http://${host}:9103/metrics` }] : []),
    { service: 'fart', url: `http://${local(env.HOST)}:${env.PORT || 8080}/metrics` },
  ]
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  let sum = 0
  let seen = false
  for (const s of samples) {
    if (s.name !== name) continue
    if (!Object.entries(labels).every(([k, v]) => s.labels[k] === v)) continue
    sum += s.value
    seen = true
  }
  return seen ? sum : Number.NaN
}

/** A counter's total: 0 when the family has no series yet (nothing counted). */
function total(samples: Sample[], name: string, labels?: Record<string, string>): number {
  const v = value(samples, name, labels)
  return Number.isNaN(v) ? 0 : v
}

function n(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : '?'
}

function mb(bytes: number): string {
  return Number.isFinite(bytes) ? `${(bytes / 1_048_576).toFixed(1)} MB` : '?'
}

/** One sentence (and a status) for a service's page. */
export function summarize(service: MetricsService, s: Sample[]): Omit<Check, 'name'> {
  switch (service) {
    case 'firehose': {
      const state = s.find((x) => x.name === 'circles_firehose_state' && x.value === 1)?.labels
        .state
      const lag = value(s, 'circles_firehose_relay_lag_seconds')
      return {
        status: 'ok',
        message: `${state ?? '?'}, cursor ${n(value(s, 'circles_firehose_cursor'))}, ${n(lag, 1)} s behind the relay, ${n(total(s, 'circles_firehose_commits_total'))} commits read, stream lag ${n(value(s, 'circles_firehose_stream_lag_entries'))} entries`,
      }
    }
    case 'indexer': {
      const batches = total(s, 'circles_indexer_batch_duration_seconds_count')
      const mean = (1000 * total(s, 'circles_indexer_batch_duration_seconds_sum')) / batches
      return {
        status: value(s, 'circles_indexer_backing_off') === 1 ? 'warn' : 'ok',
        message: `${n(total(s, 'circles_indexer_events_total'))} events applied in ${n(batches)} batches (mean ${n(mean, 1)} ms), group lag ${n(value(s, 'circles_indexer_group_lag_entries'))}, pending ${n(value(s, 'circles_indexer_group_pending_entries'))}${value(s, 'circles_indexer_backing_off') === 1 ? ', backing off (Redis refuses work)' : ''}`,
      }
    }
    case 'scheduler': {
      const failed = total(s, 'circles_scheduler_jobs_failed_total')
      const late = value(s, 'circles_scheduler_rollup_lateness_seconds')
      const perInteraction = value(s, 'circles_redis_bytes_per_interaction')
      const max = value(s, 'circles_redis_maxmemory_bytes')
      const warn = failed > 0 || late > ROLLUP_LATE_WARN_S
      return {
        status: warn ? 'warn' : 'ok',
        message: `${n(total(s, 'circles_scheduler_jobs_completed_total'))} jobs done, ${n(failed)} attempts failed${failed > 0 ? ' (see its log)' : ''}; roll-up ${n(late)} s late${late > ROLLUP_LATE_WARN_S ? ' (is its job failing?)' : ''}; Redis ${mb(value(s, 'circles_redis_used_memory_bytes'))} used of ${max === 0 ? 'no limit' : mb(max)}, ${Number.isFinite(perInteraction) ? `${n(perInteraction)} B per interaction` : 'bytes per interaction not known yet (no stats run over indexed hours)'}`,
      }
    }
    case 'bot':
      return {
        status: 'ok',
        message: `${n(total(s, 'circles_bot_mentions_total'))} mentions read, ${n(total(s, 'circles_bot_replies_posted_total'))} replies posted, ${n(total(s, 'circles_bot_refused_total'))} answered without a circle, ${n(total(s, 'circles_bot_failures_total'))} failures, ${n(total(s, 'circles_bot_session_refreshes_total'))} session refreshes`,
      }
    case 'fart': {
      const hits = total(s, 'fart_circle_cache_total', { outcome: 'hit' })
      const all = total(s, 'fart_circle_cache_total')
      return {
        status: 'ok',
        message: `${n(total(s, 'fart_http_request_duration_seconds_count'))} requests, circle cache hits ${all > 0 ? `${n((100 * hits) / all)} %` : '-'}`,
      }
    }
  }
}

/** Reads each target once (within `timeoutMs`): one line per page that answers, one for those that do not. */
export async function checkMetrics(targets: MetricsTarget[], timeoutMs = 2000): Promise<Check[]> {
  const silent: string[] = []
  const checks: Check[] = []
  const pages = await Promise.all(
    targets.map(async (t) => {
      try {
        const res = await fetch(t.url, { signal: AbortSignal.timeout(timeoutMs) })
        return { t, status: res.status, text: await res.text() }
      } catch {
        return { t, status: 0, text: '' }
      }
    }),
  )
  for (const { t, status, text } of pages) {
    const name = `metrics ${t.service}`
    if (status === 0) {
      silent.push(`${t.service} ${t.url}`)
      continue
    }
    let samples: Sample[] = []
    try {
      if (status === 200) samples = parseExposition(text)
    } catch {
      // not a metrics page: reported below as one that is not the service's
    }
    const prefix = t.service === 'fart' ? 'fart_' : `circles_${t.service}_`
    if (!samples.some((s) => s.name.startsWith(prefix))) {
      checks.push({
        name,
        status: 'warn',
        message: `${t.url} answers (HTTP ${status}) but not with the ${t.service}'s metrics: another process holds the port, or METRICS_PORT differs.`,
      })
      continue
    }
    checks.push({ name, ...summarize(t.service, samples) })
  }
  if (silent.length > 0) {
    checks.push({
      name: 'metrics endpoints',
      status: 'ok',
      message: `not answering: ${silent.join(', ')} (not running here, METRICS_PORT=0 or another port)`,
    })
  }
  return checks
}
