import type { PageShell } from '../layout.js'

// The circle explorer: search, controls (each mirrored in the URL), the drawn circle and the ranked list.
// The ids are the contract with browser/explorer.ts.

const WINDOWS = ['1h', '6h', '12h', '24h', '48h', '7d', '30d', '90d'] as const

function windowLabel(w: string): string {
  const n = Number.parseInt(w, 10)
  return w.endsWith('h') ? `${n} hour${n === 1 ? '' : 's'}` : `${n} days`
}

export const explorerPage: PageShell = {
  page: 'explorer',
  title: 'Circles',
  body: `<h1>Interaction circles</h1>
<form id="f" role="search" aria-label="Draw a circle">
<label for="actor" class="sr-only">Handle or DID</label>
<input id="actor" name="actor" list="suggestions" placeholder="handle or DID, e.g. alice.bsky.social" required maxlength="253" autocomplete="off" spellcheck="false">
<datalist id="suggestions"></datalist>
<label>Window <select id="window" name="window">${WINDOWS.map((w) => `<option value="${w}"${w === '48h' ? ' selected' : ''}>${windowLabel(w)}</option>`).join('')}</select></label>
<label>Direction <select id="direction" name="direction"><option value="both" selected>both ways</option><option value="sent">sent</option><option value="received">received</option></select></label>
<label>Weights <select id="weights" name="weights"><option value="" selected>default (reply 3, quote 3, repost 2, like 1)</option><option value="reply:1,quote:1,repost:1,like:1">every kind the same</option><option value="reply:5,quote:4,repost:2,like:1">conversation first</option></select></label>
<label class="check"><input type="checkbox" id="nolikes" name="nolikes"> no likes</label>
<button type="submit">Draw</button></form>
<p id="status" role="status" aria-live="polite"></p>
<div id="backfill" aria-live="polite" hidden><label for="bf-bar" id="bf-label"></label> <progress id="bf-bar" max="1"></progress></div>
<div id="out" hidden><figure id="circle"><div id="drawing" hidden></div>
<figcaption id="downloads"><a id="dl-png" download>Download PNG</a> · <a id="dl-svg" download>Download SVG</a> · <a id="to-history">History</a></figcaption></figure>
<ol id="list" aria-label="Ranked partners"></ol></div>`,
}
