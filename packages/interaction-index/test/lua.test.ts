import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { tidFromMs } from '@circles/core'
import { luaErrorSource, luaSource, withLuaSource } from '@circles/redis-wire'
import { createTestRedis, type TestRedis } from '@circles/testkit'
import type { Node } from 'luaparse'
import luaparse from 'luaparse'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { changeOptOuts, clearPurgeMarks } from '../src/opt-outs.js'
import { createIndexWriter } from '../src/write/index-writer.js'

// Every Lua script of the repo (packages/*/lua, services/*/lua) is linted here: it parses as Lua 5.1 (what
// Redis runs), assigns no global, reads only the globals Redis provides, and Redis itself compiles it. An
// error raised in a script names its file and the line Redis counted, which is the file's line.

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const PACKAGE = resolve(REPO, 'packages/interaction-index')

/** The globals of Redis's Lua (5.1 base functions and the libraries Redis loads). */
const REDIS_GLOBALS = new Set([
  ...[
    'redis',
    'KEYS',
    'ARGV',
    'string',
    'math',
    'table',
    'bit',
    'struct',
    'cjson',
    'cmsgpack',
    'os',
  ],
  ...[
    'assert',
    'error',
    'ipairs',
    'next',
    'pairs',
    'pcall',
    'rawequal',
    'rawget',
    'rawset',
    'select',
  ],
  ...['setmetatable', 'getmetatable', 'tonumber', 'tostring', 'type', 'unpack', 'xpcall'],
])

function luaFiles(): string[] {
  const out: string[] = []
  for (const group of ['packages', 'services']) {
    for (const pkg of readdirSync(resolve(REPO, group))) {
      const dir = resolve(REPO, group, pkg, 'lua')
      if (!existsSync(dir)) continue
      for (const f of readdirSync(dir)) if (f.endsWith('.lua')) out.push(join(group, pkg, 'lua', f))
    }
  }
  return out.sort()
}

/** A function library's first line (`#!lua name=...`) is Redis's, not Lua's: blank, so lines stay. */
function asLua(text: string): string {
  return text.startsWith('#!') ? text.replace(/^[^\n]*/, '') : text
}

/** Set by luaparse's scope tracking (`scope: true`); not in its types. */
function isLocal(n: Node): boolean {
  return (n as { isLocal?: boolean }).isLocal === true
}

/** `file:line` of every assignment to a global, and of the first read of a global Redis does not provide. */
function globalMisuse(file: string, text: string): string[] {
  const chunk = luaparse.parse(asLua(text), { luaVersion: '5.1', scope: true, locations: true })
  const found: string[] = []
  const assigned = new Set<string>()
  const at = (n: Node) => `${file}:${n.loc?.start.line}`
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const child of node) visit(child)
      return
    }
    if (node === null || typeof node !== 'object' || !('type' in node)) return
    const n = node as Node
    if (n.type === 'AssignmentStatement') {
      for (const v of n.variables) {
        if (v.type !== 'Identifier' || isLocal(v)) continue
        assigned.add(v.name)
        found.push(`${at(v)} assigns global ${v.name}`)
      }
    } else if (n.type === 'FunctionDeclaration' && n.identifier?.type === 'Identifier') {
      if (!n.isLocal && !isLocal(n.identifier)) {
        assigned.add(n.identifier.name)
        found.push(`${at(n)} declares global function ${n.identifier.name}`)
      }
    }
    for (const [key, child] of Object.entries(n)) if (key !== 'loc') visit(child)
  }
  visit(chunk.body)
  // luaparse lists each global name once, at its first use (property names are not identifiers of a scope)
  const globals = (chunk as { globals?: Node[] }).globals ?? []
  for (const g of globals) {
    if (g.type !== 'Identifier' || REDIS_GLOBALS.has(g.name) || assigned.has(g.name)) continue
    found.push(`${at(g)} reads global ${g.name}`)
  }
  return found
}

describe('lua scripts', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('lua')
  })
  afterEach(async () => {
    await t.cleanup()
  })

  it('every .lua file parses as Lua 5.1 and uses no global but those of Redis', () => {
    const files = luaFiles()
    expect(files).toContain('packages/interaction-index/lua/index-apply.lua')
    expect(files).toContain('services/scheduler/lua/fenced-fold.lua')
    const misuse = files.flatMap((f) => globalMisuse(f, readFileSync(resolve(REPO, f), 'utf8')))
    expect(misuse).toEqual([])
    // the lint itself sees what it looks for
    expect(globalMisuse('x.lua', 'local a = 1\nb = a\nreturn c')).toEqual([
      'x.lua:2 assigns global b',
      'x.lua:3 reads global c',
    ])
    expect(() => globalMisuse('y.lua', 'local x = ')).toThrow(/\[1:\d+\]/)
  })

  it('Redis compiles every .lua file (a library under names of its own, deleted after)', async () => {
    for (const f of luaFiles()) {
      const text = readFileSync(resolve(REPO, f), 'utf8')
      if (!text.startsWith('#!lua')) {
        expect(await t.redis.script('LOAD', text), f).toMatch(/^[0-9a-f]{40}$/)
        continue
      }
      const tag = `lint_${randomBytes(4).toString('hex')}`
      const code = text
        .replace(/^#!lua name=\S+/, `#!lua name=${tag}`)
        .replace(
          /register_function\('([^']+)'/g,
          (_, fn: string) => `register_function('${tag}${fn}'`,
        )
      expect(await t.redis.call('FUNCTION', 'LOAD', code), f).toBe(tag)
      await t.redis.call('FUNCTION', 'DELETE', tag)
    }
  })

  it('finds a package lua/ folder from its src/ (vitest) and from its dist/src/ (built)', () => {
    const fromSrc = luaSource(pathToFileURL(resolve(PACKAGE, 'src/write/x.js')).href, 'index-apply')
    const fromDist = luaSource(pathToFileURL(resolve(PACKAGE, 'dist/src/x.js')).href, 'index-apply')
    expect(fromDist).toBe(fromSrc)
    expect(fromSrc).toBe(readFileSync(resolve(PACKAGE, 'lua/index-apply.lua'), 'utf8'))
    expect(() => luaSource(pathToFileURL('/nowhere/a/b/c/d/e.js').href, 'x')).toThrow(
      /package\.json/,
    )
  })

  it('an error raised in the index function names the .lua file and the line Redis counted', async () => {
    const [alice, bob] = ['did:plc:aaaaaaaaaaaaaaaaaaaaaaaa', 'did:plc:bbbbbbbbbbbbbbbbbbbbbbbb']
    // a log of the wrong type: the script's read of it fails there
    await t.redis.hset(t.schema.accountLog(alice), 'x', '1')
    const writer = createIndexWriter(t.redis, t.schema)
    const time = Date.now() - 60_000
    const like = {
      type: 'create',
      kind: 'like',
      author: alice,
      subject: bob,
      chars: 0,
      time,
    } as const
    const err = await writer
      .apply([{ ...like, rkey: tidFromMs(time) }])
      .then(() => null)
      .catch((e: Error) => e)
    await writer.close()
    expect(err?.message).toMatch(/^WRONGTYPE .*@user_function:\d+\. \(at .+\)$/)
    expectSourceLine(
      err as Error,
      'packages/interaction-index/lua/index-apply.lua',
      /redis\.call\(/,
    )
  })

  it('an error raised in an EVAL script (opt-outs) names its .lua file and line', async () => {
    const did = 'did:plc:aaaaaaaaaaaaaaaaaaaaaaaa'
    await t.redis.set(t.schema.optOutsAdmin, 'not a set')
    const change = await changeOptOuts(t.redis, t.schema, [{ did, reason: 'admin', on: true }])
      .then(() => null)
      .catch((e: Error) => e)
    expect(change?.message).toMatch(/^WRONGTYPE .*@user_script:\d+\. \(at .+\)$/)
    expectSourceLine(change as Error, 'packages/interaction-index/lua/opt-out-change.lua', /'SADD'/)

    await t.redis.hset(t.schema.accountPurged(did), 'x', '1')
    const clear = await clearPurgeMarks(t.redis, t.schema, [did], 'opt-out')
      .then(() => null)
      .catch((e: Error) => e)
    expectSourceLine(clear as Error, 'packages/interaction-index/lua/clear-purge-mark.lua', /'GET'/)
    // named once, however often it goes through
    expect(withLuaSource(clear)?.message.match(/\(at /g)).toHaveLength(1)
    expect(luaErrorSource(new Error('ERR unknown command'))).toBeNull()
  })
})

/** `err` names `file` and a line, Redis's line of the error, and that line of the file matches `code`. */
function expectSourceLine(err: Error, file: string, code: RegExp): void {
  const where = luaErrorSource(err)
  expect(where).toMatch(new RegExp(`^${file.replaceAll('.', '\\.')}:\\d+$`))
  const line = Number(where?.split(':').at(-1))
  expect(err.message).toContain(
    `@user_${file.endsWith('index-apply.lua') ? 'function' : 'script'}:${line}.`,
  )
  expect(err.message).toContain(`(at ${file}:${line})`)
  const text = readFileSync(resolve(REPO, file), 'utf8').split('\n')[line - 1]
  expect(text).toMatch(code)
}
