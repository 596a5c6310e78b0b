import type { PageShell } from '../layout.js'

// An account's history: sent and received per kind per day, and how its top partners changed. The ids are
// the contract with browser/history.ts.

export const historyPage: PageShell = {
  page: 'history',
  title: 'History',
  body: `<h1>Account history</h1>
<form id="f" role="search" aria-label="Show an account's history">
<label for="actor" class="sr-only">Handle or DID</label>
<input id="actor" name="actor" placeholder="handle or DID" required maxlength="253" autocomplete="off" spellcheck="false">
<label>Days <select id="days" name="days"><option value="7">7</option><option value="30" selected>30</option><option value="90">90</option></select></label>
<button type="submit">Show</button></form>
<p id="status" role="status" aria-live="polite"></p>
<p id="circle-link" hidden><a id="to-circle" href="/">This account’s circle</a></p>
<div id="out" class="history-out" hidden><section aria-labelledby="h-chart"><h2 id="h-chart">Interactions per day</h2>
<p id="partial-note" class="muted legend-note" hidden></p>
<div id="chart" class="charts">
<figure><figcaption id="cap-sent">Sent</figcaption><div id="chart-sent" class="chart" role="img" aria-label="Sent per day"></div><div id="table-sent"></div></figure>
<figure><figcaption id="cap-received">Received</figcaption><div id="chart-received" class="chart" role="img" aria-label="Received per day"></div><div id="table-received"></div></figure>
</div></section>
<section aria-labelledby="h-partners"><h2 id="h-partners">Top partners by day</h2><div id="partners"></div></section></div>`,
}
