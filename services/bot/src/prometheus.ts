import { createRegistry, type Registry, scrapeCounters, scrapeTotals } from '@circles/metrics'
import type { BotCounters } from './metrics.js'

// The bot's /metrics (names in docs/metrics.md): its plain counters (metrics.ts), read when Prometheus
// scrapes, as every service's are.

type Total = Exclude<keyof BotCounters, 'refused'>

/** Counters whose Prometheus name is `circles_bot_<name>_total`, with the help text. */
const TOTALS: [Total, string, string][] = [
  ['mentionsSeen', 'mentions', 'Mentions of the bot read from the stream'],
  ['repliesPosted', 'replies_posted', 'Replies written to the bot’s PDS'],
  ['repliesFound', 'replies_found', 'Replies found already written (a retry after a crash)'],
  ['repliesConfirmed', 'replies_confirmed', 'Replies whose own post came back on the firehose'],
  ['failures', 'failures', 'Mentions whose handling failed and will be retried'],
  ['badLines', 'bad_lines', 'Mention entries that did not decode (skipped)'],
  ['logins', 'logins', 'Logins (createSession) to the bot’s PDS'],
  ['refreshes', 'session_refreshes', 'Session refreshes (refreshSession)'],
]

export function createBotRegistry(counters: BotCounters): Registry {
  const registry = createRegistry()
  scrapeTotals(registry, 'circles_bot_', TOTALS, counters)
  scrapeCounters(
    {
      registry,
      name: 'circles_bot_refused_total',
      help: 'Mentions answered without a circle, by reason (too_old, author_rate, global_rate, opted_out, help, no_circle)',
      label: 'reason',
    },
    () => counters.refused,
  )
  return registry
}
