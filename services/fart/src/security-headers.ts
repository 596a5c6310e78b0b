import type { IncomingMessage, ServerResponse } from 'node:http'
import helmet, { type HelmetOptions } from 'helmet'

// helmet's headers, computed once at start. @fastify/helmet rebuilds helmet's middleware on every request
// (re-parsing the Content-Security-Policy each time): measured at ~15 % of the API's CPU on a cached circle.
// With static options the headers are the same for every request, so they are worked out once here and
// copied onto each reply.

/** The headers `helmet(options)` sets, lower-cased; throws if the options are invalid. */
export function securityHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
    },
    removeHeader(name: string) {
      delete headers[name.toLowerCase()]
    },
  }
  let failure: unknown
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    failure = err
  })
  if (failure) throw new Error('helmet rejected the security header options', { cause: failure })
  return headers
}
