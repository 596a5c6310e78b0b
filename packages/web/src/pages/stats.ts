import type { PageShell } from '../layout.js'

// The network's statistics: top accounts per kind over 24 h, interactions per hour over 48 h, and the
// pipeline's health refreshed live. The ids are the contract with browser/stats.ts.

export const statsPage: PageShell = {
  page: 'stats',
  title: 'Network',
  body: `<h1>The network</h1>
<p id="status" role="status" aria-live="polite"></p>
<section aria-labelledby="h-health"><h2 id="h-health">Pipeline health</h2><dl id="health" class="tiles"></dl></section>
<section aria-labelledby="h-hours"><h2 id="h-hours">Interactions per hour, last 48 hours</h2><div id="hours" class="chart"></div></section>
<section aria-labelledby="h-top"><h2 id="h-top">Most active accounts, last 24 hours</h2><div id="top" class="tops"></div></section>`,
}
