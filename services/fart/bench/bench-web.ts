// pnpm bench:web: each page's first render on the web suite's demo-shaped data (test/web/world.ts) in the
// system Chromium, and the JavaScript it loads, gzipped. First render: navigation start to the page's
// `data-ready` marker (its first content drawn: the circle and its list, the network's chart and top lists,
// the history's charts and tables), in a fresh browser context each time (nothing cached: a first visit).
// Baseline in the same run, through the same server: a static page with one paragraph and no script, to its
// first contentful paint. Rounds alternate the pages so machine noise falls on all alike. Budgets (issue 21):
// first render <= 1 s (judged on the p95), JavaScript <= 100 KB gzipped per page. Progress lines first, one
// JSON line last; the exit code is 1 when a budget is missed.
import { loadavg } from 'node:os'
import { gzipSync } from 'node:zlib'
import type { Browser } from 'playwright-core'
import { launchBrowser } from '../test/web/browser.js'
import { PAGES, startWorld } from '../test/web/world.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 20)
const WARMUP = 2
const BUDGET_MS = 1000
const BUDGET_JS_GZ = 100 * 1024
const EMPTY = '/bench/empty'
const EMPTY_HTML =
  '<!doctype html><html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">' +
  '<title>empty</title></head><body><p>An empty page.</p></body></html>'

function log(msg: string): void {
  process.stdout.write(`[bench-web] ${new Date().toISOString()} ${msg}\n`)
}

function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

interface Load {
  /** ms from navigation start to data-ready (the baseline: to its first contentful paint) */
  ms: number
  fcpMs: number
  scripts: { url: string; bytes: number; gzipBytes: number }[]
}

async function load(browser: Browser, url: string, marker: boolean): Promise<Load> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } })
  try {
    const page = await context.newPage()
    const pending: Promise<Load['scripts'][number]>[] = []
    page.on('response', (r) => {
      if (r.request().resourceType() !== 'script') return
      pending.push(
        r.body().then((b) => ({
          url: r.url(),
          bytes: b.length,
          gzipBytes: gzipSync(b, { level: 9 }).length,
        })),
      )
    })
    await page.goto(url, { waitUntil: 'commit' })
    if (marker)
      await page.waitForSelector('html[data-ready]', { state: 'attached', timeout: 30_000 })
    const fcp = `new Promise((done) => new PerformanceObserver((l, o) => { o.disconnect(); done(l.getEntries()[0].startTime) }).observe({ type: 'paint', buffered: true }))`
    const [readyMs, fcpMs] = (await page.evaluate(
      `Promise.all([Number(document.documentElement.dataset.ready), ${fcp}])`,
    )) as [number, number]
    return { ms: marker ? readyMs : fcpMs, fcpMs, scripts: await Promise.all(pending) }
  } finally {
    await context.close()
  }
}

async function main(): Promise<void> {
  const world = await startWorld({
    routes: (app) =>
      app.get(EMPTY, async (_req, reply) => reply.type('text/html').send(EMPTY_HTML)),
  })
  const browser = await launchBrowser()
  const targets = [
    { name: 'baseline', path: EMPTY, marker: false },
    ...PAGES.map(([name, path]) => ({ name, path, marker: true })),
  ]
  const times = new Map<string, { ms: number[]; fcp: number[] }>(
    targets.map((t) => [t.name, { ms: [], fcp: [] }]),
  )
  const js = new Map<string, Load['scripts']>()
  try {
    log(
      `${RUNS} cold loads of each page (after ${WARMUP} unmeasured), load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
    )
    for (let round = 0; round < WARMUP + RUNS; round++) {
      for (const t of targets) {
        const r = await load(browser, `${world.base}${t.path}`, t.marker)
        if (round < WARMUP) continue
        times.get(t.name)?.ms.push(r.ms)
        times.get(t.name)?.fcp.push(r.fcpMs)
        if (!js.has(t.name)) js.set(t.name, r.scripts)
      }
    }
  } finally {
    await browser.close()
    await world.h.close()
  }
  const pages: Record<string, unknown> = {}
  let pass = true
  for (const t of targets) {
    const { ms, fcp } = times.get(t.name) as { ms: number[]; fcp: number[] }
    ms.sort((a, b) => a - b)
    fcp.sort((a, b) => a - b)
    const scripts = js.get(t.name) ?? []
    const gz = scripts.reduce((s, x) => s + x.gzipBytes, 0)
    const row = {
      firstRenderP50Ms: Math.round(quantile(ms, 0.5)),
      firstRenderP95Ms: Math.round(quantile(ms, 0.95)),
      firstRenderMaxMs: Math.round(ms.at(-1) as number),
      fcpP50Ms: Math.round(quantile(fcp, 0.5)),
      scripts: scripts.length,
      jsBytes: scripts.reduce((s, x) => s + x.bytes, 0),
      jsGzipBytes: gz,
    }
    pages[t.name] = row
    const ok = t.name === 'baseline' || (row.firstRenderP95Ms <= BUDGET_MS && gz <= BUDGET_JS_GZ)
    pass &&= ok
    log(
      `${t.name.padEnd(8)} first render p50 ${row.firstRenderP50Ms} ms, p95 ${row.firstRenderP95Ms} ms, max ${row.firstRenderMaxMs} ms (FCP p50 ${row.fcpP50Ms} ms); JS ${(gz / 1024).toFixed(1)} KB gz in ${row.scripts} file(s)${t.name === 'baseline' ? '' : ok ? ': within budget' : ': OVER BUDGET'}`,
    )
  }
  const out = {
    bench: 'web',
    runs: RUNS,
    loadavg: loadavg().map((l) => +l.toFixed(2)),
    budget: { firstRenderP95Ms: BUDGET_MS, jsGzipBytes: BUDGET_JS_GZ },
    pass,
    pages,
  }
  process.stdout.write(`${JSON.stringify(out)}\n`)
  if (!pass) process.exitCode = 1
}

await main()
