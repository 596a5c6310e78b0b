import type { IncomingMessage, ServerResponse } from 'node:http'
import helmet, { type HelmetOptions } from 'helmet'

// helmet's headers, computed once at start. @fastify/helmet rebuilds helmet's middleware on every request
// (re-parsing the Content-Security-Policy each time): measured at ~15 % of the API's CPU on a cached circle.
// With static options the headers are the same for every request, so they are worked out once here and
// copied onto each reply.
//
// Most of them only mean something for a document a browser renders (CSP, framing, referrer, opener,
// origin-agent-cluster, DNS prefetch, IE's download and XSS switches): the page, the docs and a drawn SVG
// get them all. Every other answer (JSON, PNG, scripts, errors) gets the three that hold for any bytes:
// nosniff (JSON is never sniffed into HTML), HSTS (the host, whatever the answer) and the resource policy
// (who may embed it). Each header costs every request its copy and Node's validation.

const EVERY_ANSWER = [
  'x-content-type-options',
  'strict-transport-security',
  'cross-origin-resource-policy',
] as const

export interface SecurityHeaders {
  /** For every answer. */
  every: Record<string, string>
  /** For documents (HTML, SVG): all of helmet's, `every` included. */
  document: Record<string, string>
}

/** The headers `helmet(options)` sets, lower-cased and split as above; throws if the options are invalid. */
export function securityHeaders(options: HelmetOptions): SecurityHeaders {
  const document: Record<string, string> = {}
  const res = {
    setHeader(name: string, value: string | number | readonly string[]) {
      document[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value)
    },
    removeHeader(name: string) {
      delete document[name.toLowerCase()]
    },
  }
  let failure: unknown
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => {
    failure = err
  })
  if (failure) throw new Error('helmet rejected the security header options', { cause: failure })
  const every: Record<string, string> = {}
  for (const name of EVERY_ANSWER) {
    const value = document[name]
    if (value !== undefined) every[name] = value
  }
  return { every, document }
}
