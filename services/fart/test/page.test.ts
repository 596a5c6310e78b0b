import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { haveChromium } from '@circles/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { did, type Harness, startHarness } from './helpers.js'
import { launchBrowser } from './web/browser.js'

// The page at / in a real headless Chromium (Debian's `chromium`, driven by playwright-core): type a handle,
// submit, and check that the list filled and the circle drew (coloured pixels in the circle's screenshot);
// an account whose backfill is under way: a progress bar, then the circle once it is done; suggestions while
// typing; and a member of the drawing followed by mouse and by keyboard to their own circle.

/** The inline drawing is in place. (Browser-side code as strings: this project compiles without the DOM library.) */
const DRAWN = `(() => { const svg = document.querySelector('#drawing svg'); return svg && !document.getElementById('drawing').hidden })()`

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

  it('draws the circle and the list for a typed handle', async () => {
    const browser = await launchBrowser()
    try {
      // The page's CSP forbids eval, and Playwright polls string predicates with eval inside the page
      // (only its first check runs outside): without bypassCSP the test failed whenever the image was slow.
      const page = await browser.newPage({
        viewport: { width: 1200, height: 900 },
        bypassCSP: true,
      })
      const errors: string[] = []
      // Script errors only here: the web suite (test/web) checks every page's console and failed requests.
      page.on('pageerror', (e) => errors.push(String(e)))
      await page.goto(`${base}/`)
      await page.fill('#actor', 'alice.test')
      await page.click('button[type=submit]')
      await page.waitForSelector('#list li', { timeout: 15_000 })
      // Browser-side code as strings: this project compiles without the DOM library.
      await page.waitForFunction(DRAWN)
      expect(await page.locator('#list li').count()).toBe(12)
      expect(await page.textContent('#status')).toContain('alice.test')
      const shot = await page.locator('#drawing svg').screenshot()
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
    const browser = await launchBrowser()
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
      await page.waitForFunction(DRAWN)
      expect(errors).toEqual([])
      // Nothing but this server (the fake AppView's avatars are not in this circle).
      for (const u of requests) expect(u.startsWith('data:') || u.startsWith(base), u).toBe(true)
    } finally {
      await browser.close()
    }
  })
  it('suggests cached accounts while typing, and not an opted-out one', async () => {
    // The circle caches alice's partners' profiles, and so their names.
    expect((await h.app.inject(`/v1/circles/${A}`)).statusCode).toBe(200)
    const browser = await launchBrowser()
    try {
      const page = await browser.newPage({ bypassCSP: true })
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(String(e)))
      await page.goto(`${base}/`)
      const options = `[...document.querySelectorAll('#suggestions option')].map((o) => o.value)`
      await page.locator('#actor').pressSequentially('frie')
      await page.waitForFunction(`${options}.includes('friend1.test')`, null, { timeout: 10_000 })
      expect(await page.evaluate(options)).toEqual([
        'friend1.test',
        'friend10.test',
        'friend11.test',
        'friend12.test',
        'friend2.test',
        'friend3.test',
        'friend4.test',
        'friend5.test',
      ])
      await page.fill('#actor', 'friend7')
      await page.waitForFunction(`${options}.join() === 'friend7.test'`, null, { timeout: 10_000 })
      // Picking it (the browser puts the option in as one replacement) draws its circle.
      await page.evaluate(`(() => {
        const input = document.getElementById('actor')
        input.value = 'friend7.test'
        input.dispatchEvent(new InputEvent('input', { inputType: 'insertReplacementText', bubbles: true }))
      })()`)
      await page.waitForFunction(
        `document.getElementById('status').textContent.startsWith('friend7.test:')`,
      )
      expect(new URL(page.url()).searchParams.get('actor')).toBe('friend7.test')
      await page.fill('#actor', 'friend7')
      await page.waitForFunction(`${options}.join() === 'friend7.test'`, null, { timeout: 10_000 })
      // Opted out: the next keystrokes' answer leaves it out.
      await h.t.redis.sadd(h.t.schema.optOuts, did(207))
      try {
        const answered = page.waitForResponse((r) => r.url().includes('q=friend7.'))
        await page.locator('#actor').pressSequentially('.')
        expect((await (await answered).json()).actors).toEqual([])
        await page.waitForFunction(`${options}.length === 0`, null, { timeout: 10_000 })
      } finally {
        await h.t.redis.srem(h.t.schema.optOuts, did(207))
      }
      expect(errors).toEqual([])
    } finally {
      await browser.close()
    }
  })

  it('opens a member’s circle from the drawing, by mouse and by keyboard, and keeps the controls', async () => {
    const browser = await launchBrowser()
    try {
      const page = await browser.newPage({
        viewport: { width: 1200, height: 900 },
        bypassCSP: true,
      })
      const errors: string[] = []
      page.on('pageerror', (e) => errors.push(String(e)))
      await page.goto(`${base}/?actor=alice.test&window=24h`)
      await page.waitForFunction(DRAWN, null, { timeout: 15_000 })
      // Every member is a link named by its handle, the actor in the middle is not.
      const links = page.locator('#drawing svg a')
      expect(await links.count()).toBe(12)
      expect(await page.locator('#drawing svg g > title').count()).toBe(13)
      const friend3 = page
        .locator('#drawing')
        .getByRole('link', { name: 'friend3.test', exact: true })
      expect(await friend3.getAttribute('href')).toBe(
        `/?actor=${encodeURIComponent(did(203))}&window=24h`,
      )
      expect(await page.getAttribute('#drawing svg', 'aria-label')).toContain('alice.test')

      await friend3.click()
      await page.waitForFunction(
        `document.getElementById('status').textContent.startsWith('friend3.test:')`,
      )
      const url = new URL(page.url())
      expect(url.searchParams.get('actor')).toBe(did(203))
      expect(url.searchParams.get('window')).toBe('24h')
      expect(await page.inputValue('#window')).toBe('24h')
      await page.waitForFunction(`document.querySelectorAll('#drawing svg a').length === 1`)
      // Back: alice's circle again, from the URL.
      await page.goBack()
      await page.waitForFunction(
        `document.getElementById('status').textContent.startsWith('alice.test:')`,
      )
      await page.waitForFunction(`document.querySelectorAll('#drawing svg a').length === 12`)

      // Keyboard: Tab from the Draw button reaches a member's link, and Enter follows it.
      await page.focus('button[type=submit]')
      let focused: string | null = null
      for (let i = 0; i < 10 && !focused; i++) {
        await page.keyboard.press('Tab')
        focused = (await page.evaluate(
          `document.activeElement && document.activeElement.closest('#drawing a') ? document.activeElement.querySelector('title').textContent : null`,
        )) as string | null
      }
      expect(focused).toMatch(/^friend\d+\.test$/)
      await page.keyboard.press('Enter')
      await page.waitForFunction(
        `document.getElementById('status').textContent.startsWith(${JSON.stringify(`${focused}:`)})`,
      )
      expect(new URL(page.url()).searchParams.get('actor')).toMatch(/^did:plc:/)
      expect(errors).toEqual([])
    } finally {
      await browser.close()
    }
  })
})
