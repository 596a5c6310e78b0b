import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { deflateSync } from 'node:zlib'

// A real HTTP server on loopback playing the AppView and its avatar CDN: getProfiles, resolveHandle and
// /img/avatar_thumbnail/... PNGs. `down = true` makes every XRPC call answer 503.

export interface FakeProfile {
  did: string
  handle: string
  displayName?: string
  avatar?: boolean
  /** Serve the avatar under another host name for the same server (e.g. localhost instead of 127.0.0.1). */
  avatarBase?: string
}

export interface FakeAppView {
  url: string
  profiles: Map<string, FakeProfile>
  down: boolean
  calls: { nsid: string; params: URLSearchParams }[]
  close(): Promise<void>
}

function crc32(buf: Buffer): number {
  let c = ~0
  for (const b of buf) {
    c ^= b
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1))
  }
  return ~c >>> 0
}

/** A solid-colour PNG, so drawn circles visibly contain the avatar. */
export function solidPng(size: number, rgb: [number, number, number]): Buffer {
  const chunk = (type: string, data: Buffer) => {
    const len = Buffer.alloc(4)
    len.writeUInt32BE(data.length)
    const td = Buffer.concat([Buffer.from(type), data])
    const crc = Buffer.alloc(4)
    crc.writeUInt32BE(crc32(td))
    return Buffer.concat([len, td, crc])
  }
  const ihdr = Buffer.alloc(13)
  ihdr.writeUInt32BE(size, 0)
  ihdr.writeUInt32BE(size, 4)
  ihdr[8] = 8
  ihdr[9] = 2
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(size * 3).fill(Buffer.from(rgb))])
  const raw = Buffer.concat(Array.from({ length: size }, () => row))
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ])
}

export async function startFakeAppView(): Promise<FakeAppView> {
  const png = solidPng(16, [230, 120, 20])
  const state = { down: false }
  const profiles = new Map<string, FakeProfile>()
  const calls: FakeAppView['calls'] = []
  let base = ''
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname.startsWith('/img/')) {
      res.writeHead(200, { 'content-type': 'image/png' })
      return res.end(png)
    }
    const nsid = url.pathname.replace('/xrpc/', '')
    calls.push({ nsid, params: url.searchParams })
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    if (state.down) return json(503, { error: 'Unavailable' })
    if (nsid === 'app.bsky.actor.getProfiles') {
      const out = url.searchParams
        .getAll('actors')
        .map((a) => profiles.get(a))
        .filter((p): p is FakeProfile => p !== undefined)
        .map((p) => ({
          did: p.did,
          handle: p.handle,
          displayName: p.displayName,
          avatar: p.avatar ? `${p.avatarBase ?? base}/img/avatar/plain/${p.did}/x@jpeg` : undefined,
        }))
      return json(200, { profiles: out })
    }
    if (nsid === 'com.atproto.identity.resolveHandle') {
      const h = url.searchParams.get('handle')
      const p = [...profiles.values()].find((x) => x.handle === h)
      return p
        ? json(200, { did: p.did })
        : json(400, { error: 'InvalidRequest', message: 'Unable to resolve handle' })
    }
    json(404, { error: 'MethodNotImplemented' })
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return {
    url: base,
    profiles,
    calls,
    get down() {
      return state.down
    },
    set down(v: boolean) {
      state.down = v
    },
    close() {
      server.closeAllConnections()
      return new Promise<void>((r) => server.close(() => r()))
    },
  }
}
