import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { expect } from 'vitest'
import { RepoSourceError } from '../src/index.js'

export interface LocalServer {
  url: string
  port: number
  /** Every request path (with query) the server saw, in order. */
  seen: string[]
  close(): Promise<void>
}

export type Handler = (req: IncomingMessage, res: ServerResponse, url: URL) => void

/** A real HTTP server on 127.0.0.1 that plays PLC directory, did:web host and PDS for the tests. */
export async function startLocalServer(handler: Handler): Promise<LocalServer> {
  const seen: string[] = []
  const server: Server = createServer((req, res) => {
    seen.push(req.url ?? '')
    handler(req, res, new URL(req.url ?? '/', 'http://127.0.0.1'))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

export function didDocument(did: string, pds: string): object {
  return {
    '@context': ['https://www.w3.org/ns/did/v1'],
    id: did,
    alsoKnownAs: ['at://alice.example.test'],
    verificationMethod: [
      {
        id: `${did}#atproto`,
        type: 'Multikey',
        controller: did,
        publicKeyMultibase: 'zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF',
      },
    ],
    service: [{ id: '#atproto_pds', type: 'AtprotoPersonalDataServer', serviceEndpoint: pds }],
  }
}

/** The error a promise rejects with, which must be a RepoSourceError. */
export async function refusal(work: Promise<unknown>): Promise<RepoSourceError> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(err).toBeInstanceOf(RepoSourceError)
  return err as RepoSourceError
}

export async function readAll(car: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const chunks: Uint8Array[] = []
  for await (const chunk of car) chunks.push(chunk)
  return Buffer.concat(chunks)
}
