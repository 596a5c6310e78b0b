import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

// The demo's stand-in for the Bluesky AppView: the local PDS has none, so the API would draw circles of bare
// DIDs. This answers the two calls the API makes (getProfiles, resolveHandle) for the simulated accounts.

export interface DemoProfile {
  did: string
  handle: string
  displayName?: string
}

export interface DemoAppView {
  url: string
  close(): Promise<void>
}

export async function startDemoAppView(profiles: readonly DemoProfile[]): Promise<DemoAppView> {
  const byKey = new Map<string, DemoProfile>()
  for (const p of profiles) {
    byKey.set(p.did, p)
    byKey.set(p.handle, p)
  }
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost')
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    }
    if (url.pathname === '/xrpc/app.bsky.actor.getProfiles') {
      const found = url.searchParams
        .getAll('actors')
        .map((a) => byKey.get(a))
        .filter((p): p is DemoProfile => p !== undefined)
      json(200, { profiles: found })
    } else if (url.pathname === '/xrpc/com.atproto.identity.resolveHandle') {
      const p = byKey.get(url.searchParams.get('handle') ?? '')
      if (p) json(200, { did: p.did })
      else json(400, { error: 'InvalidRequest', message: 'Unable to resolve handle' })
    } else {
      json(404, { error: 'MethodNotImplemented' })
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}
