import {
  $,
  ApiError,
  type Counts,
  cleanActor,
  getJson,
  KINDS,
  markReady,
  nameOf,
  readUrl,
  setUpTheme,
  writeUrl,
} from './common.js'
import { setUpSuggestions } from './suggest.js'

// The circle explorer. Every control is mirrored in the URL (?actor=&window=&direction=&weights=&nolikes=1),
// so a drawn state can be shared, reloaded and walked with the browser's back button. While the account's
// history is being read from its repo (a backfill), a progress bar shows it and the page asks again every
// 2 s, drawing the circle anew once it is done. The drawing is the server's SVG put inline, so each member's
// disc is a link to that member's circle (followed here with pushState, like the ranked list's links).

interface Member {
  did: string
  handle?: string
  displayName?: string
  avatar?: string
  score: number
  sent: Counts
  received: Counts
}
interface Backfill {
  state: 'none' | 'queued' | 'running' | 'done' | 'failed'
  progress: number
  reason?: string
}
interface Circle {
  actor: { did: string; handle?: string; displayName?: string }
  window: string
  rings: { ring: number; members: Member[] }[]
  profilesComplete: boolean
  backfill: Backfill
}

setUpTheme()
const form = $<HTMLFormElement>('f')
const actorInput = $<HTMLInputElement>('actor')
const windowSel = $<HTMLSelectElement>('window')
const directionSel = $<HTMLSelectElement>('direction')
const weightsSel = $<HTMLSelectElement>('weights')
const nolikes = $<HTMLInputElement>('nolikes')
const status = $('status')
const out = $('out')
const drawingBox = $('drawing')
const list = $<HTMLOListElement>('list')
const box = $('backfill')
const bar = $<HTMLProgressElement>('bf-bar')
const label = $('bf-label')

/** The query the API takes for the controls' state. */
function query(): URLSearchParams {
  const q = new URLSearchParams({ window: windowSel.value })
  if (directionSel.value !== 'both') q.set('direction', directionSel.value)
  if (weightsSel.value) q.set('weights', weightsSel.value)
  if (nolikes.checked) q.set('nolikes', 'true')
  return q
}

function syncUrl(push: boolean): void {
  writeUrl(
    {
      actor: cleanActor(actorInput.value),
      window: windowSel.value === '48h' ? '' : windowSel.value,
      direction: directionSel.value === 'both' ? '' : directionSel.value,
      weights: weightsSel.value,
      nolikes: nolikes.checked ? '1' : '',
    },
    push,
  )
}

function pick(sel: HTMLSelectElement, value: string | null, fallback: string): void {
  sel.value = value && [...sel.options].some((o) => o.value === value) ? value : fallback
}

function fromUrl(): string {
  const u = readUrl()
  pick(windowSel, u.get('window'), '48h')
  pick(directionSel, u.get('direction'), 'both')
  pick(weightsSel, u.get('weights'), '')
  nolikes.checked = u.get('nolikes') === '1'
  actorInput.value = u.get('actor') ?? ''
  return actorInput.value
}

// Each draw gets a number: answers and polls for an earlier one are dropped.
let drawing = 0

function clear(message: string): void {
  status.textContent = message
  box.hidden = true
  out.hidden = true
  drawingBox.hidden = true
  list.replaceChildren()
}

async function draw(actor: string): Promise<void> {
  const n = ++drawing
  const a = encodeURIComponent(cleanActor(actor))
  if (!a) return clear('')
  const q = query()
  clear('Loading…')
  try {
    const body = await getJson<Circle>(`/v1/circles/${a}?${q}`)
    if (n === drawing) await show(body, a, q, n)
  } catch (err) {
    if (n === drawing) clear(explain(err))
  }
}

function explain(err: unknown): string {
  if (!(err instanceof ApiError)) return `Could not reach the service: ${String(err)}`
  if (err.error === 'OptedOut') {
    return 'This account has opted out: it has no circle here and appears in no one else’s.'
  }
  if (err.error === 'AccountUnavailable') return 'This account was deleted or is unavailable.'
  if (err.status === 404) return `Unknown account: ${err.message}`
  return err.message
}

const SVG_NS = 'http://www.w3.org/2000/svg'

// The drawing is fetched with no-store: the circle at a URL changes when the backfill ends. Its text is
// parsed as an SVG document and imported node by node, never set as HTML, and it is used only if the root is
// an <svg> (the page's CSP forbids scripts in it anyway).
async function drawSvg(url: string, label: string, n: number): Promise<void> {
  const res = await fetch(url, { cache: 'no-store' })
  if (!res.ok) return
  const text = await res.text()
  if (n !== drawing) return
  const doc = new DOMParser().parseFromString(text, 'image/svg+xml')
  const root = doc.documentElement
  if (root.localName !== 'svg' || root.namespaceURI !== SVG_NS) return
  const svg = document.importNode(root, true)
  svg.setAttribute('aria-label', label)
  drawingBox.replaceChildren(svg)
  drawingBox.hidden = false
}

/** Follows a member's link (drawing or list) here, unless the visitor asked for a new tab or window. */
function followMemberLink(e: MouseEvent): void {
  const link = (e.target as Element).closest('a')
  const href = link?.getAttribute('href')
  if (!href || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return
  e.preventDefault()
  history.pushState(null, '', href)
  void draw(fromUrl())
}

function showBackfill(b: Backfill, a: string, q: URLSearchParams, n: number): void {
  if (b.state === 'none' || b.state === 'done') {
    box.hidden = true
    return
  }
  box.hidden = false
  if (b.state === 'failed') {
    bar.hidden = true
    label.textContent = `Reading this account’s history from its repo failed (${b.reason ?? 'unknown'}): the circle shows only what was seen live.`
    return
  }
  bar.hidden = false
  if (b.state === 'queued') {
    bar.removeAttribute('value')
    label.textContent = 'Waiting to read this account’s history from its repo…'
  } else {
    const pct = Math.round(b.progress * 100)
    bar.value = b.progress
    bar.textContent = `${pct}%`
    label.textContent = `Reading this account’s history from its repo: ${pct}%`
  }
  setTimeout(() => void poll(a, q, n), 2000)
}

async function poll(a: string, q: URLSearchParams, n: number): Promise<void> {
  if (n !== drawing) return
  try {
    const body = await getJson<Circle>(`/v1/circles/${a}?${q}`, { cache: 'no-cache' })
    if (n !== drawing) return
    if (body.backfill.state === 'done') await show(body, a, q, n)
    else showBackfill(body.backfill, a, q, n)
  } catch {
    setTimeout(() => void poll(a, q, n), 2000)
  }
}

function bars(m: Member, max: number): HTMLElement {
  const wrap = document.createElement('span')
  wrap.className = 'bars'
  for (const side of ['sent', 'received'] as const) {
    const row = document.createElement('span')
    row.className = `bar-row ${side}`
    const total = KINDS.reduce((s, k) => s + m[side][k], 0)
    row.title = `${side}: ${KINDS.map((k) => `${m[side][k]} ${k}`).join(', ')}`
    for (const k of KINDS) {
      if (!m[side][k]) continue
      const seg = document.createElement('span')
      seg.className = `seg ${k}`
      seg.style.width = `${(100 * m[side][k]) / max}%`
      row.append(seg)
    }
    const words = document.createElement('span')
    words.className = 'sr-only'
    words.textContent = `${side} ${total}: ${KINDS.map((k) => `${m[side][k]} ${k}`).join(', ')}.`
    row.append(words)
    wrap.append(row)
  }
  return wrap
}

function memberItem(m: Member, ring: number, max: number): HTMLLIElement {
  const li = document.createElement('li')
  const link = document.createElement('a')
  const u = readUrl()
  u.set('actor', m.handle ?? m.did)
  link.href = `/?${u}`
  link.textContent = nameOf(m)
  const meta = document.createElement('span')
  meta.className = 'muted'
  meta.textContent = ` ring ${ring} · score ${m.score}`
  li.append(link, meta, bars(m, max))
  return li
}

async function show(body: Circle, a: string, q: URLSearchParams, n: number): Promise<void> {
  const members = body.rings.flatMap((r) => r.members.map((m) => ({ m, ring: r.ring })))
  const who = body.actor.handle ?? body.actor.did
  status.textContent =
    members.length === 0
      ? `${who}: no interactions over ${body.window} yet.`
      : `${who}: ${members.length} people over ${body.window}${body.profilesComplete ? '' : ' (profiles unavailable right now)'}`
  const max = Math.max(
    1,
    ...members.flatMap(({ m }) =>
      (['sent', 'received'] as const).map((s) => KINDS.reduce((t, k) => t + m[s][k], 0)),
    ),
  )
  list.replaceChildren(...members.map(({ m, ring }) => memberItem(m, ring, max)))
  const label = `Interaction circle of ${who}: ${members
    .slice(0, 8)
    .map(({ m }) => nameOf(m))
    .join(', ')}`
  $<HTMLAnchorElement>('dl-png').href = `/v1/circles/${a}.png?${q}`
  $<HTMLAnchorElement>('dl-svg').href = `/v1/circles/${a}.svg?${q}`
  $<HTMLAnchorElement>('to-history').href = `/history?actor=${a}`
  out.hidden = members.length === 0
  showBackfill(body.backfill, a, q, n)
  if (members.length > 0) await drawSvg(`/v1/circles/${a}.svg?${q}`, label, n)
  markReady()
}

form.addEventListener('submit', (e) => {
  e.preventDefault()
  syncUrl(true)
  void draw(actorInput.value)
})
for (const control of [windowSel, directionSel, weightsSel, nolikes]) {
  control.addEventListener('change', () => {
    if (!cleanActor(actorInput.value)) return
    syncUrl(true)
    void draw(actorInput.value)
  })
}
drawingBox.addEventListener('click', followMemberLink)
list.addEventListener('click', followMemberLink)
setUpSuggestions(actorInput, 'suggestions', () => {
  syncUrl(true)
  void draw(actorInput.value)
})
addEventListener('popstate', () => void draw(fromUrl()))
const start = fromUrl()
if (start) void draw(start)
