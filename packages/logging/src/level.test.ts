import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// The root logger is made when the module is imported, so each case imports it in a process of its own,
// from the build (`pnpm test` builds first; plain node cannot import TypeScript on every Node we support).
const INDEX = fileURLToPath(new URL('../dist/src/index.js', import.meta.url))

function levelWith(value: string): { status: number | null; out: string } {
  const script = `const { rootLogger } = await import(${JSON.stringify(INDEX)}); console.log(rootLogger.level)`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
    env: { ...process.env, LOG_LEVEL: value },
    encoding: 'utf8',
  })
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

describe('the root logger level', () => {
  it('is LOG_LEVEL when pino knows it', () => {
    expect(levelWith('warn')).toMatchObject({ status: 0, out: expect.stringMatching(/^warn\n/) })
    expect(levelWith('silent')).toMatchObject({
      status: 0,
      out: expect.stringMatching(/^silent\n/),
    })
  })

  it('falls back to info on an unknown level instead of throwing at import (the config names the variable)', () => {
    expect(levelWith('loud')).toMatchObject({ status: 0, out: expect.stringMatching(/^info\n/) })
  })
})
