import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'

// A one-screen page: type a handle, see the drawn circle (the server's SVG) and the ranked list. No inline
// script, so the default strict Content-Security-Policy from helmet holds.

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
<div id="out"><img id="img" alt="" width="560" height="560" hidden><ol id="list"></ol></div>
<footer id="privacy"><h2>Leave the circles</h2><p class="muted">${optOutWays(link)}</p></footer>
</main><script src="/app.js" type="module"></script></body></html>`
}

const CSS = `body{font-family:system-ui,sans-serif;background:#0f1620;color:#dde4ea;margin:0}main{max-width:1100px;margin:auto;padding:1rem}
form{display:flex;gap:.5rem;flex-wrap:wrap}input,select,button{font-size:1rem;padding:.4rem}#actor{flex:1;min-width:14rem}
#out{display:flex;gap:1.5rem;flex-wrap:wrap;margin-top:1rem}#list{flex:1;min-width:16rem}#list li{margin:.2rem 0}
#list img{width:20px;height:20px;border-radius:50%;vertical-align:middle;margin-right:.3rem}.muted{color:#8899aa}
footer{margin-top:2rem;max-width:60rem}footer h2{font-size:1rem}a{color:#8cc4ff}`

const JS = `const $ = (id) => document.getElementById(id)
const form = $('f'), status = $('status'), img = $('img'), list = $('list')
async function draw(actor) {
  const q = new URLSearchParams({ window: $('window').value })
  if ($('nolikes').checked) q.set('nolikes', 'true')
  const a = encodeURIComponent(actor.trim().replace(/^@/, ''))
  status.textContent = 'Loading…'
  list.replaceChildren()
  img.hidden = true
  const res = await fetch('/v1/circles/' + a + '?' + q)
  const body = await res.json()
  if (body.error === 'OptedOut') { status.textContent = 'This account has opted out: it has no circle here and appears in no one else’s.'; return }
  if (!res.ok) { status.textContent = body.message || ('Error ' + res.status); return }
  const n = body.rings.reduce((s, r) => s + r.members.length, 0)
  status.textContent = (body.actor.handle || body.actor.did) + ': ' + n + ' people over ' + body.window +
    (body.profilesComplete ? '' : ' (profiles unavailable right now)')
  img.src = '/v1/circles/' + a + '.svg?' + q
  img.alt = 'interaction circle of ' + (body.actor.handle || body.actor.did)
  img.hidden = false
  for (const ring of body.rings) for (const m of ring.members) {
    const li = document.createElement('li')
    if (m.avatar) { const i = document.createElement('img'); i.src = m.avatar; i.alt = ''; li.append(i) }
    li.append(m.displayName || m.handle || m.did)
    const s = document.createElement('span'); s.className = 'muted'
    s.textContent = ' ring ' + ring.ring + ' · score ' + m.score
    li.append(s)
    list.append(li)
  }
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
