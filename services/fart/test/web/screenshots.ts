import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import pixelmatch from 'pixelmatch'
import type { Page } from 'playwright-core'
import { PNG } from 'pngjs'

// Screenshots compared with the stored ones in __screenshots__/: at most MAX_DIFFERING (0.1%) of the pixels
// may differ (pixelmatch, anti-aliasing ignored), so a moved line or a new colour fails and a glyph's hinting
// does not. What changes by itself (dates, "N min ago", the time of the last live update) is painted over
// in a flat colour before comparing. `pnpm test:web:update` (UPDATE_SCREENSHOTS=1) records them anew; a
// mismatch writes the actual picture and a diff beside each other in FAILED_DIR and says so.

export const STORED_DIR = join(dirname(fileURLToPath(import.meta.url)), '__screenshots__')
export const FAILED_DIR = join(tmpdir(), 'circles-web-screenshots')
/**
 * Share of pixels allowed to differ. Runs on one machine differ by none (nor with the clock 17 days ahead:
 * TEST_CLOCK_SHIFT_DAYS); 1% let through a circle whose like counts had all grown by two (0.17-0.28%).
 */
export const MAX_DIFFERING = 0.001
const UPDATE = ['1', 'true'].includes(process.env.UPDATE_SCREENSHOTS ?? '')

export interface ShotOptions {
  /** selectors of elements painted over (all matches of each) */
  mask?: readonly string[]
  /** uPlot charts (selector of the chart's box) whose x axis, which prints dates or hours, is painted over */
  xAxes?: readonly string[]
}

export interface ShotResult {
  name: string
  /** share of pixels that differ, 0 when just recorded */
  differing: number
  recorded: boolean
}

export class ScreenshotMismatch extends Error {
  override name = 'ScreenshotMismatch'
}

/**
 * The font the pages' `system-ui, sans-serif` comes to, for the mismatch message: the stored pictures were
 * drawn with DejaVu Sans (Debian's fonts-dejavu-core, which Chromium's fontconfig brings), and another font
 * moves every line of text.
 */
function sansSerif(): string {
  try {
    return execFileSync('fc-match', ['sans-serif'], { encoding: 'utf8', timeout: 5000 }).trim()
  } catch {
    return 'unknown (no fc-match)'
  }
}

function mismatch(what: string): ScreenshotMismatch {
  return new ScreenshotMismatch(`${what} (sans-serif here: ${sansSerif()})`)
}

/**
 * Covers each chart's x axis, from the chart's left edge to its right (the first and last dates overhang the
 * axis box uPlot keeps), with a box of the mask colour.
 */
async function coverAxes(page: Page, charts: readonly string[]): Promise<void> {
  await page.evaluate(`(${JSON.stringify(charts)}).forEach((sel) => {
    for (const chart of document.querySelectorAll(sel + ' .uplot')) {
      const box = chart.getBoundingClientRect()
      const plot = chart.querySelector('.u-over').getBoundingClientRect()
      const legend = chart.querySelector('.u-legend')
      const bottom = legend ? legend.getBoundingClientRect().top : box.bottom
      const cover = document.createElement('div')
      cover.style.cssText = 'position:absolute;z-index:99;background:#ff00ff;left:' + (box.left + scrollX) +
        'px;top:' + (plot.bottom + scrollY + 1) + 'px;width:' + box.width + 'px;height:' + (bottom - plot.bottom - 1) + 'px'
      document.body.append(cover)
    }
  })`)
}

async function capture(page: Page, { mask = [], xAxes = [] }: ShotOptions): Promise<Buffer> {
  await coverAxes(page, xAxes)
  return page.screenshot({
    fullPage: true,
    animations: 'disabled',
    caret: 'hide',
    mask: mask.map((s) => page.locator(s)),
    maskColor: '#ff00ff',
  })
}

/** Compares the page as it is now with `<name>.png`, or records it under UPDATE_SCREENSHOTS=1. */
export async function matchScreenshot(
  page: Page,
  name: string,
  options: ShotOptions = {},
): Promise<ShotResult> {
  const stored = join(STORED_DIR, `${name}.png`)
  const shot = await capture(page, options)
  if (UPDATE) {
    mkdirSync(STORED_DIR, { recursive: true })
    writeFileSync(stored, shot)
    return { name, differing: 0, recorded: true }
  }
  mkdirSync(FAILED_DIR, { recursive: true })
  const actualPath = join(FAILED_DIR, `${name}.actual.png`)
  if (!existsSync(stored)) {
    writeFileSync(actualPath, shot)
    throw mismatch(
      `no stored screenshot ${stored}: the page as drawn now is ${actualPath}; pnpm test:web:update records it`,
    )
  }
  const want = PNG.sync.read(readFileSync(stored))
  const got = PNG.sync.read(shot)
  if (want.width !== got.width || want.height !== got.height) {
    writeFileSync(actualPath, shot)
    throw mismatch(
      `${name}: ${got.width}x${got.height} drawn, ${want.width}x${want.height} stored (${stored}); actual: ${actualPath}`,
    )
  }
  const diff = new PNG({ width: got.width, height: got.height })
  const n = pixelmatch(want.data, got.data, diff.data, got.width, got.height, { threshold: 0.1 })
  const differing = n / (got.width * got.height)
  if (differing > MAX_DIFFERING) {
    const diffPath = join(FAILED_DIR, `${name}.diff.png`)
    writeFileSync(actualPath, shot)
    writeFileSync(diffPath, PNG.sync.write(diff))
    throw mismatch(
      `${name}: ${(differing * 100).toFixed(2)}% of the pixels differ (at most ${MAX_DIFFERING * 100}%) from ${stored}; actual: ${actualPath}, diff: ${diffPath}`,
    )
  }
  return { name, differing, recorded: false }
}
