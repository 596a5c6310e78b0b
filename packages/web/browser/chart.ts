import uPlot from 'uplot'

// What the network and history pages' charts share: uPlot line charts coloured from the theme's custom
// properties (drawn again when the theme or the width changes), shaded spans for figures that are not final,
// and the same numbers as a table for screen readers (the chart itself is one image to them).

export function cssVar(name: string): string {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim()
}

export interface ChartSeries {
  label: string
  values: (number | null)[]
  /** a custom property of styles/base.css, e.g. `--like` */
  colour: string
  dashed?: boolean
  /** Left out of the legend: a dashed continuation of the series before it (see `splitPartial`). */
  continuation?: boolean
  /** What the legend shows at the cursor, when it is not the drawn value (a continuation's partner). */
  shown?: (number | null)[]
}

export interface ChartSpec {
  /** x values: UNIX seconds, ascending */
  x: number[]
  series: ChartSeries[]
  /** spans of x drawn shaded (from, to), e.g. days the roll-up has not folded whole */
  shade?: [number, number][]
  /** days: dates at UTC midnight, labelled in UTC; hours: local time */
  unit: 'day' | 'hour'
  height?: number
}

export interface Chart {
  update(spec: ChartSpec): void
  destroy(): void
}

function options(spec: ChartSpec, width: number): uPlot.Options {
  const muted = cssVar('--muted')
  const line = cssVar('--line')
  const axis = {
    stroke: muted,
    grid: { stroke: line, width: 1 },
    ticks: { stroke: line, width: 1 },
  }
  const shade = cssVar('--shade') || line
  return {
    width,
    height: spec.height ?? 240,
    ...(spec.unit === 'day'
      ? { tzDate: (ts: number) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC') }
      : {}),
    scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max) * 1.05] } },
    axes: [{ ...axis }, { ...axis, size: 56 }],
    cursor: { drag: { x: false, y: false } },
    series: [
      {
        label: spec.unit === 'day' ? 'Day' : 'Hour',
        value: spec.unit === 'day' ? '{YYYY}-{MM}-{DD}' : '{DD} {MMM} {HH}:00',
      },
      ...spec.series.map((s) => ({
        label: s.label,
        stroke: cssVar(s.colour),
        width: 2,
        ...(s.dashed ? { dash: [6, 5] } : {}),
        ...(s.continuation ? { class: 'continuation' } : {}),
        points: { size: 5 },
        ...(s.shown
          ? {
              value: (_u: uPlot, _raw: number, _si: number, idx: number | null) =>
                fmt(idx === null ? null : (s.shown?.[idx] ?? null)),
            }
          : {}),
      })),
    ],
    hooks: {
      drawClear: [
        (u) => {
          const ctx = u.ctx
          ctx.save()
          ctx.fillStyle = shade
          for (const [from, to] of spec.shade ?? []) {
            const x0 = Math.max(u.bbox.left, u.valToPos(from, 'x', true))
            const x1 = Math.min(u.bbox.left + u.bbox.width, u.valToPos(to, 'x', true))
            if (x1 > x0) ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height)
          }
          ctx.restore()
        },
      ],
    },
  }
}

function fmt(v: number | null): string {
  return v === null ? '–' : v.toLocaleString()
}

/**
 * A line chart in `el`, which the caller labels (role="img", aria-label). uPlot has no way to recolour what
 * it drew, so a theme change draws the chart anew (one frame; it holds at most a few hundred points).
 */
export function lineChart(el: HTMLElement, first: ChartSpec): Chart {
  let spec = first
  let plot: uPlot | undefined
  const width = () => Math.max(280, el.clientWidth)
  const draw = () => {
    plot?.destroy()
    plot = new uPlot(
      options(spec, width()),
      [spec.x, ...spec.series.map((s) => s.values)] as uPlot.AlignedData,
      el,
    )
  }
  draw()
  let lastWidth = width()
  const resized = new ResizeObserver(() => {
    const w = width()
    if (w === lastWidth) return
    lastWidth = w
    plot?.setSize({ width: w, height: spec.height ?? 240 })
  })
  resized.observe(el)
  const themed = new MutationObserver(draw)
  themed.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] })
  return {
    update(next) {
      spec = next
      draw()
    },
    destroy() {
      resized.disconnect()
      themed.disconnect()
      plot?.destroy()
      plot = undefined
    },
  }
}

/**
 * A series whose last values are not final, as two: the final part solid, the rest dashed (joined to it by
 * the point before). The legend shows the dashed part's values under the solid one's name.
 */
export function splitPartial(s: ChartSeries, final: readonly boolean[]): ChartSeries[] {
  const solid = s.values.map((v, i) => (final[i] ? v : null))
  const dashed = s.values.map((v, i) =>
    !final[i] || final[i + 1] === false || final[i - 1] === false ? v : null,
  )
  if (final.every(Boolean)) return [s]
  return [
    { ...s, values: solid, shown: s.values },
    { ...s, label: `${s.label} (partial)`, values: dashed, dashed: true, continuation: true },
  ]
}

/**
 * The chart's numbers as a table only screen readers see. The box around it is what is hidden: a table is as
 * wide as its cells whatever its own width says, and widened the page at phone width.
 */
export function srTable(
  caption: string,
  head: readonly string[],
  rows: readonly (readonly (string | number)[])[],
): HTMLElement {
  const box = document.createElement('div')
  box.className = 'sr-only'
  const table = document.createElement('table')
  table.createCaption().textContent = caption
  const hr = table.createTHead().insertRow()
  for (const h of head) {
    const th = document.createElement('th')
    th.scope = 'col'
    th.textContent = h
    hr.append(th)
  }
  const body = table.createTBody()
  for (const row of rows) {
    const tr = body.insertRow()
    row.forEach((cell, i) => {
      const c = document.createElement(i === 0 ? 'th' : 'td')
      if (i === 0) (c as HTMLTableCellElement).scope = 'row'
      c.textContent = typeof cell === 'number' ? cell.toLocaleString() : cell
      tr.append(c)
    })
  }
  box.append(table)
  return box
}
