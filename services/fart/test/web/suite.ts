import type { Browser } from 'playwright-core'
import { afterAll, beforeAll } from 'vitest'
import { launchBrowser, type Visit, type VisitOptions, visit } from './browser.js'
import { startWorld, type World } from './world.js'

// Every file of the suite: its own world (a private key prefix, a fart on a free port) and browser, started
// before its tests and closed after them.

export interface WebSuite {
  /** The fart under test, e.g. http://127.0.0.1:PORT (once the suite started). */
  base(): string
  /** Opens `path` of the fart under test in a fresh browser context. */
  open(path: string, options?: VisitOptions): Promise<Visit>
}

export function webSuite(): WebSuite {
  let world: World | undefined
  let browser: Browser | undefined
  beforeAll(async () => {
    ;[world, browser] = await Promise.all([startWorld(), launchBrowser()])
  })
  afterAll(async () => {
    await browser?.close()
    await world?.h.close()
  })
  const started = (): [World, Browser] => {
    if (!world || !browser) throw new Error('the web suite has not started')
    return [world, browser]
  }
  return {
    base: () => started()[0].base,
    open: (path, options) => {
      const [w, b] = started()
      return visit(b, `${w.base}${path}`, options)
    },
  }
}
