import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CHROMIUM_ARGS, CHROMIUM_PATH, haveChromium } from '@circles/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { did, type Harness, startHarness } from './helpers.js'

// The page at / in a real headless Chromium (Debian's `chromium`, driven by playwright-core): type a handle,
// submit, and check that the list filled and the circle drew (coloured pixels in the circle's screenshot);
// and an account whose backfill is under way: a progress bar, then the circle once it is done.

describe.skipIf(!haveChromium('the page test'))('the page in headless Chromium', () => {
  let h: Harness
  let base: string
  const A = did(1)
  const B = did(2)

  beforeAll(async () => {
    h = await startHarness()
    h.appview.profiles.set(A, { did: A, handle: 'alice.test', displayName: 'Alice', avatar: true })
    for (let i = 1; i <= 12; i++) {
      const p = did(200 + i)
      h.appview.profiles.set(p, { did: p, handle: `friend${i}.test`, avatar: i % 3 === 0 })
      await h.link(A, p, { like: 20 - i, reply: i % 4 })
    }
    h.appview.profiles.set(B, { did: B, handle: 'bob.test', displayName: 'Bob' })
    base = await h.app.listen({ host: '127.0.0.1', port: 0 })
  })
  afterAll(() => h?.close())

  async function launch() {
    const { chromium } = await import('playwright-core')
    return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS })
  }

  it('draws the circle and the list for a typed handle', async () => {
    const browser = await launch()
    try {
      // The page's CSP forbids eval, and Playwright polls string predicates with eval inside the page
      // (only its first check runs outside): without bypassCSP the test failed whenever the image was slow.
      const page = await browser.newPage({
        viewport: { width: 1200, height: 900 },
        bypassCSP: true,
      })
      const errors: string[] = []
      // Script errors only: console noise (no favicon; the fake AppView's http: avatars in the list, which
      // the page's CSP rightly blocks, as real ones are https:) says nothing about the page.
      page.on('pageerror', (e) => errors.push(String(e)))
      await page.goto(`${base}/`)
      await page.fill('#actor', 'alice.test')
      await page.click('button[type=submit]')
      await page.waitForSelector('#list li', { timeout: 15_000 })
      // Browser-side code as strings: this project compiles without the DOM library.
      await page.waitForFunction(
        `(() => { const img = document.getElementById('img'); return img && !img.hidden && img.complete && img.naturalWidth > 0 })()`,
      )
      expect(await page.locator('#list li').count()).toBe(12)
      expect(await page.textContent('#status')).toContain('alice.test')
      const shot = await page.locator('#img').screenshot()
      const dir = join(tmpdir(), 'fart-page-test')
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'circle.png'), shot)
      // Decode the screenshot in the browser and count pixels far from the dark background.
      const coloured = (await page.evaluate(`(async (b64) => {
        const img = new Image()
        img.src = 'data:image/png;base64,' + b64
        await img.decode()
        const c = document.createElement('canvas')
        c.width = img.naturalWidth
        c.height = img.naturalHeight
        const ctx = c.getContext('2d')
        ctx.drawImage(img, 0, 0)
        const d = ctx.getImageData(0, 0, c.width, c.height).data
        let n = 0
        for (let i = 0; i < d.length; i += 4) {
          const dist = Math.abs(d[i] - 0x16) + Math.abs(d[i + 1] - 0x20) + Math.abs(d[i + 2] - 0x2c)
          if (dist > 60) n++
        }
        return n / (d.length / 4)
      })(${JSON.stringify(shot.toString('base64'))})`)) as number
      // 13 discs on a dark square: well over 5% of the pixels are coloured; a blank or broken image has none.
      expect(coloured).toBeGreaterThan(0.05)
      expect(errors).toEqual([])
    } finally {
      await browser.close()
    }
  })

  it('shows a queued backfill as a progress bar, and the circle once it is done', async () => {
    // Queued, with nothing known of the account yet: what a first request of a new account finds.
    const key = h.t.schema.backfillAccount(B)
    await h.t.redis.hset(key, { state: 'queued', at: Date.now() })
    const browser = await launch()
    try {
      const page = await browser.newPage({ bypassCSP: true })
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(String(e)))
      const requests: string[] = []
      page.on('request', (r) => requests.push(r.url()))
      await page.goto(`${base}/?actor=bob.test`)
      await page.waitForSelector('#bf-bar', { state: 'visible', timeout: 15_000 })
      expect(await page.getAttribute('#backfill', 'aria-live')).toBe('polite')
      expect(await page.textContent('#bf-label')).toContain('history')
      // The bar's label names it for assistive technology.
      expect(await page.locator('#bf-bar').getAttribute('id')).toBe(
        await page.locator('#bf-label').getAttribute('for'),
      )
      expect(await page.locator('#list li').count()).toBe(0)

      // The worker reads the repos (here: the interactions appear) and ends.
      for (let i = 1; i <= 4; i++) {
        const p = did(300 + i)
        h.appview.profiles.set(p, { did: p, handle: `pal${i}.test` })
        await h.link(B, p, { reply: 5 - i })
      }
      await h.t.redis.hset(key, { state: 'done', done: 5, total: 5, at: Date.now() })
      await page.waitForSelector('#bf-bar', { state: 'hidden', timeout: 15_000 })
      await page.waitForFunction(`document.querySelectorAll('#list li').length === 4`, null, {
        timeout: 15_000,
      })
      expect(await page.textContent('#status')).toContain('4 people')
      await page.waitForFunction(
        `(() => { const img = document.getElementById('img'); return !img.hidden && img.complete && img.naturalWidth > 0 })()`,
      )
      expect(errors).toEqual([])
      // Nothing but this server (the fake AppView's avatars are not in this circle); blob: is the drawing
      // fetched from it.
      for (const u of requests) expect(/^(data|blob):/.test(u) || u.startsWith(base), u).toBe(true)
    } finally {
      await browser.close()
    }
  })
})
