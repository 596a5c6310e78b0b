import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// Lua scripts live in `.lua` files in their package's `lua/` folder, one script each, read at start. A module
// runs from src/ under vitest and from dist/src/ when built, so the folder is found from the package root
// (the first folder above the module with a package.json) rather than from a fixed relative path; the
// files ship with the package as they are (nothing prepended), so the line numbers Redis gives in an error
// (`user_script:<line>`, `@user_function:<line>`) are the file's, and `withLuaSource` names the file.

const roots = new Map<string, string>()
const sources = new Map<string, string>()
/** Where each script came from, by what a Redis error calls it: its SHA1 (EVAL) or a function's name. */
const files = new Map<string, string>()

function packageRoot(moduleDir: string): string {
  let root = roots.get(moduleDir)
  if (root) return root
  let dir = moduleDir
  for (let i = 0; i < 4; i++) {
    if (existsSync(resolve(dir, 'package.json'))) {
      root = dir
      roots.set(moduleDir, root)
      return root
    }
    dir = dirname(dir)
  }
  throw new Error(`no package.json above ${moduleDir}: cannot find its lua/ folder`)
}

/**
 * The text of `lua/<name>.lua` of the package of the module at `moduleUrl` (its `import.meta.url`), read
 * once.
 */
export function luaSource(moduleUrl: string, name: string): string {
  const root = packageRoot(dirname(fileURLToPath(moduleUrl)))
  const file = resolve(root, 'lua', `${name}.lua`)
  let text = sources.get(file)
  if (text === undefined) {
    text = readFileSync(file, 'utf8')
    sources.set(file, text)
    // named from the folder that holds the packages (packages/, services/), as a reader finds it in the repo
    files.set(createHash('sha1').update(text).digest('hex'), relative(dirname(dirname(root)), file))
  }
  return text
}

/** Tells `withLuaSource` that the Redis function `fn` is defined in the file `luaSource` read as `text`. */
export function nameLuaFunction(fn: string, text: string): void {
  const file = files.get(createHash('sha1').update(text).digest('hex'))
  if (file !== undefined) files.set(fn, file)
}

/**
 * The file and line of the script an error of Redis was raised in (`dir/lua/name.lua:line`), when the
 * script is one `luaSource` read; else null. Redis ends such an error with `script: <sha1 or function
 * name>, on @user_script:<line>.` (or `@user_function:`).
 */
export function luaErrorSource(err: unknown): string | null {
  if (!(err instanceof Error)) return null
  const m = /script: (\w+), on @user_(?:script|function):(\d+)\b/.exec(err.message)
  const file = m ? files.get(m[1] as string) : undefined
  return file === undefined ? null : `${file}:${m?.[2]}`
}

/**
 * `err`, its message followed by ` (at dir/lua/name.lua:line)` when it was raised in a script that
 * `luaSource` read. The same object (its name and the start of its message, which callers classify by,
 * stay as they are).
 */
export function withLuaSource<E>(err: E): E {
  const where = luaErrorSource(err)
  if (where !== null && err instanceof Error && !err.message.includes(`(at ${where})`))
    err.message += ` (at ${where})`
  return err
}
