import { verifyRepoCar } from '@atproto/repo'
import { type LocalPds, startLocalPds } from '@circles/testkit/pds'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fetchRepo, type RepoContents, readRepo, readRepoDiff, resolvePds } from '../src/index.js'
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

  it('reads the repo verified, and later only what was written since its rev', async () => {
    const carol = await pds.createAccount('carol')
    const dave = await pds.createAccount('dave')
    const createdAt = () => new Date().toISOString()
    const old = await dave.agent.post({ text: 'an old post', createdAt: createdAt() })
    const first = await carol.agent.post({ text: 'first', createdAt: createdAt() })
    const { pds: endpoint, signingKey } = await resolvePds(carol.did, { plcUrl: pds.plcUrl })
    if (signingKey === undefined) throw new Error('the DID document names no signing key')
    const opts = { did: carol.did, signingKey }
    const fetch = async (since?: string) =>
      (await fetchRepo(endpoint, carol.did, { allowPrivate: true, since })).car

    const full = await readRepo(await fetch(), opts)
    expect(paths(full)).toEqual([path(first.uri)])

    const made = [
      await carol.agent.like(old.uri, old.cid),
      await carol.agent.repost(old.uri, old.cid),
      await carol.agent.post({
        text: 'a reply',
        reply: { root: old, parent: old },
        createdAt: createdAt(),
      }),
    ]
    await carol.agent.follow(dave.did)
    const diff = await readRepoDiff(await fetch(full.rev), opts)
    expect(diff.rev > full.rev).toBe(true)
    expect(paths(diff)).toEqual(made.map((m) => path(m.uri)).sort())

    // A diff is not a whole repo: the strict reader finds the unchanged part missing.
    expect((await refusal(readRepo(await fetch(full.rev), opts))).reason).toBe('missing_block')

    // The same records, decoded the same, as a full read now gives.
    const now = await readRepo(await fetch(), opts)
    expect(now.rev).toBe(diff.rev)
    const fresh = [...now.records()].filter((r) =>
      paths(diff).includes(`${r.collection}/${r.rkey}`),
    )
    expect([...diff.records()].map((r) => r.record)).toEqual(fresh.map((r) => r.record))
  })

  it('refuses the same PDS on loopback without allowPrivate', async () => {
    const bob = await pds.createAccount('bob')
    const { pds: endpoint } = await resolvePds(bob.did, { plcUrl: pds.plcUrl })
    expect((await refusal(fetchRepo(endpoint, bob.did))).reason).toBe('private_address')
  })
})

function path(uri: string): string {
  return uri.split('/').slice(3).join('/')
}

function paths(repo: RepoContents): string[] {
  return [...repo.records()].map((r) => `${r.collection}/${r.rkey}`)
}
