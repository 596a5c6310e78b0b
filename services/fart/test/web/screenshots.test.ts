import { haveChromium } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { DESKTOP, PHONE, ready, type Scheme } from './browser.js'
import { MAX_DIFFERING, matchScreenshot, type ShotOptions } from './screenshots.js'
import { webSuite } from './suite.js'
import { PAGES } from './world.js'

// Every page drawn at desktop (1280x800) and phone (390x844) width in the dark theme, and at desktop width
// in the light one, compared with __screenshots__/<page>-<width>-<theme>.png (see screenshots.ts; record them
// anew with `pnpm test:web:update`). Painted over: what prints today's date or the time.

const MASKS: Record<(typeof PAGES)[number][0], ShotOptions> = {
  explorer: {},
  network: { mask: ['#status', '#live-status'], xAxes: ['#hours'] },
  history: {
    mask: ['#partial-note', '.ranks tbody th'],
    xAxes: ['#chart-sent', '#chart-received'],
  },
}

const CASES = [
  ['desktop', DESKTOP, 'dark'],
  ['phone', PHONE, 'dark'],
  ['desktop', DESKTOP, 'light'],
] as const satisfies readonly (readonly [string, { width: number; height: number }, Scheme])[]

describe.skipIf(!haveChromium('the web suite (screenshots)'))('screenshots', () => {
  const web = webSuite()

  for (const [name, path, content] of PAGES) {
    for (const [width, viewport, scheme] of CASES) {
      it(`${name} at ${width} width, ${scheme}`, async () => {
        const v = await web.open(path, { viewport, scheme })
        try {
          await ready(v.page)
          await v.page.waitForSelector(content)
          // Lazy avatars below the fold load as the full-page capture scrolls: load them all first.
          await v.page.evaluate(
            `Promise.all([...document.images].map((i) => { i.loading = 'eager'; return i.decode().catch(() => {}) }))`,
          )
          const shot = await matchScreenshot(v.page, `${name}-${width}-${scheme}`, MASKS[name])
          expect(shot.differing).toBeLessThanOrEqual(MAX_DIFFERING)
        } finally {
          await v.close()
        }
      })
    }
  }
})
