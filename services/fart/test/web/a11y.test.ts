import AxeBuilder from '@axe-core/playwright'
import { haveChromium } from '@circles/testkit'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchBrowser, ready, type Scheme, visit } from './browser.js'
import { PAGES, startWorld, type World } from './world.js'

// axe-core on every page, drawn, in the dark and the light theme (the system's preference, as a first-time
// visitor brings it): no serious or critical violation of WCAG 2.1 A/AA. Minor and moderate ones are
// printed, not failed.

const SCHEMES: Scheme[] = ['dark', 'light']

describe.skipIf(!haveChromium('the web suite (accessibility)'))('accessibility (axe)', () => {
  let world: World
  let browser: Browser

  beforeAll(async () => {
    ;[world, browser] = await Promise.all([startWorld(), launchBrowser()])
  })
  afterAll(async () => {
    await browser?.close()
    await world?.h.close()
  })

  for (const [name, path] of PAGES) {
    for (const scheme of SCHEMES) {
      it(`${name}, ${scheme} theme`, async () => {
        const v = await visit(browser, `${world.base}${path}`, { scheme })
        try {
          await ready(v.page)
          expect(await v.page.getAttribute('html', 'data-theme')).toBe(scheme)
          const result = await new AxeBuilder({ page: v.page })
            .withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'])
            .analyze()
          const grave = result.violations.filter(
            (x) => x.impact === 'serious' || x.impact === 'critical',
          )
          const lesser = result.violations.filter((x) => !grave.includes(x))
          if (lesser.length > 0) {
            console.warn(
              `${name} (${scheme}): ${lesser.map((x) => `${x.id} (${x.impact})`).join(', ')}`,
            )
          }
          expect(
            grave.map((x) => ({
              id: x.id,
              impact: x.impact,
              help: x.help,
              nodes: x.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`),
            })),
          ).toEqual([])
          expect(result.passes.length).toBeGreaterThan(10)
        } finally {
          await v.close()
        }
      })
    }
  }
})
