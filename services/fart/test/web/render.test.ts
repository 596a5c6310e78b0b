import { haveChromium } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { DESKTOP, PHONE, ready } from './browser.js'
import { webSuite } from './suite.js'
import { PAGES } from './world.js'

// Every page on the demo-shaped data as a visitor first opens it, at desktop and phone width: drawn, with
// no console or script error, no request that failed or was refused, and nothing wider than the screen.

describe.skipIf(!haveChromium('the web suite (render)'))('every page renders cleanly', () => {
  const web = webSuite()

  for (const [name, path, content] of PAGES) {
    for (const [width, viewport] of [
      ['desktop', DESKTOP],
      ['phone', PHONE],
    ] as const) {
      it(`${name} at ${width} width`, async () => {
        const v = await web.open(path, { viewport })
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
