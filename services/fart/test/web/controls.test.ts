import { haveChromium } from '@circles/testkit'
import type { Page } from 'playwright-core'
import { describe, expect, it } from 'vitest'
import { ready, shown, type Visit } from './browser.js'
import { webSuite } from './suite.js'
import { CENTRE, HISTORY_DAYS } from './world.js'

// Each control changes the URL (so the state can be shared) and what the page shows: the explorer's window,
// direction, "no likes" and weights change the drawing or the ranked list; the history's days change the
// charts' span; the network's kind changes the top lists; the theme switch changes the colours.

describe.skipIf(!haveChromium('the web suite (controls)'))('controls', () => {
  const web = webSuite()

  async function open(path: string): Promise<Visit> {
    const v = await web.open(path)
    await ready(v.page)
    return v
  }

  /** What the page shows once it stays the same for 300 ms (the list comes before the drawing). */
  async function settled(page: Page, selectors: string[]): Promise<string[]> {
    let last = await shown(page, selectors)
    for (;;) {
      await page.waitForTimeout(300)
      const now = await shown(page, selectors)
      if (JSON.stringify(now) === JSON.stringify(last)) return now
      last = now
    }
  }

  /**
   * Runs `act`, waits until the page shows something else than before and settles; returns the URL's query
   * and whether the drawing changed.
   */
  async function changes(page: Page, selectors: string[], act: () => Promise<unknown>) {
    const before = await settled(page, selectors)
    await act()
    await expect.poll(() => shown(page, selectors), { timeout: 15_000 }).not.toEqual(before)
    const after = await settled(page, selectors)
    return { q: new URL(page.url()).searchParams, redrawn: after.at(-1) !== before.at(-1) }
  }

  it('explorer: window, direction, no likes, weights', async () => {
    const v = await open(`/?actor=${CENTRE.handle}`)
    const { page } = v
    try {
      const what = ['#list']
      let c = await changes(page, what, () => page.selectOption('#window', '7d'))
      expect(c.q.get('window')).toBe('7d')
      expect(c.redrawn).toBe(true)
      expect(await page.textContent('#status')).toContain('over 7d')
      c = await changes(page, what, () => page.selectOption('#window', '24h'))
      expect(c.q.get('window')).toBe('24h')
      expect(c.redrawn).toBe(true)
      c = await changes(page, what, () => page.selectOption('#direction', 'sent'))
      expect(c.q.get('direction')).toBe('sent')
      expect(c.redrawn).toBe(true)
      c = await changes(page, what, () => page.check('#nolikes'))
      expect(c.q.get('nolikes')).toBe('1')
      c = await changes(page, what, () => page.selectOption('#weights', { index: 1 }))
      expect(c.q.get('weights')).toBe('reply:1,quote:1,repost:1,like:1')
      const q = c.q
      expect(Object.fromEntries(q)).toEqual({
        actor: CENTRE.handle,
        window: '24h',
        direction: 'sent',
        weights: 'reply:1,quote:1,repost:1,like:1',
        nolikes: '1',
      })
      // The shared URL opens the same state.
      const again = await open(`/?${q}`)
      try {
        expect(await settled(again.page, what)).toEqual(await settled(page, what))
        expect(await again.page.inputValue('#direction')).toBe('sent')
        expect(await again.page.isChecked('#nolikes')).toBe(true)
      } finally {
        await again.close()
      }
      expect(v.errors).toEqual([])
      expect(v.failed).toEqual([])
    } finally {
      await v.close()
    }
  })

  it('history: days', async () => {
    const v = await open(`/history?actor=${CENTRE.handle}`)
    const { page } = v
    try {
      expect(await page.locator('.ranks tbody tr').count()).toBe(HISTORY_DAYS)
      const what = ['.ranks tbody', '#table-sent']
      let { q } = await changes(page, what, () => page.selectOption('#days', '7'))
      expect(q.get('days')).toBe('7')
      expect(await page.locator('.ranks tbody tr').count()).toBe(7)
      expect(await page.locator('#table-sent tbody tr').count()).toBe(7)
      ;({ q } = await changes(page, what, () => page.selectOption('#days', '90')))
      expect(q.get('days')).toBe('90')
      expect(await page.locator('#table-sent tbody tr').count()).toBe(90)
      expect(v.errors).toEqual([])
      expect(v.failed).toEqual([])
    } finally {
      await v.close()
    }
  })

  it('network: kind of interaction', async () => {
    const v = await open('/stats')
    const { page } = v
    try {
      const { q } = await changes(page, ['#top-authors', '#top-subjects'], () =>
        page.click('#top-kind label:has-text("Replies")'),
      )
      expect(q.get('kind')).toBe('reply')
      expect(await page.isChecked('#top-kind input[value=reply]')).toBe(true)
      expect(v.errors).toEqual([])
      expect(v.failed).toEqual([])
    } finally {
      await v.close()
    }
  })

  it('theme switch: light and back, kept across pages', async () => {
    const v = await open(`/history?actor=${CENTRE.handle}`)
    const { page } = v
    try {
      const colours = () =>
        page.evaluate<[string, string]>(
          `[getComputedStyle(document.body).backgroundColor, document.documentElement.dataset.theme]`,
        )
      const dark = await colours()
      expect(dark[1]).toBe('dark')
      await page.click('#theme')
      const light = await colours()
      expect(light[1]).toBe('light')
      expect(light[0]).not.toBe(dark[0])
      expect(await page.getAttribute('#theme', 'aria-pressed')).toBe('true')
      // The charts are drawn again in the light colours (uPlot cannot recolour what it drew).
      await page.waitForSelector('#chart-sent canvas')
      await page.click('nav[aria-label=Site] a:has-text("Network")')
      await ready(page)
      expect(await colours()).toEqual(light)
      await page.click('#theme')
      expect(await colours()).toEqual(dark)
      expect(v.errors).toEqual([])
    } finally {
      await v.close()
    }
  })
})
