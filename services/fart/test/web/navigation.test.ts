import { haveChromium } from '@circles/testkit'
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { ready, where } from './browser.js'
import { webSuite } from './suite.js'
import { CENTRE, HISTORY_DAYS, PARTNER } from './world.js'

// A visitor's walk: the centre's circle, a click on its strongest partner in the ranked list, that partner's
// circle, its history through the "History" link, and back again with the browser's back button.

/** Waits until the inline drawing is `handle`'s circle (the page marks itself ready once, at its first draw). */
function drawnFor(page: Page, handle: string): Promise<unknown> {
  return page.waitForSelector(`#drawing svg[aria-label^="Interaction circle of ${handle}:"]`, {
    state: 'attached',
  })
}

describe.skipIf(!haveChromium('the web suite (navigation)'))('navigation', () => {
  const web = webSuite()

  it('explorer -> partner -> its circle -> its history, and back', async () => {
    const v = await web.open(`/?actor=${CENTRE.handle}`)
    const { page } = v
    try {
      await ready(page)
      expect(await page.textContent('#status')).toContain(`${CENTRE.handle}: 9 people`)
      const first = page.locator('#list li a').first()
      expect(await first.textContent()).toBe(PARTNER.name)

      await first.click()
      await page.waitForFunction(
        `document.getElementById('status').textContent.startsWith(${JSON.stringify(`${PARTNER.handle}:`)})`,
      )
      // Its drawing arrives after the status line: leaving before it would abort that request.
      await drawnFor(page, PARTNER.handle)
      expect(where(page)).toBe(`/?actor=${PARTNER.handle}`)
      const names = await page.locator('#list li a').allTextContents()
      // The partner's own circle: the centre and the four it talks with.
      expect(names).toHaveLength(5)
      expect(names).toContain(CENTRE.name)
      expect(await page.textContent('#status')).toContain('5 people')

      await page.click('#to-history')
      await page.waitForURL(/\/history\?/)
      await ready(page)
      expect(where(page)).toBe(`/history?actor=${PARTNER.handle}`)
      expect(await page.textContent('#status')).toContain(`${PARTNER.handle}:`)
      await page.waitForSelector('#chart-sent canvas')
      expect(await page.locator('.ranks tbody tr').count()).toBe(HISTORY_DAYS)
      expect(await page.getAttribute('#to-circle', 'href')).toBe(`/?actor=${PARTNER.handle}`)

      // Back: the partner's circle (a page of its own in the history), then the centre's (pushState).
      await page.goBack()
      await page.waitForFunction(
        `document.getElementById('status').textContent.startsWith(${JSON.stringify(`${PARTNER.handle}:`)})`,
      )
      await page.goBack()
      await page.waitForFunction(
        `document.getElementById('status').textContent.startsWith(${JSON.stringify(`${CENTRE.handle}:`)})`,
      )
      await drawnFor(page, CENTRE.handle)
      expect(where(page)).toBe(`/?actor=${CENTRE.handle}`)
      expect(v.errors).toEqual([])
      expect(v.failed).toEqual([])
    } finally {
      await v.close()
    }
  })

  it('a ctrl-click on a member (list or drawing) opens it in a new tab and leaves this page as it is', async () => {
    const v = await web.open(`/?actor=${CENTRE.handle}`)
    const { page, context } = v
    try {
      await ready(page)
      for (const member of ['#list li a', '#drawing svg a']) {
        const opened = context.waitForEvent('page')
        await page
          .locator(member)
          .first()
          .click({ modifiers: ['Control'] })
        const tab = await opened
        await tab.waitForLoadState()
        expect(new URL(tab.url()).searchParams.get('actor'), member).not.toBe(CENTRE.handle)
        await tab.close()
        expect(where(page), member).toBe(`/?actor=${CENTRE.handle}`)
        expect(await page.textContent('#status')).toContain(`${CENTRE.handle}: 9 people`)
      }
      expect(v.errors).toEqual([])
    } finally {
      await v.close()
    }
  })

  it('the site navigation reaches every page, the current one marked', async () => {
    const v = await web.open(`/stats`)
    const { page } = v
    try {
      await ready(page)
      for (const [label, path] of [
        ['History', '/history'],
        ['Circles', '/'],
        ['Network', '/stats'],
      ] as const) {
        await page.click(`nav[aria-label=Site] a:has-text("${label}")`)
        await page.waitForURL((u) => u.pathname === path)
        expect(await page.getAttribute('nav a[aria-current=page]', 'href')).toBe(path)
      }
      expect(v.errors).toEqual([])
    } finally {
      await v.close()
    }
  })
})
