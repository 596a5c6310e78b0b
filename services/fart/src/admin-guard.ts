import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'

// Who may do what on /admin. The token is compared in constant time (over digests, so its length does not
// leak either). HTTP Basic exists for the browser's login prompt, which opens the queue board; but a browser
// sends Basic credentials by itself with every request to the site, a form on another site included, like
// a cookie. So Basic is read-only (GET, HEAD): a write needs `Authorization: Bearer`, which no page can make
// a browser send to another origin. And a write from a browser must come from this origin: `Sec-Fetch-Site`
// (set by the browser, not by a page) or else `Origin` is checked on every request that is not GET or HEAD.

const SAFE = new Set(['GET', 'HEAD'])

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest()
}

/** Which credentials carry the token: `bearer`, `basic` (any user name, the token as password), or null. */
export function authOf(header: string | undefined, token: string): 'bearer' | 'basic' | null {
  const bearer = /^Bearer (.+)$/.exec(header ?? '')
  if (bearer) return timingSafeEqual(digest(bearer[1]!), digest(token)) ? 'bearer' : null
  const basic = /^Basic ([A-Za-z0-9+/=]{1,1024})$/.exec(header ?? '')
  if (!basic) return null
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return null
  return timingSafeEqual(digest(decoded.slice(colon + 1)), digest(token)) ? 'basic' : null
}

/** Why a write is refused as coming from another site, or null. No header: not a browser, not refused. */
export function crossSiteReason(req: FastifyRequest): string | null {
  const site = req.headers['sec-fetch-site']
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return `Sec-Fetch-Site: ${String(site).slice(0, 20)}`
  }
  const origin = req.headers.origin
  if (origin === undefined) return null
  let host: string
  try {
    host = new URL(origin).host
  } catch {
    return 'Origin is not a URL'
  }
  return host !== '' && ownHosts(req.host).includes(host) ? null : 'Origin is another site'
}

/** The Host header as an origin's host would write it, under either scheme (`:443` or `:80` dropped). */
function ownHosts(hostHeader: string): string[] {
  try {
    return [new URL(`http://${hostHeader}`).host, new URL(`https://${hostHeader}`).host]
  } catch {
    return []
  }
}

function refuse(reply: FastifyReply, status: 401 | 403, message: string) {
  if (status === 401) {
    reply.header('www-authenticate', 'Basic realm="circles admin", charset="UTF-8"')
  }
  return reply
    .code(status)
    .send({ statusCode: status, error: status === 401 ? 'Unauthorized' : 'Forbidden', message })
}

/** The admin scope's onRequest hook. */
export function adminGuard(token: string) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const write = !SAFE.has(req.method)
    const foreign = write ? crossSiteReason(req) : null
    if (foreign) {
      return refuse(reply, 403, `cross-site admin request refused (${foreign})`)
    }
    if (!req.headers.authorization) {
      return refuse(
        reply,
        401,
        'admin routes need Authorization: Bearer <ADMIN_TOKEN> (or Basic with it as the password, to read)',
      )
    }
    const auth = authOf(req.headers.authorization, token)
    if (auth === null) return refuse(reply, 403, 'wrong admin token')
    if (write && auth !== 'bearer') {
      return refuse(
        reply,
        403,
        'admin changes need Authorization: Bearer <ADMIN_TOKEN>; Basic (the browser login) is read-only',
      )
    }
  }
}
