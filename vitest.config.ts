import { readdirSync } from 'node:fs'
import { resolve } from 'node:path'
import { defineConfig } from 'vitest/config'

// Tests run against the TypeScript sources of the workspace packages, so no build is needed first.
const alias = Object.fromEntries(
  readdirSync('packages').map((dir) => [
    `@circles/${dir}`,
    resolve('packages', dir, 'src/index.ts'),
  ]),
)

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
