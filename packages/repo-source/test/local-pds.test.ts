import { verifyRepoCar } from '@atproto/repo'
import { type LocalPds, startLocalPds } from '@circles/testkit/pds'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchRepo, resolvePds } from '../src/index.js'
import { readAll, refusal } from './helpers.js'

let pds: LocalPds

beforeAll(async () => {
  pds = await startLocalPds()
})
afterAll(() => pds?.close())

// The real thing end to end: an account on @atproto/pds, its DID registered with a PLC server, the repo
// downloaded by getRepo and checked by @atproto/repo against the key the DID document names.
describe('against a local PDS and its PLC', () => {
  it('resolves a new account and fetches its repo, signed by the key in its DID document', async () => {
    const alice = await pds.createAccount('alice')
    const post = await alice.agent.post({
      text: 'backfill me',
      createdAt: new Date().toISOString(),
    })

    const identity = await resolvePds(alice.did, { plcUrl: pds.plcUrl })
    expect(new URL(identity.pds).port).toBe(String(pds.port))
    expect(identity.handle).toBe(alice.handle)
    expect(identity.signingKey).toMatch(/^did:key:z/)

    const { car, headers } = await fetchRepo(identity.pds, alice.did, { allowPrivate: true })
    expect(headers['content-type']).toContain('application/vnd.ipld.car')
    const repo = await verifyRepoCar(await readAll(car), alice.did, identity.signingKey)
    const rkey = post.uri.split('/').pop()
    expect(repo.creates.some((c) => c.collection === 'app.bsky.feed.post' && c.rkey === rkey)).toBe(
      true,
    )
  })

  it('refuses the same PDS on loopback without allowPrivate', async () => {
    const bob = await pds.createAccount('bob')
    const { pds: endpoint } = await resolvePds(bob.did, { plcUrl: pds.plcUrl })
    expect((await refusal(fetchRepo(endpoint, bob.did))).reason).toBe('private_address')
  })
})
