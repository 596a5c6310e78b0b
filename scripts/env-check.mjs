// node scripts/env-check.mjs: lists every environment variable the code reads (through the config helpers
// or process.env) and says which ones .env.example or the README's table lack, or where the README's
// default differs from a service's literal default. Exit 1 when anything is off.
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { root } from './bootstrap.mjs'

const HELPER = /\benv(?:Int|String|Url|Bool|Enum|Optional|Checked)\(\s*\w+,\s*'([A-Z][A-Z0-9_]*)'/g
// A literal default (number, string, boolean) as the helper's third argument, to compare with the README.
const DEFAULT =
  /\benv(?:Int|String|Url|Bool|Enum)\(\s*\w+,\s*'([A-Z][A-Z0-9_]*)',\s*([\d_]+|'[^']*'|true|false)\s*[,)]/g
const DIRECT = /process\.env\.([A-Z][A-Z0-9_]*)|process\.env\[['"]([A-Z][A-Z0-9_]*)['"]\]/g
// Set by the runtime or the test runner, not by a user.
const IGNORE = new Set([
  'NODE_APP_INSTANCE',
  'PATH',
  'CI',
  'VITEST',
  'TEST_REDIS_URL',
  'TEST_CLOCK_SHIFT_DAYS',
  'npm_execpath',
])

function* files(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name === 'dist' || name === 'corpus') continue
    const path = join(dir, name)
    if (statSync(path).isDirectory()) yield* files(path)
    else if (/\.(ts|mjs|cjs)$/.test(name) && !/\.test\.ts$/.test(name)) yield path
  }
}

const found = new Map()
const defaults = new Map()
// Every package's sources (a package may read settings that several services share, as backfill does).
const roots = [
  'services',
  ...readdirSync(join(root, 'packages'))
    .filter((p) => p !== 'testkit') // what tests read (CHROMIUM_PATH), not a user's setting
    .map((p) => `packages/${p}/src`),
  'scripts',
]
for (const r of roots) {
  for (const file of files(join(root, r))) {
    if (/\/(bench|test)\//.test(file)) continue
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(HELPER)) add(m[1], file)
    for (const m of text.matchAll(DIRECT)) add(m[1] ?? m[2], file)
    if (!file.includes('/scripts/')) {
      for (const m of text.matchAll(DEFAULT))
        defaults.set(m[1], m[2].replace(/_/g, '').replace(/'/g, ''))
    }
  }
}
add('INDEXER_INSTANCES', join(root, 'ecosystem.config.cjs'))

function add(name, file) {
  if (IGNORE.has(name)) return
  const where = found.get(name) ?? new Set()
  where.add(relative(root, file).split('/').slice(0, 2).join('/'))
  found.set(name, where)
}

const example = readFileSync(join(root, '.env.example'), 'utf8')
const readme = readFileSync(join(root, 'README.md'), 'utf8')
const missing = []
for (const [name, where] of [...found].sort(([a], [b]) => a.localeCompare(b))) {
  const inExample = new RegExp(`^#?\\s*${name}=`, 'm').test(example)
  const inReadme = readme.includes(`\`${name}\``)
  const row = new RegExp(`^\\| \`${name}\`\\s*\\| \`([^\`]*)\``, 'm').exec(readme)
  const code = defaults.get(name)
  const wrongDefault =
    code !== undefined && row && row[1] !== code ? ` (README default ${row[1]}, code ${code})` : ''
  const line = new RegExp(`^#?\\s*${name}=(.*)$`, 'm').exec(example)
  const wrongExample =
    code !== undefined && line && line[1] !== '' && line[1] !== code
      ? ` (.env.example ${line[1]}, code ${code})`
      : ''
  const flags = `${inExample ? '' : ' (not in .env.example)'}${inReadme ? '' : ' (not in README)'}${wrongDefault}${wrongExample}`
  if (flags) missing.push(name)
  console.log(`${name.padEnd(28)} ${[...where].join(', ')}${flags}`)
}
console.log(
  missing.length
    ? `${missing.length} variable(s) undocumented or off`
    : `every variable is documented (${defaults.size} literal defaults compared)`,
)
process.exitCode = missing.length ? 1 : 0
