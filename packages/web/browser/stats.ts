import { type Chart, lineChart, srTable } from './chart.js'
import {
  $,
  ApiError,
  getJson,
  KINDS,
  markReady,
  nameOf,
  readUrl,
  setUpTheme,
  writeUrl,
} from './common.js'

// The network page: the scheduler's stats document (top accounts per kind over 24 h, interactions per hour
// over 48 h), fetched again every minute, and the pipeline's live state every 5 s. Both stop while the tab
// is hidden: nobody reads them, and each is a few Redis round trips on the server.

interface Ranked {
  did: string
  count: number
  handle?: string
  displayName?: string
  avatar?: string
}
type KindOrAll = (typeof KINDS)[number] | 'all'
interface HourTotals {
  hour: number
  start: string
  like: number
  repost: number
  reply: number
  quote: number
}
interface GlobalStats {
  generatedAtMs?: number
  hours?: HourTotals[]
  top?: {
    authors?: Partial<Record<KindOrAll, Ranked[]>>
    subjects?: Partial<Record<KindOrAll, Ranked[]>>
  }
}
interface Live {
  rate: number | null
  lagMs: number | null
  streamLength: number | null
  indexerLagEntries: number | null
  indexerPending: number | null
  indexerRate?: number | null
  schedulerHeartbeatAgeSeconds: number | null
  firehoseState: string | null
}

/** Avatars come through the service (its cache of thumbnails), never from a third party. */
const avatarPath = (did: string) => `/v1/avatars/${encodeURIComponent(did)}`
const TOP_SHOWN = 10
const LIVE_EVERY_MS = 5_000
const STATS_EVERY_MS = 60_000

setUpTheme()
const status = $('status')
const liveStatus = $('live-status')
const kindBox = $<HTMLFieldSetElement>('top-kind')
let doc: GlobalStats | null = null
let chart: Chart | undefined

const labels: Record<KindOrAll, string> = {
  all: 'all kinds',
  reply: 'replies',
  quote: 'quotes',
  repost: 'reposts',
  like: 'likes',
}
const KIND_COLOURS: Record<string, string> = {
  reply: '--reply',
  quote: '--quote',
  repost: '--repost',
  like: '--like',
}

function explain(err: unknown): string {
  if (!(err instanceof ApiError)) return 'The service is unreachable right now; trying again.'
  if (err.error === 'NotReady')
    return 'No stats yet: the scheduler has not computed them (it runs every few minutes).'
  return err.message
}

// --- pipeline health -------------------------------------------------------------------------------------

function seconds(ms: number | null): string {
  if (ms === null) return '–'
  return ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000).toLocaleString()} s`
}
function count(n: number | null | undefined, unit = ''): string {
  return n === null || n === undefined ? '–' : `${Math.round(n).toLocaleString()}${unit}`
}

function tiles(live: Live): [string, string, string][] {
  return [
    ['Firehose', live.firehoseState ?? '–', 'the relay connection’s state'],
    ['Relay lag', seconds(live.lagMs), 'how far behind the relay the newest event read is'],
    ['Events read', count(live.rate, ' /s'), 'firehose events per second'],
    ['Indexed', count(live.indexerRate, ' /s'), 'stream entries the indexer writes per second'],
    ['Stream lag', count(live.indexerLagEntries, ' entries'), 'entries waiting for the indexer'],
    ['Stream length', count(live.streamLength), 'entries kept in the event stream'],
    [
      'Scheduler',
      live.schedulerHeartbeatAgeSeconds === null
        ? '–'
        : `seen ${Math.round(live.schedulerHeartbeatAgeSeconds)} s ago`,
      'the last heartbeat of the scheduler',
    ],
  ]
}

function showLive(live: Live): void {
  $('health').replaceChildren(
    ...tiles(live).map(([term, value, title]) => {
      const group = document.createElement('div')
      const dt = document.createElement('dt')
      dt.textContent = term
      dt.title = title
      const dd = document.createElement('dd')
      dd.textContent = value
      group.append(dt, dd)
      return group
    }),
  )
  liveStatus.textContent = `Live: updated ${new Date().toLocaleTimeString()}, every ${LIVE_EVERY_MS / 1000} s while this tab is open.`
}

async function refreshLive(): Promise<void> {
  try {
    showLive(await getJson<Live>('/v1/stats/live', { cache: 'no-store' }))
  } catch (err) {
    liveStatus.textContent = `Live figures unavailable: ${err instanceof ApiError ? err.message : 'the service is unreachable'}.`
  }
}

// --- interactions per hour -------------------------------------------------------------------------------

function showHours(hours: HourTotals[]): void {
  const el = $('hours')
  if (hours.length === 0) {
    el.setAttribute('aria-label', 'Interactions per hour: no hours counted yet')
    $('hours-note').textContent = 'No hours counted yet.'
    return
  }
  const x = hours.map((h) => Date.parse(h.start) / 1000)
  const total = hours.reduce((s, h) => s + KINDS.reduce((t, k) => t + h[k], 0), 0)
  const peak = hours.reduce((a, h) => (sum(h) > sum(a) ? h : a))
  const spec = {
    x,
    unit: 'hour' as const,
    series: KINDS.map((k) => ({
      label: labels[k],
      values: hours.map((h) => h[k]),
      colour: KIND_COLOURS[k] as string,
    })),
  }
  if (chart) chart.update(spec)
  else chart = lineChart(el, spec)
  el.setAttribute(
    'aria-label',
    `Line chart of interactions per hour by kind over the last ${hours.length} hours: ${total.toLocaleString()} in all, most in the hour from ${hourLabel(peak.start)} (${sum(peak).toLocaleString()}). The numbers follow as a table.`,
  )
  $('hours-table').replaceChildren(
    srTable(
      'Interactions per hour by kind',
      ['Hour', ...KINDS.map((k) => labels[k]), 'total'],
      hours.map((h) => [hourLabel(h.start), ...KINDS.map((k) => h[k]), sum(h)]),
    ),
  )
  $('hours-note').textContent = 'The newest hour is still counting.'
}

function sum(h: HourTotals): number {
  return KINDS.reduce((t, k) => t + h[k], 0)
}
function hourLabel(iso: string): string {
  return new Date(iso).toLocaleString(undefined, {
    weekday: 'short',
    hour: '2-digit',
    minute: '2-digit',
  })
}

// --- top accounts ----------------------------------------------------------------------------------------

function chosenKind(): KindOrAll {
  const k = readUrl().get('kind')
  return k && (k === 'all' || (KINDS as readonly string[]).includes(k)) ? (k as KindOrAll) : 'all'
}

function initials(r: Ranked): HTMLElement {
  const span = document.createElement('span')
  span.className = 'avatar initials'
  span.setAttribute('aria-hidden', 'true')
  span.textContent =
    [...(r.displayName || r.handle || '?').replace(/^did:\w+:/, '')][0]?.toUpperCase() ?? '?'
  return span
}

function avatar(r: Ranked): HTMLElement {
  if (!r.avatar) return initials(r)
  const img = document.createElement('img')
  img.className = 'avatar'
  img.alt = ''
  img.width = 32
  img.height = 32
  img.loading = 'lazy'
  img.addEventListener('error', () => img.replaceWith(initials(r)), { once: true })
  img.src = avatarPath(r.did)
  return img
}

function person(r: Ranked, what: string): HTMLLIElement {
  const li = document.createElement('li')
  const a = document.createElement('a')
  a.href = `/?actor=${encodeURIComponent(r.handle ?? r.did)}`
  const name = document.createElement('span')
  name.className = 'name'
  name.textContent = nameOf(r)
  a.append(avatar(r), name)
  if (r.handle && r.displayName) {
    const handle = document.createElement('span')
    handle.className = 'handle muted'
    handle.textContent = `@${r.handle}`
    a.append(handle)
  }
  const n = document.createElement('span')
  n.className = 'count'
  n.textContent = r.count.toLocaleString()
  n.setAttribute('aria-label', `${r.count.toLocaleString()} ${what}`)
  li.append(a, n)
  return li
}

function showTop(): void {
  const kind = chosenKind()
  for (const input of kindBox.querySelectorAll<HTMLInputElement>('input[name=kind]')) {
    input.checked = input.value === kind
  }
  for (const side of ['authors', 'subjects'] as const) {
    const list = (doc?.top?.[side]?.[kind] ?? []).slice(0, TOP_SHOWN)
    const ol = $<HTMLOListElement>(`top-${side}`)
    const what = `${labels[kind]} ${side === 'authors' ? 'sent' : 'received'}`
    if (list.length === 0) {
      const li = document.createElement('li')
      li.className = 'muted empty'
      li.textContent = 'Nobody yet.'
      ol.replaceChildren(li)
    } else ol.replaceChildren(...list.map((r) => person(r, what)))
  }
}

kindBox.addEventListener('change', (e) => {
  const k = (e.target as HTMLInputElement).value
  writeUrl({ kind: k === 'all' ? '' : k }, false)
  showTop()
})
addEventListener('popstate', showTop)

// --- refreshing ------------------------------------------------------------------------------------------

// The service names the accounts it has profiles of and asks for the others after answering: the first
// time a list lacks names, asking again a few seconds later (not a minute) shows them.
let askedForNames = false

function lacksNames(): boolean {
  const kind = chosenKind()
  return (['authors', 'subjects'] as const).some((side) =>
    (doc?.top?.[side]?.[kind] ?? []).slice(0, TOP_SHOWN).some((r) => !r.handle),
  )
}

function computedAgo(at: number | undefined): string {
  if (typeof at !== 'number') return ''
  const min = Math.round((Date.now() - at) / 60_000)
  return `Computed by the scheduler ${min < 1 ? 'just now' : `${min} min ago`}.`
}

async function refreshStats(): Promise<void> {
  try {
    doc = await getJson<GlobalStats>('/v1/stats', { cache: 'no-cache' })
    status.textContent = computedAgo(doc.generatedAtMs)
    showHours(doc.hours ?? [])
  } catch (err) {
    status.textContent = explain(err)
  }
  showTop()
  markReady()
  if (!askedForNames && lacksNames()) {
    askedForNames = true
    setTimeout(() => void refreshStats(), 4_000)
  }
}

/** Runs `fn` now and every `ms` while the tab is visible; again at once when it becomes visible. */
function whileVisible(fn: () => Promise<void>, ms: number): void {
  let timer: ReturnType<typeof setTimeout> | undefined
  let running = false
  const tick = async () => {
    timer = undefined
    running = true
    await fn().finally(() => {
      running = false
    })
    if (!document.hidden) timer = setTimeout(tick, ms)
  }
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer)
      timer = undefined
    } else if (!running && timer === undefined) void tick()
  })
  void tick()
}

whileVisible(refreshLive, LIVE_EVERY_MS)
whileVisible(refreshStats, STATS_EVERY_MS)
