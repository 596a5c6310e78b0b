import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type AvatarPolicy, fetchAvatar, isPrivateAddress } from '../src/avatar-fetch.js'
import { toConfig } from '../src/config.js'
import { solidPng } from './fake-appview.js'

// Avatar URLs come from profiles their owners write: each refusal of avatar-fetch.ts against a real local
// server, which counts what reached it. A local https server would need a certificate; the https-only rule
// is tested by refusing http for a host not in AVATAR_INSECURE_HOSTS (before any connection), and the rest
// through the tests' allowed http host.

const MAX = 64 * 1024
const png = solidPng(8, [10, 200, 30])

describe('avatar fetch', () => {
  let server: Server
  let port: number
  let connections = 0
  const paths: string[] = []
  let hugeClosed = false
  let hugeSent = 0
  const hanging: ServerResponse[] = []
  let policy: AvatarPolicy
  const url = (host: string, path: string, scheme = 'http') =>
    new URL(`${scheme}://${host}:${port}${path}`)

  beforeAll(async () => {
    server = createServer((req, res) => {
      paths.push(req.url ?? '')
      if (req.url === '/ok.png') {
        res.writeHead(200, { 'content-type': 'image/png' })
        return res.end(png)
      }
      if (req.url === '/redirect') {
        res.writeHead(302, { location: '/ok.png' })
        return res.end()
      }
      if (req.url === '/html') {
        res.writeHead(200, { 'content-type': 'text/html' })
        return res.end('<html>')
      }
      if (req.url === '/declared') {
        res.writeHead(200, { 'content-type': 'image/png', 'content-length': String(50 * MAX) })
        return res.write(png)
      }
      if (req.url === '/huge') {
        // No length: an endless image, until the client hangs up.
        res.writeHead(200, { 'content-type': 'image/png' })
        const chunk = Buffer.alloc(16 * 1024, 1)
        const timer = setInterval(() => {
          hugeSent += chunk.length
          res.write(chunk)
        }, 1)
        res.on('close', () => {
          hugeClosed = true
          clearInterval(timer)
        })
        return
      }
      hanging.push(res) // /hang: never answered
    })
    server.on('connection', () => connections++)
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    port = (server.address() as AddressInfo).port
    policy = {
      hosts: new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]),
      insecureHosts: new Set([`127.0.0.1:${port}`]),
      maxBytes: MAX,
      timeoutMs: 800,
    }
  })
  afterAll(async () => {
    for (const res of hanging) res.destroy()
    server.closeAllConnections()
    await new Promise<void>((r) => server.close(() => r()))
  })

  it('fetches an image from an allowed host as a data: URI', async () => {
    const data = await fetchAvatar(url('127.0.0.1', '/ok.png'), policy)
    expect(data).toBe(`data:image/png;base64,${png.toString('base64')}`)
  })

  it('does not follow a redirect', async () => {
    paths.length = 0
    await expect(fetchAvatar(url('127.0.0.1', '/redirect'), policy)).rejects.toThrow(/answered 302/)
    expect(paths).toEqual(['/redirect'])
  })

  it('refuses http, hosts outside AVATAR_HOSTS and private addresses before connecting', async () => {
    const before = connections
    const refused: [URL, RegExp][] = [
      // Allowed host, but not one of the insecure ones: https only.
      [url('localhost', '/ok.png'), /http: is not https/],
      // https to a host that resolves to loopback: refused at the lookup.
      [url('localhost', '/ok.png', 'https'), /resolves to a private address/],
      [url('[::1]', '/ok.png', 'https'), /::1 is a private address/],
      [url('cdn.example', '/ok.png', 'https'), /not in AVATAR_HOSTS/],
      [new URL(`https://u:p@localhost:${port}/ok.png`), /credentials/],
      [new URL(`ftp://127.0.0.1:${port}/ok.png`), /ftp: is not https/],
    ]
    for (const [u, why] of refused) {
      await expect(fetchAvatar(u, policy), u.href).rejects.toThrow(why)
    }
    expect(connections).toBe(before)
  })

  it('stops reading a body past maxBytes, streamed or declared, and refuses what is not an image', async () => {
    const t0 = Date.now()
    await expect(fetchAvatar(url('127.0.0.1', '/huge'), policy)).rejects.toThrow(
      /body past 65536 bytes/,
    )
    expect(Date.now() - t0).toBeLessThan(policy.timeoutMs)
    const deadline = Date.now() + 2000
    while (!hugeClosed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(hugeClosed).toBe(true)
    const sentAtClose = hugeSent
    await new Promise((r) => setTimeout(r, 50))
    expect(hugeSent).toBe(sentAtClose)
    await expect(fetchAvatar(url('127.0.0.1', '/declared'), policy)).rejects.toThrow(/declared/)
    await expect(fetchAvatar(url('127.0.0.1', '/html'), policy)).rejects.toThrow(/not an image/)
  })

  it('gives up after the timeout', async () => {
    const t0 = Date.now()
    await expect(fetchAvatar(url('127.0.0.1', '/hang'), policy)).rejects.toThrow()
    const took = Date.now() - t0
    expect(took).toBeGreaterThanOrEqual(policy.timeoutMs - 50)
    expect(took).toBeLessThan(policy.timeoutMs + 1000)
  })
})

describe('private addresses', () => {
  it('knows private, loopback, link-local, reserved and mapped addresses from public ones', () => {
    for (const a of [
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '127.0.0.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '255.255.255.255',
      '::1',
      '::',
      'fe80::1',
      'fe80::1%eth0',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '::ffff:7f00:1',
      '64:ff9b::a00:1',
      'not-an-address',
    ]) {
      expect(isPrivateAddress(a), a).toBe(true)
    }
    for (const a of ['1.1.1.1', '8.8.8.8', '2606:4700::1111', '::ffff:1.1.1.1', '2a01:4f8::1']) {
      expect(isPrivateAddress(a), a).toBe(false)
    }
  })
})

describe('avatar config', () => {
  it('reads AVATAR_HOSTS as URL hosts, AVATAR_INSECURE_HOSTS only among them, AVATAR_MAX_BYTES', () => {
    const c = toConfig({
      AVATAR_HOSTS: 'CDN.bsky.app, cdn.example:443, 127.0.0.1:8081',
      AVATAR_INSECURE_HOSTS: '127.0.0.1:8081',
      AVATAR_MAX_BYTES: '100000',
    })
    expect(c.avatarHosts).toEqual(['cdn.bsky.app', 'cdn.example', '127.0.0.1:8081'])
    expect(c.avatarInsecureHosts).toEqual(['127.0.0.1:8081'])
    expect(c.avatarMaxBytes).toBe(100_000)
    expect(toConfig({}).avatarMaxBytes).toBe(262_144)
    expect(toConfig({}).avatarInsecureHosts).toEqual([])
    expect(() => toConfig({ AVATAR_INSECURE_HOSTS: '127.0.0.1:8081' })).toThrow(
      /AVATAR_INSECURE_HOSTS/,
    )
    expect(() => toConfig({ AVATAR_HOSTS: 'cdn.example/path' })).toThrow(/AVATAR_HOSTS/)
    expect(() => toConfig({ AVATAR_MAX_BYTES: '10' })).toThrow(/AVATAR_MAX_BYTES/)
  })
})
