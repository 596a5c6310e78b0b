import { CHROMIUM_ARGS, CHROMIUM_PATH } from '@circles/testkit'
import type { Browser, BrowserContext, Page } from 'playwright-core'

// How the web suite drives Chromium: one browser per test file, a fresh context per visit (no cache, no
// localStorage theme left over), rendering made repeatable (UTC, en-US, scale 1, reduced motion), and every
// console error, script error and failed or refused request of the visit kept for the test to assert on.

export type Scheme = 'dark' | 'light'

export const DESKTOP = { width: 1280, height: 800 }
export const PHONE = { width: 390, height: 844 }

export async function launchBrowser(): Promise<Browser> {
  const { chromium } = await import('playwright-core')
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
}

export interface Visit {
  page: Page
  context: BrowserContext
  /** console errors and uncaught script errors */
  errors: string[]
  /** requests that failed, or were answered 4xx/5xx: "<status> <url>" */
  failed: string[]
  close(): Promise<void>
}

export interface VisitOptions {
  viewport?: { width: number; height: number }
  scheme?: Scheme
}

export async function visit(
  browser: Browser,
  url: string,
  { viewport = DESKTOP, scheme = 'dark' }: VisitOptions = {},
): Promise<Visit> {
  const context = await browser.newContext({
    viewport,
    deviceScaleFactor: 1,
    colorScheme: scheme,
    reducedMotion: 'reduce',
    locale: 'en-US',
    timezoneId: 'UTC',
    // Playwright's waitForFunction and axe's injection evaluate strings, which the pages' CSP forbids.
    bypassCSP: true,
  })
  const page = await context.newPage()
  const errors: string[] = []
  const failed: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`)
  })
  page.on('pageerror', (e) => errors.push(`script: ${String(e)}`))
  page.on('requestfailed', (r) => failed.push(`${r.failure()?.errorText ?? 'failed'} ${r.url()}`))
  page.on('response', (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.url()}`)
  })
  await page.goto(url)
  return { page, context, errors, failed, close: () => context.close() }
}

/** Until the page's script says its first content is drawn (`data-ready` on <html>, set by every page). */
export async function ready(page: Page, timeout = 15_000): Promise<void> {
  await page.waitForSelector('html[data-ready]', { state: 'attached', timeout })
}

/** The path and query of the page's URL. */
export function where(page: Page): string {
  const u = new URL(page.url())
  return `${u.pathname}${u.search}`
}

/** The explorer's picture as the visitor sees it: the drawing in #circle (an <img> or an inline <svg>). */
export async function drawing(page: Page): Promise<string> {
  const el = page.locator('#circle img:not([hidden]), #circle svg').first()
  if (!(await el.isVisible())) return ''
  return (await el.screenshot({ animations: 'disabled' })).toString('base64')
}

/** What a page shows once settled: its status line and the text of `selectors`, and the explorer's drawing. */
export async function shown(page: Page, selectors: readonly string[]): Promise<string[]> {
  await page.waitForFunction(`!document.getElementById('status').textContent.startsWith('Loading')`)
  const texts = await Promise.all(
    ['#status', ...selectors].map(async (s) => (await page.locator(s).allTextContents()).join('|')),
  )
  return [...texts, await drawing(page)]
}
