import { haveChromium } from '@circles/testkit'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { launchBrowser, ready, visit } from './browser.js'
import { CENTRE, startWorld, type World } from './world.js'

// Every page on the demo-shaped data, as a visitor first opens it: drawn, with no console or script error
// and no request that failed or was refused.

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

  for (const path of [`/?actor=${CENTRE.handle}`, '/stats', `/history?actor=${CENTRE.handle}`]) {
    it(path, async () => {
      const v = await visit(browser, `${world.base}${path}`)
      try {
        await ready(v.page)
        await v.page.screenshot({
          path: `/tmp/webtest-${path.replace(/\W/g, '_')}.png`,
          fullPage: true,
        })
        expect(v.errors).toEqual([])
        expect(v.failed).toEqual([])
      } finally {
        await v.close()
      }
    })
  }
})
