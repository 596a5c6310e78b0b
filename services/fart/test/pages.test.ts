import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DAY_MS, HOUR_MS, type InteractionKind } from '@circles/core'
import { haveChromium } from '@circles/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { did, type Harness, startHarness, writeDayBlob } from './helpers.js'
import { launchBrowser } from './web/browser.js'
import { wavyHours } from './web/world.js'

// The network and history pages in a real headless Chromium: each fills its charts, tables and lists from
// the API, shows its empty and refused states, and throws no script error. Screenshots land in
// $TMPDIR/fart-pages-test for a look (not compared: the Playwright suite in test/web does that).

const A = did(1)
const OUT = did(2)
const PARTNERS = [did(301), did(302), did(303), did(304), did(305), did(306)]
const KINDS: InteractionKind[] = ['reply', 'quote', 'repost', 'like']
const shots = join(tmpdir(), 'fart-pages-test')

/** 30 days of A's history: partners take turns at the top; the last two days are partial. */
async function seedHistory(h: Harness, today: number) {
  await h.t.redis.set(h.t.schema.rollupCursor, String((today - 1) * 24 + 5))
  for (let back = 0; back < 30; back++) {
    const day = today - back
    const rows = (shift: number) =>
      PARTNERS.map((p, i): [string, InteractionKind, number] => [
        p,
        KINDS[(i + shift) % 4] as InteractionKind,
        1 + ((i * 7 + back * 3 + shift) % 11),
      ])
    await writeDayBlob(h, A, 's', day, rows(0))
    await writeDayBlob(h, A, 'r', day, rows(1))
  }
}

function stats(now: number) {
  const hours = wavyHours(Math.floor(now / HOUR_MS) - 47)
  const ranked = [A, OUT, ...PARTNERS].map((d, i) => ({ did: d, count: 500 - i * 40 }))
  const side = Object.fromEntries(['all', ...KINDS].map((k) => [k, ranked]))
  return { version: 1, generatedAtMs: now - 60_000, hours, top: { authors: side, subjects: side } }
}

describe.skipIf(!haveChromium('the network and history page test'))(
  'the network and history pages in Chromium',
  () => {
    let h: Harness
    let base: string

    beforeAll(async () => {
      h = await startHarness()
      h.appview.profiles.set(A, { did: A, handle: 'alice.test', displayName: 'Alice' })
      h.appview.profiles.set(OUT, { did: OUT, handle: 'gone.test' })
      for (const [i, p] of PARTNERS.entries()) {
        h.appview.profiles.set(p, { did: p, handle: `pal${i + 1}.test` })
      }
      await seedHistory(h, Math.floor(Date.now() / DAY_MS))
      await h.t.redis.sadd(h.t.schema.optOuts, OUT)
      // The history route looks profiles up, leaving them in the cache the stats route reads.
      await h.app.inject(`/v1/accounts/${A}/history?days=30`)
      mkdirSync(shots, { recursive: true })
      base = await h.app.listen({ host: '127.0.0.1', port: 0 })
    })
    afterAll(() => h?.close())

    async function open(path: string, width = 1200) {
      const browser = await launchBrowser()
      // bypassCSP: Playwright's waitForFunction polls with eval, which the page's CSP forbids.
      const page = await browser.newPage({ viewport: { width, height: 900 }, bypassCSP: true })
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(String(e)))
      await page.goto(`${base}${path}`)
      return { browser, page, errors }
    }

    it('network: "no stats yet", unreachable, then the tiles, the hourly chart with its table, and the top lists', async () => {
      const { browser, page, errors } = await open('/stats')
      try {
        await page.waitForFunction(
          `document.getElementById('status').textContent.includes('No stats yet')`,
        )
        await page.waitForSelector('#health dd')
        expect(await page.locator('#health > div').count()).toBeGreaterThanOrEqual(6)
        // The service out of reach: both parts say so (and keep trying).
        await page.route('**/v1/stats**', (r) => r.abort())
        await page.reload()
        await page.waitForFunction(
          `document.getElementById('status').textContent.includes('unreachable') && document.getElementById('live-status').textContent.includes('unreachable')`,
        )
        await page.unroute('**/v1/stats**')
        await h.t.redis.set(h.t.schema.globalStats, JSON.stringify(stats(Date.now())))
        await page.reload()
        await page.waitForSelector('#top-authors li a', { timeout: 15_000 })
        await page.waitForSelector('#hours canvas')
        expect(await page.locator('#hours-table tbody tr').count()).toBe(48)
        expect(await page.getAttribute('#hours', 'role')).toBe('img')
        expect(await page.getAttribute('#hours', 'aria-label')).toContain('48 hours')
        const names = await page.locator('#top-authors li a').allTextContents()
        expect(names[0]).toContain('Alice')
        expect(names.join()).not.toContain('gone.test')
        expect(await page.getAttribute('#top-authors li a >> nth=0', 'href')).toBe(
          '/?actor=alice.test',
        )
        writeFileSync(join(shots, 'stats-dark.png'), await page.screenshot({ fullPage: true }))
        await page.click('#top-kind label:has-text("Likes")')
        expect(new URL(page.url()).searchParams.get('kind')).toBe('like')
        await page.click('#theme')
        await page.waitForSelector('#hours canvas')
        writeFileSync(join(shots, 'stats-light.png'), await page.screenshot({ fullPage: true }))
        await page.setViewportSize({ width: 360, height: 800 })
        writeFileSync(join(shots, 'stats-phone.png'), await page.screenshot({ fullPage: true }))
        expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360)
        expect(errors).toEqual([])
      } finally {
        await browser.close()
      }
    })

    it('history: charts with partial days apart, partners by day, the days control in the URL', async () => {
      const { browser, page, errors } = await open('/history?actor=alice.test')
      try {
        await page.waitForSelector('#chart-sent canvas', { timeout: 15_000 })
        await page.waitForSelector('#chart-received canvas')
        expect(await page.isVisible('#partial-note')).toBe(true)
        expect(await page.textContent('#partial-note')).toContain('of 24 hours')
        expect(await page.locator('#table-sent tbody tr').count()).toBe(30)
        expect(await page.locator('.ranks tbody tr').count()).toBe(30)
        expect(await page.locator('.ranks tbody tr.partial').count()).toBe(2)
        expect(await page.getAttribute('#to-circle', 'href')).toBe('/?actor=alice.test')
        expect(await page.locator('.ranks a[href^="/?actor=pal"]').count()).toBeGreaterThan(30)
        writeFileSync(join(shots, 'history-dark.png'), await page.screenshot({ fullPage: true }))
        await page.selectOption('#days', '7')
        await page.waitForFunction(`document.querySelectorAll('.ranks tbody tr').length === 7`)
        expect(new URL(page.url()).searchParams.get('days')).toBe('7')
        await page.setViewportSize({ width: 360, height: 800 })
        await page.click('#theme')
        writeFileSync(
          join(shots, 'history-phone-light.png'),
          await page.screenshot({ fullPage: true }),
        )
        expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(360)
        expect(errors).toEqual([])
      } finally {
        await browser.close()
      }
    })

    it('history: an opted-out account gets the notice, an unknown or deleted one says so', async () => {
      const { browser, page, errors } = await open('/history?actor=gone.test')
      try {
        await page.waitForFunction(
          `document.getElementById('status').textContent.includes('opted out')`,
        )
        expect(await page.isHidden('#out')).toBe(true)
        await page.fill('#actor', 'nobody.test')
        await page.click('button[type=submit]')
        await page.waitForFunction(
          `document.getElementById('status').textContent.includes('Unknown account')`,
        )
        // Last in this file: the account stays purged.
        await h.t.redis.set(h.t.schema.accountPurged(PARTNERS[5] as string), '1')
        await page.fill('#actor', 'pal6.test')
        await page.click('button[type=submit]')
        await page.waitForFunction(
          `document.getElementById('status').textContent.includes('deleted or is unavailable')`,
        )
        expect(await page.isHidden('#circle-link')).toBe(true)
        expect(errors).toEqual([])
      } finally {
        await browser.close()
      }
    })
  },
)
