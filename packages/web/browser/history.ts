import { type Chart, type ChartSeries, lineChart, splitPartial, srTable } from './chart.js'
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
import { showPartners } from './history-partners.js'

// An account's history (?actor=&days=7|30|90): sent and received per kind per day as two charts, the days
// the roll-up has not folded whole drawn dashed on a shaded background, and its top partners day by day.

export interface Partner {
  did: string
  handle?: string
  displayName?: string
  sent: Counts
  received: Counts
}
export interface Day {
  date: string
  complete: boolean
  foldedHours: number
  sent: Counts
  received: Counts
  partners: Partner[]
}
interface History {
  actor: { did: string; handle?: string; displayName?: string }
  days: number
  top: number
  completeThrough: string | null
  profilesComplete: boolean
  history: Day[]
}

const DAYS = ['7', '30', '90']
const DAY_S = 86_400
const COLOURS: Record<string, string> = {
  reply: '--reply',
  quote: '--quote',
  repost: '--repost',
  like: '--like',
}

setUpTheme()
const form = $<HTMLFormElement>('f')
const actorInput = $<HTMLInputElement>('actor')
const daysSel = $<HTMLSelectElement>('days')
const status = $('status')
const out = $('out')
const circleLink = $('circle-link')
const charts: Partial<Record<'sent' | 'received', Chart>> = {}
let loading = 0

function fromUrl(): string {
  const u = readUrl()
  const d = u.get('days')
  daysSel.value = d && DAYS.includes(d) ? d : '30'
  actorInput.value = u.get('actor') ?? ''
  return cleanActor(actorInput.value)
}

function syncUrl(push: boolean): void {
  writeUrl(
    { actor: cleanActor(actorInput.value), days: daysSel.value === '30' ? '' : daysSel.value },
    push,
  )
}

function explain(err: unknown): string {
  if (!(err instanceof ApiError))
    return 'The service is unreachable right now. Try again in a moment.'
  if (err.error === 'OptedOut') {
    return 'This account has opted out: it has no history here and appears in no one else’s.'
  }
  if (err.error === 'AccountUnavailable') return 'This account was deleted or is unavailable.'
  if (err.status === 404) return `Unknown account: ${err.message}`
  return err.message
}

function clear(message: string): void {
  status.textContent = message
  out.hidden = true
  circleLink.hidden = true
}

async function load(actor: string): Promise<void> {
  const n = ++loading
  if (!actor) {
    clear('')
    return markReady()
  }
  clear('Loading…')
  try {
    const h = await getJson<History>(
      `/v1/accounts/${encodeURIComponent(actor)}/history?days=${daysSel.value}`,
    )
    if (n === loading) show(h)
  } catch (err) {
    if (n === loading) clear(explain(err))
  }
  if (n === loading) markReady()
}

const total = (c: Counts) => KINDS.reduce((s, k) => s + c[k], 0)

function show(h: History): void {
  const who = h.actor.handle ?? h.actor.did
  const link = $<HTMLAnchorElement>('to-circle')
  link.href = `/?actor=${encodeURIComponent(who)}`
  link.textContent = `${nameOf(h.actor)}’s circle`
  circleLink.hidden = false
  const sent = h.history.reduce((s, d) => s + total(d.sent), 0)
  const received = h.history.reduce((s, d) => s + total(d.received), 0)
  if (sent + received === 0) {
    // The daily history holds only the hours the roll-up has folded; the newest are in the circle.
    const since =
      h.completeThrough === null
        ? 'no day folded whole yet'
        : `days complete through ${h.completeThrough}`
    status.textContent = `${who}: no interactions in the daily history of the last ${h.days} days (${since}); the circle shows the last hours live.`
    out.hidden = true
    return
  }
  status.textContent = `${who}: ${sent.toLocaleString()} sent and ${received.toLocaleString()} received over the last ${h.days} days${h.profilesComplete ? '' : ' (profiles unavailable right now: partners by DID)'}.`
  out.hidden = false
  const note = $('partial-note')
  note.textContent = partialNote(h)
  note.hidden = note.textContent === ''
  document.title = `${who} · History · Bluesky interaction circles`
  for (const side of ['sent', 'received'] as const) drawSide(h, side)
  showPartners($('partners'), h.history, h.top)
}

/** What the dashed lines mean: the days not folded whole, named while there are few. */
function partialNote(h: History): string {
  const partial = h.history.filter((d) => !d.complete)
  if (partial.length === 0) return ''
  const which =
    partial.length <= 3
      ? partial.map((d) => `${d.date}: ${d.foldedHours} of 24 hours`).join(', ')
      : h.completeThrough === null
        ? 'the daily roll-up has not run yet'
        : `every day after ${h.completeThrough}`
  const days = partial.length === 1 ? 'a day' : `${partial.length} days`
  return `Dashed lines on a shaded background: ${days} the daily roll-up has not folded whole yet (${which}); their counts will grow.`
}

function drawSide(h: History, side: 'sent' | 'received'): void {
  const days = h.history
  const final = days.map((d) => d.complete)
  const x = days.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000)
  const series: ChartSeries[] = KINDS.flatMap((k) =>
    splitPartial(
      { label: k, values: days.map((d) => d[side][k]), colour: COLOURS[k] as string },
      final,
    ),
  )
  const shade = days
    .map((d, i): [number, number] | null =>
      d.complete ? null : [(x[i] as number) - DAY_S / 2, (x[i] as number) + DAY_S / 2],
    )
    .filter((s): s is [number, number] => s !== null)
  const spec = { x, series, shade, unit: 'day' as const, height: 220 }
  const el = $(`chart-${side}`)
  const existing = charts[side]
  if (existing) existing.update(spec)
  else charts[side] = lineChart(el, spec)
  const sum = days.reduce((s, d) => s + total(d[side]), 0)
  const busiest = days.reduce((a, d) => (total(d[side]) > total(a[side]) ? d : a))
  el.setAttribute(
    'aria-label',
    `Line chart of interactions ${side} per day by kind over ${days.length} days: ${sum.toLocaleString()} in all, most on ${busiest.date} (${total(busiest[side]).toLocaleString()}). The numbers follow as a table.`,
  )
  $(`table-${side}`).replaceChildren(
    srTable(
      `Interactions ${side} per day by kind`,
      ['Day', ...KINDS, 'total'],
      days.map((d) => [
        d.complete ? d.date : `${d.date} (partial: ${d.foldedHours} of 24 hours)`,
        ...KINDS.map((k) => d[side][k]),
        total(d[side]),
      ]),
    ),
  )
}

form.addEventListener('submit', (e) => {
  e.preventDefault()
  syncUrl(true)
  void load(cleanActor(actorInput.value))
})
daysSel.addEventListener('change', () => {
  if (!cleanActor(actorInput.value)) return
  syncUrl(true)
  void load(cleanActor(actorInput.value))
})
addEventListener('popstate', () => void load(fromUrl()))
void load(fromUrl())
