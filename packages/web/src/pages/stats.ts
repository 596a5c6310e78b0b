import type { PageShell } from '../layout.js'

// The network's statistics: top accounts per kind over 24 h, interactions per hour over 48 h, and the
// pipeline's health refreshed live. The ids are the contract with browser/stats.ts.

const KIND_CHOICES = [
  ['all', 'All kinds'],
  ['reply', 'Replies'],
  ['quote', 'Quotes'],
  ['repost', 'Reposts'],
  ['like', 'Likes'],
] as const

export const statsPage: PageShell = {
  page: 'stats',
  title: 'Network',
  body: `<h1>The network</h1>
<p id="status" role="status" aria-live="polite"></p>
<section aria-labelledby="h-health"><h2 id="h-health">Pipeline health</h2>
<dl id="health" class="tiles"></dl>
<p id="live-status" class="muted" role="status" aria-live="polite"></p></section>
<section aria-labelledby="h-hours"><h2 id="h-hours">Interactions per hour, last 48 hours</h2>
<div id="hours" class="chart" role="img" aria-label="Interactions per hour: no data yet"></div>
<div id="hours-table"></div>
<p id="hours-note" class="muted"></p></section>
<section aria-labelledby="h-top"><h2 id="h-top">Most active accounts, last 24 hours</h2>
<fieldset id="top-kind" class="segmented"><legend class="sr-only">Kind of interaction</legend>${KIND_CHOICES.map(
    ([k, label]) =>
      `<label><input type="radio" name="kind" value="${k}"${k === 'all' ? ' checked' : ''}> ${label}</label>`,
  ).join('')}</fieldset>
<div id="top" class="tops">
<div><h3 id="h-authors">Sent the most</h3><ol id="top-authors" class="people" aria-labelledby="h-authors"></ol></div>
<div><h3 id="h-subjects">Received the most</h3><ol id="top-subjects" class="people" aria-labelledby="h-subjects"></ol></div>
</div></section>`,
}
