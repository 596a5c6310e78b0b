import { type ChildProcess, spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { CHROMIUM_ARGS, CHROMIUM_PATH, freePort, haveChromium } from '@circles/testkit'
import { afterAll, describe, expect, it } from 'vitest'
import { repoRoot } from '../src/paths.js'
import { tempDir } from '../src/test-helpers.js'

// `pnpm demo` as a user runs it (scripts/demo.mjs: the build check, then packages/ops' demo), on a port we
// chose, and its page opened in headless Chromium: the circle must be drawn. Then ctrl-C (SIGINT) must stop
// everything, exit 0 and leave nothing in the temporary directory (TMPDIR is a fresh one, so all the demo's
// temporary files, its PDS's and its Redis's included, land where we can look).

const URL_LINE = /^\s+(http:\/\/127\.0\.0\.1:(\d+)\/\?actor=(\S+))$/m

describe.skipIf(!haveChromium('the pnpm demo test'))('pnpm demo', () => {
  const dir = tempDir('demo')
  const tmp = join(dir, 'tmp')
  let child: ChildProcess | undefined
  let output = ''

  afterAll(async () => {
    // Only when the test failed half-way: ctrl-C first, so the demo stops the services it started.
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGINT')
      const timer = setTimeout(() => child?.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(timer)
    }
    rmSync(dir, { recursive: true, force: true })
  })

  it('prints the page URL, the page draws the circle, ctrl-C exits 0 and removes its data', async () => {
    mkdirSync(tmp)
    const port = await freePort()
    child = spawn(process.execPath, [join(repoRoot(), 'scripts/demo.mjs')], {
      cwd: repoRoot(),
      env: {
        ...process.env,
        PORT: String(port),
        TMPDIR: tmp,
        // The fewest accounts the demo takes, and quick rounds: a circle of four within seconds.
        DEMO_ACCOUNTS: '6',
        DEMO_ROUND_MS: '500',
        DEMO_LOG_LEVEL: 'warn',
        // tsc (the build check) turns on Node's compile cache, which Node >= 22.8 keeps in os.tmpdir():
        // Node's cache, not the demo's data.
        NODE_DISABLE_COMPILE_CACHE: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const demo = child
    demo.stdout?.on('data', (d: Buffer) => {
      output += d.toString()
    })
    demo.stderr?.on('data', (d: Buffer) => {
      output += d.toString()
    })

    const found = await waitForUrl(demo, () => output, 90_000)
    expect(found, output).not.toBeNull()
    const [, url, printedPort, actor] = found as RegExpExecArray
    expect(Number(printedPort), 'the demo listens on the PORT it was given').toBe(port)
    // So that the empty TMPDIR at the end means removed, not never written.
    expect(readdirSync(tmp).length, 'the demo keeps its temporary data in TMPDIR').toBeGreaterThan(
      0,
    )

    const page = await drawPage(url as string)
    expect(page.status).toContain(decodeURIComponent(actor as string))
    expect(page.status).toMatch(/: \d+ people over 48h$/)
    expect(page.listed).toBeGreaterThanOrEqual(1)
    // The drawing the page shows, inline: the actor's disc and its members' (each a simulated account's
    // handle), each member a link to its own circle. Not compared with the list one for one: the demo caches
    // circles for 10 s only, so the list and the drawing may come from two computations while the circle grows.
    expect(page.svg.drawn).toBe(true)
    expect(page.svg.titles).toContain(decodeURIComponent(actor as string))
    expect(page.svg.titles.length).toBeGreaterThanOrEqual(2)
    for (const t of page.svg.titles) expect(t).toMatch(/^sim\d+x\w*\.test$/)
    expect(page.svg.links).toHaveLength(page.svg.titles.length - 1)
    for (const l of page.svg.links) expect(l).toMatch(/^\/\?actor=did%3A/)
    expect(page.errors).toEqual([])
    // The other pages render on the same data with no script or console error.
    expect(page.others).toEqual({
      [`/history?actor=${actor}`]: { heading: 'Account history', errors: [] },
      '/stats': { heading: 'The network', errors: [] },
    })
    // The backfill the first request queued read the local PDS: nothing left to show (not a failure).
    expect(page.backfill, output).toBe('')

    const exited = once(demo, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
    demo.kill('SIGINT')
    const [code, signal] = await withDeadline(exited, 60_000, 'the demo to exit after SIGINT')
    expect({ code, signal }, output).toEqual({ code: 0, signal: null })
    expect(output).toContain('all stopped, temporary data removed')
    expect(readdirSync(tmp), 'left in TMPDIR').toEqual([])
  }, 150_000)
})

/** Waits for the line with the page's URL; null if the demo exits or the deadline passes first. */
async function waitForUrl(
  demo: ChildProcess,
  output: () => string,
  timeoutMs: number,
): Promise<RegExpExecArray | null> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const m = URL_LINE.exec(output())
    if (m) return m
    if (demo.exitCode !== null || demo.signalCode !== null || Date.now() > deadline) return null
    await new Promise((r) => setTimeout(r, 100))
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

interface PageState {
  status: string
  /** What the page says of the account's backfill once it settled; '' when there is nothing to say (done). */
  backfill: string
  listed: number
  svg: { drawn: boolean; titles: string[]; links: string[] }
  errors: string[]
  /** The history and network pages on the demo's data: their heading once drawn, and any error. */
  others: Record<string, { heading: string; errors: string[] }>
}

/** Opens one more page and waits for its first content (every page marks it: data-ready on <html>). */
async function renderOther(
  browser: import('playwright-core').Browser,
  url: string,
): Promise<{ heading: string; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, bypassCSP: true })
  const errors: string[] = []
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()}`)
  })
  try {
    await page.goto(url)
    await page.waitForFunction('document.documentElement.dataset.ready !== undefined', undefined, {
      timeout: 30_000,
    })
    return { heading: (await page.textContent('h1')) ?? '', errors }
  } finally {
    await page.close()
  }
}

/** Opens the printed URL (the page draws the circle of `?actor=` by itself) and reads what it shows. */
async function drawPage(url: string): Promise<PageState> {
  const { chromium } = await import('playwright-core')
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: CHROMIUM_ARGS,
  })
  try {
    // Playwright evaluates string predicates with eval inside the page, which the page's CSP forbids.
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 }, bypassCSP: true })
    const errors: string[] = []
    page.on('pageerror', (e) => errors.push(String(e)))
    await page.goto(url)
    await page.waitForSelector('#list li', { timeout: 30_000 })
    // Browser-side code as strings: this project compiles without the DOM library.
    await page.waitForFunction(
      `(() => { const svg = document.querySelector('#drawing svg'); return svg && !document.getElementById('drawing').hidden })()`,
      undefined,
      { timeout: 30_000 },
    )
    // The backfill the first request queued: done within seconds on the local PDS (the box then hides).
    await page
      .waitForFunction(`document.getElementById('backfill').hidden`, undefined, { timeout: 30_000 })
      .catch(() => {})
    // The drawing as the page shows it: the server's SVG, inline.
    const state = (await page.evaluate(`(() => {
      const svg = document.querySelector('#drawing svg')
      const box = svg.getBoundingClientRect()
      return {
        status: document.getElementById('status').textContent,
        backfill: document.getElementById('backfill').hidden ? '' : document.getElementById('bf-label').textContent,
        listed: document.querySelectorAll('#list li').length,
        svg: {
          drawn: svg.namespaceURI === 'http://www.w3.org/2000/svg' && box.width > 100 && box.height > 100,
          titles: [...svg.querySelectorAll('g > title')].map((t) => t.textContent),
          links: [...svg.querySelectorAll('a')].map((a) => a.getAttribute('href')),
        },
      }
    })()`)) as Omit<PageState, 'errors' | 'others'>
    const origin = new URL(url).origin
    const actor = new URL(url).searchParams.get('actor') as string
    const others: PageState['others'] = {}
    for (const path of [`/history?actor=${encodeURIComponent(actor)}`, '/stats']) {
      others[path] = await renderOther(browser, `${origin}${path}`)
    }
    return { ...state, errors, others }
  } finally {
    await browser.close()
  }
}
