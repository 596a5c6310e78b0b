import { Secp256k1Keypair } from '@atproto/crypto'
import { BlockMap, cborToLex, cborToLexRecord, readCarWithRoot, verifyRepoCar } from '@atproto/repo'
import { beforeAll, describe, expect, it } from 'vitest'
import { INTERACTION_COLLECTIONS, type RepoContents, readRepo } from '../src/index.js'
import { refusal } from './helpers.js'
import {
  ALICE,
  BOB,
  chunked,
  handmadeRepo,
  isMstNode,
  makeRepo,
  mixedRecords,
  rewriteCar,
  type TestRepo,
} from './repo-car.js'

let repo: TestRepo

beforeAll(async () => {
  repo = await makeRepo(await mixedRecords(200))
})

const opts = () => ({ did: repo.did, signingKey: repo.signingKey })

/** What @atproto/repo reads from the same CAR: every create of a wanted collection, decoded. */
async function expected(car: Uint8Array) {
  const verified = await verifyRepoCar(car, repo.did, repo.signingKey)
  const { blocks } = await readCarWithRoot(car)
  return verified.creates
    .filter((c) => INTERACTION_COLLECTIONS.has(c.collection))
    .map((c) => ({
      collection: c.collection,
      rkey: c.rkey,
      cid: c.cid.toString(),
      record: cborToLexRecord(blocks.get(c.cid) as Uint8Array),
    }))
    .sort((a, b) => (a.collection + a.rkey < b.collection + b.rkey ? -1 : 1))
}

function plain(read: RepoContents) {
  return [...read.records()].map(({ collection, rkey, cid, record }) => ({
    collection,
    rkey,
    cid,
    record,
  }))
}

describe('readRepo', () => {
  it('reads back every wanted record exactly as @atproto/repo does, whatever the chunking', async () => {
    const want = await expected(repo.car)
    expect(want.length).toBeGreaterThan(150)
    for (const size of [repo.car.length, 65_536, 1000, 7]) {
      const read = await readRepo(chunked(repo.car, size), opts())
      expect(plain(read)).toEqual(want)
      expect(read.count).toBe(want.length)
      expect(read.skipped).toBe(0)
    }
  })

  it('names the commit, its rev and what it read', async () => {
    const { root, blocks } = await readCarWithRoot(repo.car)
    const commit = cborToLex(blocks.get(root) as Uint8Array) as { rev: string }
    const read = await readRepo(chunked(repo.car, 4096), opts())
    expect(read).toMatchObject({
      did: ALICE,
      rev: commit.rev,
      commit: root.toString(),
      bytes: repo.car.length,
      blocks: blocks.size,
    })
  })

  it('reads the blocks in any order (records before their nodes, the commit last)', async () => {
    const reversed = await rewriteCar(repo.car, (blocks) => {
      const out = new BlockMap()
      for (const [cid, bytes] of [...blocks].reverse()) out.set(cid, bytes)
      return out
    })
    expect(plain(await readRepo(chunked(reversed, 999), opts()))).toEqual(await expected(repo.car))
  })

  it('hands out only the collections asked for', async () => {
    const read = await readRepo(chunked(repo.car, 65_536), {
      ...opts(),
      collections: new Set(['app.bsky.graph.follow']),
    })
    const follows = plain(read)
    expect(follows.length).toBe(20)
    expect(follows.every((r) => r.record.$type === 'app.bsky.graph.follow')).toBe(true)
  })

  it('skips, and counts, a record whose $type is not one it reads', async () => {
    const odd = await makeRepo([
      {
        collection: 'app.bsky.feed.like',
        rkey: '3kaaaaaaaaa22',
        record: {
          $type: 'app.bsky.graph.follow',
          subject: BOB,
          createdAt: new Date().toISOString(),
        },
      },
    ])
    const read = await readRepo(chunked(odd.car, 100), { did: odd.did, signingKey: odd.signingKey })
    expect(plain(read)).toEqual([])
    expect(read.skipped).toBe(1)
  })
})

describe('readRepo refuses a repo that does not check, before handing out anything', () => {
  it('signed with another key: bad_signature', async () => {
    const other = await Secp256k1Keypair.create()
    const err = await refusal(
      readRepo(chunked(repo.car, 4096), { ...opts(), signingKey: other.did() }),
    )
    expect(err.reason).toBe('bad_signature')
  })

  it('a commit for another DID: wrong_did', async () => {
    const err = await refusal(readRepo(chunked(repo.car, 4096), { ...opts(), did: BOB }))
    expect(err.reason).toBe('wrong_did')
  })

  it('a flipped byte inside a record block: bad_block', async () => {
    const car = Buffer.from(repo.car)
    const at = car.indexOf(Buffer.from('café ✨'))
    expect(at).toBeGreaterThan(0)
    car[at + 1] = (car[at + 1] as number) ^ 0x01
    const err = await refusal(readRepo(chunked(car, 4096), opts()))
    expect(err.reason).toBe('bad_block')
  })

  it('a CAR cut short inside a block: bad_car; at a block boundary: missing_block', async () => {
    const cut = await refusal(
      readRepo(chunked(repo.car.subarray(0, repo.car.length - 10), 4096), opts()),
    )
    expect(cut.reason).toBe('bad_car')
    // Every block but the last, whole: the tree lacks what the cut took.
    const { blocks } = await readCarWithRoot(repo.car)
    const last = [...blocks].at(-1)?.[1] as Uint8Array
    const boundary = repo.car.length - last.length - 36 - varintLength(last.length + 36)
    const short = await refusal(readRepo(chunked(repo.car.subarray(0, boundary), 4096), opts()))
    expect(short.reason).toBe('missing_block')
  })

  it('a missing MST node: missing_block', async () => {
    const car = await rewriteCar(repo.car, (blocks) => {
      const node = [...blocks].find(([, bytes]) => isMstNode(cborToLex(bytes)))
      if (node) blocks.delete(node[0])
      return blocks
    })
    expect((await refusal(readRepo(chunked(car, 4096), opts()))).reason).toBe('missing_block')
  })

  it('a missing record of a collection it drops: missing_block', async () => {
    const car = await rewriteCar(repo.car, (blocks) => {
      const follow = [...blocks].find(
        ([, bytes]) => (cborToLex(bytes) as { $type?: string }).$type === 'app.bsky.graph.follow',
      )
      if (follow) blocks.delete(follow[0])
      return blocks
    })
    expect((await refusal(readRepo(chunked(car, 4096), opts()))).reason).toBe('missing_block')
  })

  it('a body that is not a CAR: bad_car', async () => {
    for (const body of ['<html><body>Not Found</body></html>', '{"error":"RepoNotFound"}', '']) {
      const err = await refusal(readRepo(chunked(Buffer.from(body), 4096), opts()))
      expect(err.reason).toBe('bad_car')
    }
  })

  it('a CAR with two roots: bad_car', async () => {
    const { root, blocks } = await readCarWithRoot(repo.car)
    const { blocksToCarFile } = await import('@atproto/repo')
    const one = await blocksToCarFile(root, blocks)
    // Same header shape with the root listed twice: patch the array length and append the CID again.
    const headerLength = one[0] as number
    const header = Buffer.from(one.subarray(1, 1 + headerLength))
    const linkAt = header.indexOf(Buffer.from([0xd8, 0x2a]))
    const rootLink = header.subarray(linkAt, linkAt + 41)
    const rootsAt = header.indexOf(Buffer.from('roots')) + 5
    expect(header[rootsAt]).toBe(0x81)
    const twoRoots = Buffer.concat([
      header.subarray(0, rootsAt),
      Buffer.from([0x82]),
      rootLink,
      header.subarray(rootsAt + 1),
    ])
    const car = Buffer.concat([
      Buffer.from([twoRoots.length]),
      twoRoots,
      one.subarray(1 + headerLength),
    ])
    expect((await refusal(readRepo(chunked(car, 4096), opts()))).reason).toBe('bad_car')
  })

  it('a block length no repo has: bad_car at once, not after waiting for the bytes', async () => {
    const headerEnd = 1 + (repo.car[0] as number)
    let sent = 0
    async function* huge(): AsyncGenerator<Uint8Array> {
      // A varint of 2^30 where the first block's length was, then bytes that would make it up.
      yield Buffer.concat([
        repo.car.subarray(0, headerEnd),
        Buffer.from([0x80, 0x80, 0x80, 0x80, 0x04]),
      ])
      for (; sent < 20_000; sent++) yield Buffer.alloc(65_536)
    }
    expect((await refusal(readRepo(huge(), opts()))).reason).toBe('bad_car')
    expect(sent).toBe(0)
  })

  it('over maxBytes: too_large', async () => {
    const err = await refusal(readRepo(chunked(repo.car, 1000), { ...opts(), maxBytes: 5000 }))
    expect(err.reason).toBe('too_large')
  })

  it('MST keys out of order: bad_mst', async () => {
    const key = await Secp256k1Keypair.create()
    const sorted = ['app.bsky.feed.like/3kaaaaaaaaa22', 'app.bsky.feed.like/3kaaaaaaaab22']
    const good = await handmadeRepo(sorted, key)
    const signingKey = key.did()
    expect((await readRepo(chunked(good, 100), { did: ALICE, signingKey })).count).toBe(2)
    const bad = await handmadeRepo([...sorted].reverse(), key)
    expect((await refusal(readRepo(chunked(bad, 100), { did: ALICE, signingKey }))).reason).toBe(
      'bad_mst',
    )
  })

  it('the error of the stream itself, as it was', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield repo.car.subarray(0, 100)
      throw new Error('socket hang up')
    }
    const err = await refusal(readRepo(failing(), opts()))
    expect(err.reason).toBe('network')
  })
})

function varintLength(n: number): number {
  let length = 1
  while (n >= 0x80) {
    n >>>= 7
    length++
  }
  return length
}
