import { existsSync, readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

// The scheduler's Lua scripts are files in the package's `lua/` folder, one script each, with their own
// tests (test/lua-scripts.test.ts). This module runs from src/ under vitest and from dist/src/ when built,
// so the folder is found from the package root rather than from a fixed relative path.

let root: string | undefined

function packageRoot(): string {
  if (root) return root
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    if (existsSync(resolve(dir, 'package.json'))) {
      root = dir
      return dir
    }
    dir = dirname(dir)
  }
  throw new Error('cannot find the scheduler package (package.json) above its lua.ts')
}

const cache = new Map<string, string>()

/** The text of `lua/<name>.lua`, read once. */
export function luaScript(name: string): string {
  let text = cache.get(name)
  if (text === undefined) {
    text = readFileSync(resolve(packageRoot(), 'lua', `${name}.lua`), 'utf8')
    cache.set(name, text)
  }
  return text
}
