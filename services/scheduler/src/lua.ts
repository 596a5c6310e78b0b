import { luaSource } from '@circles/redis-wire'

// The scheduler's Lua scripts are files in the package's `lua/` folder, one script each, with their own
// tests (test/lua-scripts.test.ts). `luaSource` finds the folder from the package root, from src/ under
// vitest and from dist/src/ when built, and knows the files, so an error raised in one names its file and
// line (`withLuaSource`).

/** The text of `lua/<name>.lua`, read once. */
export function luaScript(name: string): string {
  return luaSource(import.meta.url, name)
}
