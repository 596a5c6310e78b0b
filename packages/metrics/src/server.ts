import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Logger } from '@circles/logging'
import { collectDefaultMetrics, Registry } from 'prom-client'

export interface MetricsServerOptions {
  registry: Registry
  /** null: nothing is served (METRICS_PORT=0). */
  port: number | null
  host: string
  log: Logger
  /** Exposition text appended to the registry's (BullMQ's own queue metrics). */
  extra?: () => Promise<string>
}

export interface MetricsServer {
  /** The port listened on (the real one when 0 was asked for a test), or null when none. */
  readonly port: number | null
  /** Idempotent; ends open keep-alive connections too, so a scrape in progress cannot hold up a shutdown. */
  close(): Promise<void>
}

/**
 * A registry of the process's own (not prom-client's global one, so that several services in one test
 * process do not collide), with the process metrics prom-client collects (CPU, memory, event loop lag, GC).
 */
export function createRegistry(): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

/**
 * Serves `GET /metrics` from the registry on its own port. A port that cannot be bound is logged and the
 * service goes on without it: the pipeline matters more than its metrics, and `pnpm doctor` shows the
 * port answering for another process (or not at all).
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  if (opts.port === null) return { port: null, close: async () => {} }
  const { registry, log } = opts
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics\n')
      return
    }
    Promise.all([registry.metrics(), opts.extra?.() ?? ''])
      .then(([own, extra]) => {
        res.writeHead(200, { 'content-type': registry.contentType })
        res.end(extra ? `${own}\n${extra}\n` : own)
      })
      .catch((err: unknown) => {
        log.warn({ err }, 'collecting metrics failed')
        res.writeHead(500, { 'content-type': 'text/plain' }).end('collecting metrics failed\n')
      })
  })
  server.listen(opts.port, opts.host)
  try {
    await Promise.race([
      once(server, 'listening'),
      once(server, 'error').then(([e]) => Promise.reject(e)),
    ])
  } catch (err) {
    log.warn(
      { err, port: opts.port, host: opts.host },
      'could not serve /metrics (METRICS_PORT taken?): running without it',
    )
    return { port: null, close: async () => {} }
  }
  const port = (server.address() as AddressInfo).port
  log.info({ url: `http://${opts.host}:${port}/metrics` }, 'serving metrics')
  let closed: Promise<void> | undefined
  return {
    port,
    close() {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closed
    },
  }
}
