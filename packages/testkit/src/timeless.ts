import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

// The guard against calendar time bombs: a test that writes to Redis must not pin a calendar date, since
// Redis expires keys by its own clock (19 tests died so on 2026-12-06). Pure tests may pin dates; they are
// also run with the clock moved a year ahead (`pnpm test:timeless`).

/** What a file's own text (comments aside) says about Redis; imported helpers count too (see below). */
const REDIS_USE =
  /\b(createTestRedis|startRedisServer|startRollbackRedis|TEST_REDIS_URL|REDIS_URL)\b|from 'ioredis'/

const PINS: [RegExp, string][] = [
  [/(['"`])\d{4}-\d{2}-\d{2}/g, 'a date string'],
  [/\bDate\.UTC\(/g, 'Date.UTC'],
  [/\bnew Date\(\s*\d{4}\s*,/g, 'new Date(year, ...)'],
  // Epoch milliseconds from 1973 on: 12 or 13 digits, with or without `_` groups.
  [/(?<![\w.])[1-9](?:_?\d){11,12}(?![\w.])/g, 'an epoch-ms literal'],
]

/** Block comments and `//` comments that follow a space or start a line ('redis://' keeps its text). */
export function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|\s)\/\/.*$/gm, '$1')
}

/** The calendar pins in a source text, as `line N: what (text)`. */
export function calendarPins(text: string): string[] {
  const code = stripComments(text)
  const found: string[] = []
  for (const [re, what] of PINS) {
    for (const m of code.matchAll(re)) {
      const line = code.slice(0, m.index).split('\n').length
      found.push(`line ${line}: ${what} (${m[0]})`)
    }
  }
  return found
}

export function relativeImports(text: string): string[] {
  return [...text.matchAll(/from '(\.{1,2}\/[^']+)'/g)].map((m) => m[1] as string)
}

export interface TimelessReport {
  /** Test files that reach Redis, themselves or through the test helpers they import. */
  redisTests: string[]
  /** Test files that never reach Redis: the ones run with the clock moved. */
  pureTests: string[]
  /** `file: pin` for every pin in a Redis test, in a helper such a test imports, or in the testkit. */
  offenders: string[]
}

/**
 * Classifies `tests` (paths) given a reader of source files by path. A test's closure is itself and the
 * test-side files it imports relatively (`test/` folders and other `*.test.ts`); product code it imports
 * is judged by its own tests. Testkit sources serve every Redis test, so a pin there always offends.
 */
export function checkTimeless(
  tests: string[],
  read: (path: string) => string | undefined,
  testkitSources: string[] = [],
): TimelessReport {
  const report: TimelessReport = { redisTests: [], pureTests: [], offenders: [] }
  const pinned = new Set<string>()
  const offend = (file: string) => {
    if (pinned.has(file)) return
    pinned.add(file)
    for (const pin of calendarPins(read(file) ?? '')) report.offenders.push(`${file}: ${pin}`)
  }
  for (const test of tests) {
    const closure = testClosure(test, read)
    const touchesRedis = closure.some((f) => REDIS_USE.test(stripComments(read(f) ?? '')))
    ;(touchesRedis ? report.redisTests : report.pureTests).push(test)
    if (touchesRedis) closure.forEach(offend)
  }
  testkitSources.forEach(offend)
  return report
}

function testClosure(test: string, read: (path: string) => string | undefined): string[] {
  const seen = new Set([test])
  const queue = [test]
  for (let file = queue.pop(); file !== undefined; file = queue.pop()) {
    for (const spec of relativeImports(read(file) ?? '')) {
      const target = join(dirname(file), spec).replace(/\.js$/, '.ts')
      const testSide = /(^|\/)test\//.test(target) || target.endsWith('.test.ts')
      if (testSide && !seen.has(target) && read(target) !== undefined) {
        seen.add(target)
        queue.push(target)
      }
    }
  }
  return [...seen]
}

/** The repository's test files and testkit sources, as paths relative to `root`, and a reader for them. */
export function scanRepository(root: string): TimelessReport {
  const files = new Map<string, string>()
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name === 'dist' || name.startsWith('.')) continue
      const path = join(dir, name)
      if (statSync(path).isDirectory()) walk(path)
      else if (name.endsWith('.ts')) files.set(relative(root, path), readFileSync(path, 'utf8'))
    }
  }
  for (const top of ['packages', 'services'])
    if (existsSync(resolve(root, top))) walk(resolve(root, top))
  const paths = [...files.keys()].sort()
  const tests = paths.filter((p) => p.endsWith('.test.ts'))
  const testkit = paths.filter((p) => p.startsWith('packages/testkit/src/'))
  return checkTimeless(tests, (p) => files.get(p), testkit)
}
