import { createHash } from 'node:crypto'
import { luaSource, nameLuaFunction } from '@circles/redis-wire'

// The index function (lua/index-apply.lua, where its operations, arguments and replies are described): one
// call applies lists of operations to the logs of several accounts whose keys all hash to one cluster slot.
const APPLY_LUA = luaSource(import.meta.url, 'index-apply')

/** Library and function names carry a hash of the code: indexers of two versions can share one Redis. */
const VERSION = createHash('sha1').update(APPLY_LUA).digest('hex').slice(0, 12)
export const INDEX_LIBRARY = `circles_index_${VERSION}`
export const INDEX_APPLY_FUNCTION = `circles_index_apply_${VERSION}`
/**
 * The index script as a Redis function library (FUNCTION LOAD REPLACE it, idempotent). A function, not
 * EVAL: an EVAL script runs its whole body on every call, and creating its ~25 helper closures cost more
 * than the work of a small call; a library's helpers are made once, when it is loaded. The names replace
 * placeholders within their lines: Redis's line numbers stay the file's.
 */
export const INDEX_LIBRARY_CODE = APPLY_LUA.replace(
  /^#!lua name=__LIB__$/m,
  `#!lua name=${INDEX_LIBRARY}`,
).replace("register_function('__FN__'", `register_function('${INDEX_APPLY_FUNCTION}'`)
nameLuaFunction(INDEX_APPLY_FUNCTION, APPLY_LUA)

/** Whether a Redis error says that the index library is not loaded (a new or restarted Redis). */
export function isLibraryMissing(err: unknown): boolean {
  return err instanceof Error && /function not found/i.test(err.message)
}
