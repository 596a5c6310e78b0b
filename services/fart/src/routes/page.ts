import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

// A one-screen page: type a handle, see the drawn circle (the server's SVG) and the ranked list. No inline
// script, so the default strict Content-Security-Policy from helmet holds. While the account's history is
// being read from its repo (a backfill), a progress bar shows it and the page asks again every 2 s, drawing
// the circle anew once it is done.

/** How an account leaves; `block` is the first way (empty when there is no service account to block). */
function optOutWays(block: string): string {
  return (
    `Any account can leave without asking anyone: ${block}turn on Bluesky’s “Discourage apps from ` +
    'showing my account to logged-out users” (it puts the !no-unauthenticated label on the profile). ' +
    'Within seconds the account has no circle, appears in no one else’s circles, interactions or stats, ' +
    'and what was stored of its interactions is deleted; nothing is kept while it is out. Undo it to ' +
    'come back: only what happens from then on counts.'
  )
}

/** The same for /docs (plain text). */
export function optOutText(serviceDid: string | null): string {
  return optOutWays(serviceDid ? `block the service’s account (${serviceDid}), or ` : '')
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

function pageHtml(serviceDid: string | null): string {
  const link = serviceDid
    ? `<a href="https://bsky.app/profile/${escapeHtml(serviceDid)}">block the service’s account</a>, or `
    : ''
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Bluesky interaction circles</title><link rel="stylesheet" href="/app.css"></head>
<body><main>
<h1>Interaction circles</h1>
<form id="f"><input id="actor" name="actor" placeholder="handle or DID, e.g. alice.bsky.social" required maxlength="253" autocomplete="off">
<select id="window" name="window"><option value="24h">24 hours</option><option value="48h" selected>48 hours</option><option value="7d">7 days</option><option value="30d">30 days</option></select>
<label><input type="checkbox" id="nolikes"> no likes</label><button type="submit">Draw</button></form>
<p id="status" role="status"></p>
<div id="backfill" aria-live="polite" hidden><label for="bf-bar" id="bf-label"></label> <progress id="bf-bar" max="1"></progress></div>
<div id="out"><img id="img" alt="" width="560" height="560" hidden><ol id="list"></ol></div>
<footer id="privacy"><h2>Leave the circles</h2><p class="muted">${optOutWays(link)}</p></footer>
</main><script src="/app.js" type="module"></script></body></html>`
}

const CSS = `body{font-family:system-ui,sans-serif;background:#0f1620;color:#dde4ea;margin:0}main{max-width:1100px;margin:auto;padding:1rem}
form{display:flex;gap:.5rem;flex-wrap:wrap}input,select,button{font-size:1rem;padding:.4rem}#actor{flex:1;min-width:14rem}
#out{display:flex;gap:1.5rem;flex-wrap:wrap;margin-top:1rem}#list{flex:1;min-width:16rem}#list li{margin:.2rem 0}
#list img{width:20px;height:20px;border-radius:50%;vertical-align:middle;margin-right:.3rem}.muted{color:#8899aa}
footer{margin-top:2rem;max-width:60rem}footer h2{font-size:1rem}a{color:#8cc4ff}
#backfill{display:flex;gap:.6rem;align-items:center;flex-wrap:wrap}#backfill[hidden]{display:none}#bf-bar{width:16rem}`

const JS = `const $ = (id) => document.getElementById(id)
const form = $('f'), status = $('status'), img = $('img'), list = $('list')
const box = $('backfill'), bar = $('bf-bar'), label = $('bf-label')
// Each draw gets a number: a poll started for an earlier one stops.
let drawing = 0
async function draw(actor) {
  const n = ++drawing
  const q = new URLSearchParams({ window: $('window').value })
  if ($('nolikes').checked) q.set('nolikes', 'true')
  const a = encodeURIComponent(actor.trim().replace(/^@/, ''))
  status.textContent = 'Loading…'
  box.hidden = true
  list.replaceChildren()
  img.hidden = true
  const res = await fetch('/v1/circles/' + a + '?' + q)
  const body = await res.json()
  if (n !== drawing) return
  if (body.error === 'OptedOut') { status.textContent = 'This account has opted out: it has no circle here and appears in no one else’s.'; return }
  if (!res.ok) { status.textContent = body.message || ('Error ' + res.status); return }
  await show(body, a, q, n)
}
// The drawing is fetched rather than named by its URL: a browser shows an image it already has for a URL
// it saw, and the circle at that URL changes when the backfill ends.
async function drawImage(url, n) {
  const res = await fetch(url, { cache: 'no-store' })
  if (!res.ok) return
  const blob = await res.blob()
  const data = await new Promise((resolve, reject) => {
    const r = new FileReader()
    r.onload = () => resolve(r.result)
    r.onerror = () => reject(r.error)
    r.readAsDataURL(blob)
  })
  if (n !== drawing) return
  img.src = data
  img.hidden = false
}
function showBackfill(b, a, q, n) {
  if (!b || b.state === 'none' || b.state === 'done') { box.hidden = true; return }
  box.hidden = false
  if (b.state === 'failed') {
    bar.hidden = true
    label.textContent = 'Reading this account’s history from its repo failed (' + (b.reason || 'unknown') + '): the circle shows only what was seen live.'
    return
  }
  bar.hidden = false
  if (b.state === 'queued') {
    bar.removeAttribute('value')
    label.textContent = 'Waiting to read this account’s history from its repo…'
  } else {
    const pct = Math.round(b.progress * 100)
    bar.value = b.progress
    bar.textContent = pct + '%'
    label.textContent = 'Reading this account’s history from its repo: ' + pct + '%'
  }
  schedule(a, q, n)
}
function schedule(a, q, n) {
  setTimeout(() => poll(a, q, n).catch(() => schedule(a, q, n)), 2000)
}
async function poll(a, q, n) {
  if (n !== drawing) return
  const res = await fetch('/v1/circles/' + a + '?' + q, { cache: 'no-cache' })
  if (n !== drawing) return
  if (!res.ok) throw new Error('HTTP ' + res.status)
  const body = await res.json()
  if (body.backfill && body.backfill.state === 'done') await show(body, a, q, n)
  else showBackfill(body.backfill, a, q, n)
}
async function show(body, a, q, n) {
  const count = body.rings.reduce((s, r) => s + r.members.length, 0)
  status.textContent = (body.actor.handle || body.actor.did) + ': ' + count + ' people over ' + body.window +
    (body.profilesComplete ? '' : ' (profiles unavailable right now)')
  img.alt = 'interaction circle of ' + (body.actor.handle || body.actor.did)
  list.replaceChildren()
  for (const ring of body.rings) for (const m of ring.members) {
    const li = document.createElement('li')
    if (m.avatar) { const i = document.createElement('img'); i.src = m.avatar; i.alt = ''; li.append(i) }
    li.append(m.displayName || m.handle || m.did)
    const s = document.createElement('span'); s.className = 'muted'
    s.textContent = ' ring ' + ring.ring + ' · score ' + m.score
    li.append(s)
    list.append(li)
  }
  showBackfill(body.backfill, a, q, n)
  await drawImage('/v1/circles/' + a + '.svg?' + q, n)
}
form.addEventListener('submit', (e) => { e.preventDefault(); draw($('actor').value).catch((err) => { status.textContent = String(err) }) })
const start = new URLSearchParams(location.search).get('actor')
if (start) { $('actor').value = start; draw(start).catch((err) => { status.textContent = String(err) }) }
`

/** `documentHeaders`: the security headers of a document (CSP and the rest), for the HTML page. */
export function pageRoutes(
  documentHeaders: Record<string, string>,
  serviceDid: string | null,
): FastifyPluginAsyncTypebox {
  const HTML = pageHtml(serviceDid)
  return async (app) => {
    const hide = { hide: true }
    app.get('/', { schema: hide }, async (_req, reply) =>
      reply.headers(documentHeaders).type('text/html; charset=utf-8').send(HTML),
    )
    app.get('/app.js', { schema: hide }, async (_req, reply) =>
      reply.type('text/javascript; charset=utf-8').send(JS),
    )
    app.get('/app.css', { schema: hide }, async (_req, reply) =>
      reply.type('text/css; charset=utf-8').send(CSS),
    )
  }
}
