import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { MissingPartError, needPart, SKIP_LOG } from '../src/parts.js'

const PART = {
  what: 'a widget at /nope',
  install: 'apt-get install widget',
  tests: 'the widget test',
}

describe('needPart', () => {
  const saved = { ci: process.env.CI, log: process.env[SKIP_LOG] }
  let dir: string

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'circles-parts-'))
    process.env[SKIP_LOG] = join(dir, 'skips.jsonl')
  })
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true })
    for (const [name, value] of [
      ['CI', saved.ci],
      [SKIP_LOG, saved.log],
    ] as const) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  })

  it('passes a present part and logs nothing', () => {
    process.env.CI = 'true'
    expect(needPart(true, PART)).toBe(true)
    expect(existsSync(process.env[SKIP_LOG] as string)).toBe(false)
  })

  it('skips a missing part locally and logs it for the end of the run', () => {
    for (const ci of [undefined, '', '0', 'false']) {
      if (ci === undefined) delete process.env.CI
      else process.env.CI = ci
      expect(needPart(false, PART)).toBe(false)
    }
    const lines = readFileSync(process.env[SKIP_LOG] as string, 'utf8')
      .trim()
      .split('\n')
    expect(lines.map((l) => JSON.parse(l))).toEqual([PART, PART, PART, PART])
  })

  it('fails under CI=true, naming the part and its install command', () => {
    for (const ci of ['true', '1', 'yes']) {
      process.env.CI = ci
      expect(() => needPart(false, PART)).toThrow(MissingPartError)
      expect(() => needPart(false, PART)).toThrow(
        /the widget test needs a widget at \/nope.*apt-get install widget/,
      )
    }
  })
})
