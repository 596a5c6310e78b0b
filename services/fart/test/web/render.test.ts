import { haveChromium } from '@circles/testkit'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { DESKTOP, launchBrowser, PHONE, ready, visit } from './browser.js'
import { PAGES, startWorld, type World } from './world.js'

// Every page on the demo-shaped data as a visitor first opens it, at desktop and phone width: drawn, with
// no console or script error, no request that failed or was refused, and nothing wider than the screen.

describe.skipIf(!haveChromium('the web suite (render)'))('every page renders cleanly', () => {
  let world: World
  let browser: Browser

  beforeAll(async () => {
    ;[world, browser] = await Promise.all([startWorld(), launchBrowser()])
  })
  afterAll(async () => {
    await browser?.close()
    await world?.h.close()
  })

  for (const [name, path, content] of PAGES) {
    for (const [width, viewport] of [
      ['desktop', DESKTOP],
      ['phone', PHONE],
    ] as const) {
      it(`${name} at ${width} width`, async () => {
        const v = await visit(browser, `${world.base}${path}`, { viewport })
        try {
          await ready(v.page)
          expect(await v.page.locator(content).count()).toBeGreaterThan(0)
          expect(await v.page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(
            viewport.width,
          )
          expect(v.errors).toEqual([])
          expect(v.failed).toEqual([])
        } finally {
          await v.close()
        }
      })
    }
  }
})
