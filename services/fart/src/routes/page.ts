import {
  explorerPage,
  historyPage,
  type PageShell,
  renderPage,
  statsPage,
  type WebAssets,
} from '@circles/web'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyReply, FastifyRequest } from 'fastify'

// The pages (packages/web): server-rendered shells, rendered once at start, and their bundled scripts and
// style sheet under content-hashed names, gzipped once at start and kept for a year by browsers.

const ONE_YEAR = 'public, max-age=31536000, immutable'

/** `documentHeaders`: the security headers of a document (CSP and the rest), for the HTML pages. */
export function pageRoutes(
  documentHeaders: Record<string, string>,
  serviceDid: string | null,
  assets: WebAssets,
): FastifyPluginAsyncTypebox {
  return async (app) => {
    const hide = { hide: true }
    const page = (shell: PageShell) => {
      const html = renderPage(shell, assets, serviceDid)
      return async (_req: FastifyRequest, reply: FastifyReply) =>
        reply
          .headers(documentHeaders)
          .header('cache-control', 'no-cache')
          .type('text/html; charset=utf-8')
          .send(html)
    }
    app.get('/', { schema: hide }, page(explorerPage))
    app.get('/stats', { schema: hide }, page(statsPage))
    app.get('/history', { schema: hide }, page(historyPage))
    app.get('/assets/*', { schema: hide }, async (req, reply) => {
      const asset = assets.byPath.get(req.url.split('?')[0] as string)
      if (!asset) {
        return reply.code(404).send({
          statusCode: 404,
          error: 'Not Found',
          message: `no asset ${req.url.split('?')[0]}: pages name their assets by content hash`,
        })
      }
      reply.type(asset.type).header('cache-control', ONE_YEAR).header('etag', asset.etag)
      if (req.headers['if-none-match'] === asset.etag) return reply.code(304).send()
      reply.header('vary', 'accept-encoding')
      if (/\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) {
        return reply.header('content-encoding', 'gzip').send(asset.gzip)
      }
      return reply.send(asset.body)
    })
  }
}
