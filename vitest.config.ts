import { readdirSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { defineConfig } from 'vitest/config'

// Tests run against the TypeScript sources of the workspace packages, so no build is needed first. Each
// entry of a package's exports map (`@circles/testkit/pds` -> src/pds.ts), the subpaths first: an alias
// also matches what starts with it and a slash, so the package root would swallow them.
function sourceEntries(dir: string): [string, string][] {
  const { exports = {} } = JSON.parse(
    readFileSync(resolve('packages', dir, 'package.json'), 'utf8'),
  )
  return Object.entries(exports as Record<string, { default: string }>).map(([path, target]) => [
    `@circles/${dir}${path.slice(1)}`,
    resolve('packages', dir, target.default.replace(/^\.\/dist\//, '').replace(/\.js$/, '.ts')),
  ])
}
const alias = readdirSync('packages')
  .flatMap(sourceEntries)
  .sort(([a], [b]) => b.length - a.length)
  .map(([find, replacement]) => ({ find, replacement }))

export default defineConfig({
  resolve: { alias },
  test: {
    include: ['{packages,services}/*/{src,test}/**/*.test.ts'],
    exclude: ['**/node_modules/**', '**/dist/**'],
    env: { LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent' },
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    setupFiles: ['packages/testkit/src/clock-shift.ts'],
    globalSetup: ['packages/testkit/src/skip-report.ts'],
  },
})
