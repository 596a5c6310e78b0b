import type { PageName, WebAssets } from './assets.js'

// The frame every page shares: a skip link, the site's navigation (the current page marked for screen
// readers), a theme switch, the page's own markup, and the privacy footer. Pages are server-rendered
// shells; their script fills them from the public API, so every page works with no inline script under
// the strict Content-Security-Policy.

export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

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

const NAV: readonly { page: PageName; href: string; label: string }[] = [
  { page: 'explorer', href: '/', label: 'Circles' },
  { page: 'history', href: '/history', label: 'History' },
  { page: 'stats', href: '/stats', label: 'Network' },
]

export interface PageShell {
  page: PageName
  title: string
  /** the page's own markup, inside <main> */
  body: string
}

export function renderPage(shell: PageShell, assets: WebAssets, serviceDid: string | null): string {
  const link = serviceDid
    ? `<a href="https://bsky.app/profile/${escapeHtml(serviceDid)}">block the service’s account</a>, or `
    : ''
  const nav = NAV.map(
    (n) =>
      `<a href="${n.href}"${n.page === shell.page ? ' aria-current="page"' : ''}>${n.label}</a>`,
  ).join('')
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${escapeHtml(shell.title)} · Bluesky interaction circles</title>
<meta name="color-scheme" content="dark light">
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${assets.css.path}">
<script src="${assets.scripts[shell.page].path}" type="module"></script></head>
<body><a class="skip" href="#main">Skip to content</a>
<header class="site"><nav aria-label="Site">${nav}</nav>
<button type="button" id="theme" class="ghost" aria-pressed="false">Light theme</button></header>
<main id="main" tabindex="-1">${shell.body}</main>
<footer id="privacy"><h2>Leave the circles</h2><p class="muted">${optOutWays(link)}</p></footer>
</body></html>`
}
