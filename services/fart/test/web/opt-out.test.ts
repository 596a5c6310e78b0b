import { haveChromium } from '@circles/testkit'
import { describe, expect, it } from 'vitest'
import { ready } from './browser.js'
import { webSuite } from './suite.js'
import { CENTRE, OPTED_OUT, PARTNER } from './world.js'

// An account that opted out after interacting with the centre (it is in the centre's live index and ranked
// first in every list of the stats document): the notice on its circle and its history, and its name
// nowhere else.

describe.skipIf(!haveChromium('the web suite (opt-out)'))('an opted-out account', () => {
  const web = webSuite()

  /** The API's refusal is the only failed request and the only console line (Chromium logs every 4xx). */
  function onlyRefusal(v: { errors: string[]; failed: string[] }, api: string) {
    expect(v.failed).toHaveLength(1)
    expect(v.failed[0]).toMatch(new RegExp(`^403 ${web.base()}${api}[?]`))
    expect(v.errors).toHaveLength(1)
    expect(v.errors[0]).toContain('status of 403')
  }

  for (const [page, path, api] of [
    ['explorer', `/?actor=${OPTED_OUT.handle}`, `/v1/circles/${OPTED_OUT.handle}`],
    ['history', `/history?actor=${OPTED_OUT.handle}`, `/v1/accounts/${OPTED_OUT.handle}/history`],
  ] as const) {
    it(`${page}: the opt-out notice, nothing drawn`, async () => {
      const v = await web.open(path)
      try {
        await v.page.waitForFunction(
          `document.getElementById('status').textContent.includes('opted out')`,
        )
        expect(await v.page.textContent('#status')).toMatch(/^This account has opted out/)
        expect(await v.page.isHidden('#out')).toBe(true)
        // The footer says how to leave, on every page.
        expect(await v.page.textContent('#privacy')).toContain('Any account can leave')
        onlyRefusal(v, api)
      } finally {
        await v.close()
      }
    })
  }

  it('network: absent from every top list of every kind', async () => {
    const v = await web.open(`/stats`)
    const { page } = v
    try {
      await ready(page)
      for (const kind of ['Replies', 'Quotes', 'Reposts', 'Likes', 'All kinds']) {
        await page.click(`#top-kind label:has-text("${kind}")`)
        const text = (await page.locator('#top').textContent()) ?? ''
        expect(text, kind).toContain(CENTRE.name)
        expect(text, kind).not.toContain(OPTED_OUT.name)
        expect(text, kind).not.toContain(OPTED_OUT.handle)
        const hrefs = await page
          .locator('#top a')
          .evaluateAll((as) => as.map((a) => a.getAttribute('href')))
        expect(hrefs).not.toContain(`/?actor=${OPTED_OUT.handle}`)
      }
      expect(v.errors).toEqual([])
      expect(v.failed).toEqual([])
    } finally {
      await v.close()
    }
  })

  it('absent from the circle and the history of an account it interacted with', async () => {
    for (const path of [`/?actor=${CENTRE.handle}`, `/history?actor=${CENTRE.handle}`]) {
      const v = await web.open(path)
      try {
        await ready(v.page)
        const text = (await v.page.locator('main').textContent()) ?? ''
        expect(text, path).toContain(PARTNER.name)
        expect(text, path).not.toContain(OPTED_OUT.name)
        expect(v.errors).toEqual([])
      } finally {
        await v.close()
      }
    }
  })
})
