import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { calendarPins, scanRepository } from '../src/timeless.js'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
// Spelled in pieces so that this file does not trip the guard it tests.
const DATE = ['2026', '11', '20'].join('-')
const REDIS = ['createTest', 'Redis'].join('')

describe('the calendar guard', () => {
  it('finds no test that reaches Redis with a pinned calendar date in this repository', () => {
    const report = scanRepository(ROOT)
    expect(report.offenders).toEqual([])
    // the classification sees both kinds: the indexer's semantics reach Redis, the codec's do not
    expect(report.redisTests).toContain('services/indexer/test/index-semantics.test.ts')
    expect(report.pureTests).toContain('packages/core/src/codec.test.ts')
  })

  it('names every form of pin and ignores comments and the current time', () => {
    expect(calendarPins(`const T0 = Date.parse('${DATE}T12:30:00.000Z')`)).toEqual([
      "line 1: a date string ('2026-11-20)",
    ])
    expect(
      calendarPins('const a = Date.UTC(2026, 10, 20)\nconst b = new Date(2026, 10, 20)'),
    ).toEqual(['line 1: Date.UTC (Date.UTC()', 'line 2: new Date(year, ...) (new Date(2026,)'])
    expect(calendarPins('const t = 1_763_641_800_000\nconst u = 1763641800000')).toHaveLength(2)
    expect(
      calendarPins(
        `// pinned ${DATE} once\n/* ${DATE} */\nconst t = Date.now()\nconst m = 4294967296\nconst u = 'redis://x' // ${DATE}`,
      ),
    ).toEqual([])
  })

  it('moves every Date of the process by TEST_CLOCK_SHIFT_DAYS (pnpm test:timeless), and only then', () => {
    const real = performance.timeOrigin + performance.now()
    const shift = Number(process.env.TEST_CLOCK_SHIFT_DAYS ?? 0) * 86_400_000
    expect(Math.abs(Date.now() - real - shift)).toBeLessThan(1000)
    expect(Math.abs(Date.parse(new Date().toISOString()) - real - shift)).toBeLessThan(1000)
    expect(new Date(0).getTime()).toBe(0)
  })

  describe('on a scratch repository', () => {
    let dir: string | undefined
    afterEach(async () => {
      if (dir) await rm(dir, { recursive: true, force: true })
    })

    async function scratch(files: Record<string, string>) {
      dir = await mkdtemp(join(tmpdir(), 'circles-timeless-'))
      for (const [path, text] of Object.entries(files)) {
        await mkdir(dirname(join(dir, path)), { recursive: true })
        await writeFile(join(dir, path), text)
      }
      return scanRepository(dir)
    }

    it('fails a Redis test that pins a date, itself or through a test helper', async () => {
      const report = await scratch({
        'services/x/test/direct.test.ts': `import { ${REDIS} } from '@circles/testkit'\nconst T0 = Date.parse('${DATE}T12:30:00Z')\n`,
        'services/x/test/helpers.ts': `export const T0 = Date.parse('${DATE}T12:30:00Z')\n`,
        'services/x/test/via-helper.test.ts': `import { T0 } from './helpers.js'\nimport { ${REDIS} } from '@circles/testkit'\n`,
        'services/x/test/pure.test.ts': `import { T0 } from './helpers.js'\nconst d = Date.parse('${DATE}')\n`,
      })
      expect(report.offenders).toEqual([
        `services/x/test/direct.test.ts: line 2: a date string ('${DATE})`,
        `services/x/test/helpers.ts: line 1: a date string ('${DATE})`,
      ])
      expect(report.pureTests).toEqual(['services/x/test/pure.test.ts'])
    })

    it('fails a pin in the testkit, which every Redis test uses', async () => {
      const report = await scratch({
        'packages/testkit/src/clock.ts': `export const T0 = Date.UTC(2026, 10, 20)\n`,
      })
      expect(report.offenders).toEqual([
        'packages/testkit/src/clock.ts: line 1: Date.UTC (Date.UTC()',
      ])
    })
  })
})
