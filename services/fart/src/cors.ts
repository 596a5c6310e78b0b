import type { FastifyReply, FastifyRequest, onRequestHookHandler } from 'fastify'

// CORS in the app's one onRequest hook, with the security headers. @fastify/cors did the same work in a hook
// of its own that, on every request, read the route options twice (Fastify builds a new object on each read)
// and merged its options into a new object; with a fixed origin policy the answer's headers are known at
// start. Same behaviour: `*` or a list of origins (then `Vary: Origin`), preflights answered here (before
// authentication and rate limiting), 400 for an OPTIONS request that is not a preflight.

export interface CorsOptions {
  origins: '*' | readonly string[]
  /** Allowed methods, for preflights. */
  methods: readonly string[]
  /** Static headers sent with every answer (the security headers). */
  headers: Record<string, string>
}

/** The onRequest hook; OPTIONS requests are answered by it (the app needs an OPTIONS route to reach it). */
export function corsHook(opts: CorsOptions): onRequestHookHandler {
  const allowed = opts.origins === '*' ? null : new Set(opts.origins)
  const every: Record<string, string> = {
    ...opts.headers,
    ...(allowed === null ? { 'access-control-allow-origin': '*' } : { vary: 'Origin' }),
  }
  const methods = opts.methods.join(', ')
  const preflightVary = 'Access-Control-Request-Headers'
  function preflight(req: FastifyRequest, reply: FastifyReply): void {
    if (!req.headers.origin || !req.headers['access-control-request-method']) {
      reply.code(400).type('text/plain; charset=utf-8').send('Invalid Preflight Request')
      return
    }
    // Any header asked for is allowed: the answer depends on the request's list, hence Vary.
    reply
      .header('access-control-allow-methods', methods)
      .header('vary', allowed === null ? preflightVary : `Origin, ${preflightVary}`)
    const asked = req.headers['access-control-request-headers']
    if (asked) reply.header('access-control-allow-headers', asked)
    // 204 with an explicit length: some browsers otherwise wait for a body.
    reply.code(204).header('content-length', '0').send()
  }
  return (req, reply, done) => {
    reply.headers(every)
    if (allowed !== null) {
      const origin = req.headers.origin
      if (origin !== undefined && allowed.has(origin)) {
        reply.header('access-control-allow-origin', origin)
      }
    }
    if (req.method === 'OPTIONS') return preflight(req, reply)
    done()
  }
}
