import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { resolvePds } from '../src/index.js'
import { didDocument, type LocalServer, refusal, startLocalServer } from './helpers.js'

const PLC_DID = 'did:plc:abcdefghijklmnopqrstuvwx'
const FTP_DID = 'did:plc:ftpftpftpftpftpftpftpftp'
const FILE_DID = 'did:plc:filefilefilefilefilefile'
const NO_PDS_DID = 'did:plc:nopdsnopdsnopdsnopdsnopd'
const OTHER_ID_DID = 'did:plc:otherotherotherotherothe'
const BAD_KEY_DID = 'did:plc:badkeybadkeybadkeybadkey'
const REDIRECT_DID = 'did:plc:redirectredirectredirect'

let server: LocalServer
let webDid: string
const docs = new Map<string, object>()

beforeAll(async () => {
  server = await startLocalServer((_req, res, url) => {
    const key =
      url.pathname === '/.well-known/did.json' ? webDid : decodeURIComponent(url.pathname.slice(1))
    if (key === REDIRECT_DID) {
      // Redirects are not followed: the target would escape the address check.
      res.writeHead(302, { location: `/${PLC_DID}` }).end()
      return
    }
    const doc = docs.get(key)
    if (!doc) {
      res.writeHead(404).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc))
  })
  webDid = `did:web:pds.example.test%3A${server.port}`
  docs.set(PLC_DID, didDocument(PLC_DID, server.url))
  docs.set(webDid, didDocument(webDid, 'https://pds.example.test'))
  docs.set(FTP_DID, didDocument(FTP_DID, 'ftp://127.0.0.1/repo'))
  docs.set(FILE_DID, didDocument(FILE_DID, 'file:///etc/passwd'))
  docs.set(NO_PDS_DID, { id: NO_PDS_DID, service: [] })
  docs.set(OTHER_ID_DID, didDocument(PLC_DID, server.url))
  docs.set(BAD_KEY_DID, {
    ...didDocument(BAD_KEY_DID, server.url),
    verificationMethod: [{ id: '#atproto', type: 'Multikey', publicKeyMultibase: 'zNotAKey' }],
  })
})
afterAll(() => server.close())

// The made-up did:web host resolves to the local server, through the real socket path.
const toLoopback = async () => [{ address: '127.0.0.1', family: 4 }]

describe('resolvePds', () => {
  it('resolves a did:plc through the configured PLC directory', async () => {
    const identity = await resolvePds(PLC_DID, { plcUrl: server.url })
    expect(identity).toEqual({
      did: PLC_DID,
      pds: server.url,
      signingKey: 'did:key:zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF',
      handle: 'alice.example.test',
    })
    expect(server.seen).toContain(`/${PLC_DID}`)
  })

  it('resolves a did:web through its /.well-known/did.json', async () => {
    const lookups: string[] = []
    const identity = await resolvePds(webDid, {
      didWebHttp: true,
      allowPrivate: true,
      lookup: (host) => {
        lookups.push(host)
        return toLoopback()
      },
    })
    expect(identity.pds).toBe('https://pds.example.test')
    // pds.example.test exists in no DNS: the request reached the server only because the socket used
    // the address that was checked, not a lookup of its own (no rebinding between check and connect).
    expect(lookups).toEqual(['pds.example.test'])
  })

  it('refuses a host when any of its addresses is private, even if the first is public', async () => {
    const before = server.seen.length
    const lookup = async () => [
      { address: '93.184.215.14', family: 4 },
      { address: '10.0.0.7', family: 4 },
    ]
    const err = await refusal(resolvePds(webDid, { didWebHttp: true, lookup }))
    expect(err.reason).toBe('private_address')
    expect(err.message).toContain('10.0.0.7 (private)')
    expect(server.seen.length).toBe(before)
  })

  it('refuses a did:web host on a private address unless allowed', async () => {
    const err = await refusal(resolvePds(webDid, { didWebHttp: true, lookup: toLoopback }))
    expect(err.reason).toBe('private_address')
    expect(err.message).toContain('127.0.0.1 (loopback)')
  })

  it('refuses a malformed DID before any request', async () => {
    const before = server.seen.length
    for (const did of ['did:plc:short', 'did:key:z6Mk', 'did:web:127.0.0.1', 'alice.bsky.social']) {
      expect((await refusal(resolvePds(did, { plcUrl: server.url }))).reason).toBe('bad_did')
    }
    expect(server.seen.length).toBe(before)
  })

  it.each([
    [FTP_DID, 'bad_scheme'],
    [FILE_DID, 'bad_scheme'],
    [NO_PDS_DID, 'no_pds'],
    [REDIRECT_DID, 'http_status'],
    [OTHER_ID_DID, 'bad_document'],
    [BAD_KEY_DID, 'bad_document'],
    ['did:plc:unknownunknownunknownunk', 'did_not_found'],
  ])('refuses %s: %s', async (did, reason) => {
    expect((await refusal(resolvePds(did, { plcUrl: server.url }))).reason).toBe(reason)
  })
})
