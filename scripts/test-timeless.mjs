// pnpm test:timeless: the calendar guard, then every pure test (none reaches Redis) with the clock of the
// test processes moved a year ahead (TEST_CLOCK_SHIFT_DAYS), to show that none depends on today's date.
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { prepare, root } from './bootstrap.mjs'

prepare()
const { scanRepository } = await import(
  pathToFileURL(join(root, 'packages/testkit/dist/src/timeless.js')).href
)
const report = scanRepository(root)
if (report.offenders.length > 0) {
  process.stderr.write(
    `Tests that reach Redis pin a calendar date (anchor them with clockAnchor() from @circles/testkit):\n${report.offenders.map((o) => `  ${o}\n`).join('')}`,
  )
  process.exit(1)
}
const days = process.env.TEST_CLOCK_SHIFT_DAYS ?? '366'
process.stdout.write(
  `${report.pureTests.length} pure tests with the clock ${days} days ahead (${report.redisTests.length} reach Redis and keep the real time)\n`,
)
const vitest = join(root, 'node_modules/vitest/vitest.mjs')
const r = spawnSync(
  process.execPath,
  [vitest, 'run', ...process.argv.slice(2), ...report.pureTests],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TEST_CLOCK_SHIFT_DAYS: days },
  },
)
process.exitCode = r.status ?? 1
