import AxeBuilder from '@axe-core/playwright'
import { haveChromium } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { ready, type Scheme } from './browser.js'
import { webSuite } from './suite.js'
import { PAGES } from './world.js'

// axe-core on every page, drawn, in the dark and the light theme (the system's preference, as a first-time
// visitor brings it): no serious or critical violation of WCAG 2.1 A/AA. Minor and moderate ones are
// printed, not failed. And the keyboard: the skip link first, then every control by Tab, its focus shown.

const SCHEMES: Scheme[] = ['dark', 'light']

describe.skipIf(!haveChromium('the web suite (accessibility)'))('accessibility (axe)', () => {
  const web = webSuite()

  // What the keyboard must reach in each page's main part by Tab alone, after the skip link took it there.
  const CONTROLS: Record<(typeof PAGES)[number][0], string[]> = {
    explorer: [
      '#theme',
      '#actor',
      '#window',
      '#direction',
      '#weights',
      '#nolikes',
      '#list a',
      '#to-history',
    ],
    network: ['#top-kind input', '#top-authors a', '#top-subjects a'],
    history: ['#actor', '#days', '#to-circle', '.steady a', '.table-scroll', '.ranks a'],
  }

  for (const [name, path] of PAGES) {
    it(`${name}: the keyboard reaches every control, each focus shown`, async () => {
      const v = await web.open(path)
      const { page } = v
      try {
        await ready(page)
        await page.keyboard.press('Tab')
        expect(await page.evaluate('document.activeElement.className')).toBe('skip')
        await page.keyboard.press('Enter')
        expect(await page.evaluate('document.activeElement.id')).toBe('main')
        const reached = new Set<string>()
        for (let i = 0; i < 40; i++) {
          await page.keyboard.press('Tab')
          const hit = (await page.evaluate(`(() => {
            const el = document.activeElement
            const hits = ${JSON.stringify(CONTROLS[name])}.filter((s) => el.matches(s))
            return { hits, shown: el.matches(':focus-visible') && getComputedStyle(el).outlineStyle !== 'none' }
          })()`)) as { hits: string[]; shown: boolean }
          for (const s of hit.hits) {
            expect(hit.shown, `focus on ${s} is visible`).toBe(true)
            reached.add(s)
          }
        }
        expect([...reached].sort()).toEqual([...CONTROLS[name]].sort())
      } finally {
        await v.close()
      }
    })

    for (const scheme of SCHEMES) {
      it(`${name}, ${scheme} theme`, async () => {
        const v = await web.open(path, { scheme })
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
