import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CHROMIUM_ARGS, CHROMIUM_PATH, haveChromium } from '@circles/testkit'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { did, type Harness, startHarness } from './helpers.js'

// The page at / in a real headless Chromium (Debian's `chromium`, driven by playwright-core): type a handle,
// submit, and check that the list filled and the circle drew (coloured pixels in the circle's screenshot).

describe.skipIf(!haveChromium('the page test'))('the page in headless Chromium', () => {
  let h: Harness
  let base: string
  const A = did(1)

  beforeAll(async () => {
    h = await startHarness()
    h.appview.profiles.set(A, { did: A, handle: 'alice.test', displayName: 'Alice', avatar: true })
    for (let i = 1; i <= 12; i++) {
      const p = did(200 + i)
      h.appview.profiles.set(p, { did: p, handle: `friend${i}.test`, avatar: i % 3 === 0 })
      await h.link(A, p, { like: 20 - i, reply: i % 4 })
    }
    base = await h.app.listen({ host: '127.0.0.1', port: 0 })
  })
  afterAll(() => h?.close())

  it('draws the circle and the list for a typed handle', async () => {
    const { chromium } = await import('playwright-core')
    const browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      args: CHROMIUM_ARGS,
    })
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
})
