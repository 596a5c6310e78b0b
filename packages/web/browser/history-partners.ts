import { type Counts, KINDS, nameOf } from './common.js'
import type { Day, Partner } from './history.js'

// How an account's top partners changed: first who was among them most often over the period, then a table
// of the days (newest first) by rank, where a partner who was not in the day before's top is marked new.

const SUMMARY_SHOWN = 10

const total = (c: Counts) => KINDS.reduce((s, k) => s + c[k], 0)

function partnerLink(p: Partner): HTMLAnchorElement {
  const a = document.createElement('a')
  a.href = `/?actor=${encodeURIComponent(p.handle ?? p.did)}`
  a.textContent = nameOf(p)
  if (p.handle && p.displayName) a.title = `@${p.handle}`
  return a
}

interface Standing {
  p: Partner
  days: number
  interactions: number
}

function standings(days: readonly Day[]): Standing[] {
  const by = new Map<string, Standing>()
  for (const d of days) {
    for (const p of d.partners) {
      const s = by.get(p.did) ?? { p, days: 0, interactions: 0 }
      s.days++
      s.interactions += total(p.sent) + total(p.received)
      by.set(p.did, s)
    }
  }
  return [...by.values()].sort((a, b) => b.days - a.days || b.interactions - a.interactions)
}

function summary(days: readonly Day[], top: number): HTMLElement {
  const wrap = document.createElement('div')
  const h = document.createElement('h3')
  h.id = 'h-steady'
  h.textContent = `Most often in the day’s top ${top}`
  const ol = document.createElement('ol')
  ol.className = 'steady'
  ol.setAttribute('aria-labelledby', h.id)
  for (const s of standings(days).slice(0, SUMMARY_SHOWN)) {
    const li = document.createElement('li')
    const meta = document.createElement('span')
    meta.className = 'muted'
    meta.textContent = ` ${s.days} of ${days.length} days · ${s.interactions.toLocaleString()} interactions on those days`
    li.append(partnerLink(s.p), meta)
    ol.append(li)
  }
  wrap.append(h, ol)
  return wrap
}

function cell(p: Partner | undefined, isNew: boolean): HTMLTableCellElement {
  const td = document.createElement('td')
  if (!p) {
    td.className = 'muted'
    td.textContent = '–'
    return td
  }
  const n = document.createElement('span')
  n.className = 'muted'
  n.textContent = ` ${(total(p.sent) + total(p.received)).toLocaleString()}`
  n.title = `sent ${total(p.sent)}, received ${total(p.received)}`
  td.append(partnerLink(p), n)
  if (isNew) {
    const badge = document.createElement('span')
    badge.className = 'badge'
    badge.textContent = 'new'
    badge.title = 'not in the day before’s top'
    td.append(' ', badge)
  }
  return td
}

function byDay(days: readonly Day[], top: number): HTMLElement {
  const table = document.createElement('table')
  table.className = 'ranks'
  table.createCaption().textContent = `The day’s top ${top} partners (both ways), newest day first`
  const hr = table.createTHead().insertRow()
  for (const label of ['Day', ...Array.from({ length: top }, (_, i) => `#${i + 1}`)]) {
    const th = document.createElement('th')
    th.scope = 'col'
    th.textContent = label
    hr.append(th)
  }
  const body = table.createTBody()
  for (let i = days.length - 1; i >= 0; i--) {
    const d = days[i] as Day
    const before = new Set(days[i - 1]?.partners.map((p) => p.did) ?? [])
    const tr = body.insertRow()
    if (!d.complete) tr.className = 'partial'
    const th = document.createElement('th')
    th.scope = 'row'
    th.textContent = d.complete ? d.date : `${d.date} (partial)`
    tr.append(th)
    for (let r = 0; r < top; r++) {
      const p = d.partners[r]
      tr.append(cell(p, i > 0 && !!p && !before.has(p.did)))
    }
  }
  // A wide table scrolls inside its own box at phone width; focusable so the keyboard can scroll it.
  const scroll = document.createElement('div')
  scroll.className = 'table-scroll'
  scroll.tabIndex = 0
  scroll.setAttribute('role', 'region')
  scroll.setAttribute('aria-label', 'Table of the top partners by day (scrolls sideways)')
  scroll.append(table)
  return scroll
}

export function showPartners(el: HTMLElement, days: readonly Day[], top: number): void {
  if (top === 0 || days.every((d) => d.partners.length === 0)) {
    const p = document.createElement('p')
    p.className = 'muted'
    p.textContent = 'No partners over these days.'
    el.replaceChildren(p)
    return
  }
  el.replaceChildren(summary(days, top), byDay(days, top))
}
