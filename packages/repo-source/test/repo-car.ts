import type { Secp256k1Keypair } from '@atproto/crypto'
import { BlockMap, blocksToCarFile, cidForRecord, readCarWithRoot, signCommit } from '@atproto/repo'
import { tidFromMs } from '@circles/core'
import { makeTestRepo, type TestRecord, type TestRepo } from '@circles/testkit'

export const ALICE = 'did:plc:aliceaaaaaaaaaaaaaaaaaaa'
export const BOB = 'did:plc:bobbbbbbbbbbbbbbbbbbbbbb'
const LIKE = 'app.bsky.feed.like'
const REPOST = 'app.bsky.feed.repost'
const POST = 'app.bsky.feed.post'

export type { TestRecord, TestRepo } from '@circles/testkit'

/** A repo made with @atproto/repo, exactly as a PDS would hold it, with its full CAR. */
export function makeRepo(records: TestRecord[], did = ALICE): Promise<TestRepo> {
  return makeTestRepo(records, did)
}

/**
 * A mixed history: likes, reposts, plain posts, replies, quotes (one with media), a post with an image
 * (a blob ref: a CID inside the record), non-ASCII text, and records of other collections (follows, a
 * profile) that a reader of interactions drops.
 */
export async function mixedRecords(n = 60): Promise<TestRecord[]> {
  const ref = (i: number) => ({
    uri: `at://did:plc:partner${String(i % 7).padStart(17, '0')}/${POST}/3kabc${i}`,
    cid: 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm',
  })
  const blob = {
    $type: 'blob',
    ref: await cidForRecord({ image: 'bytes' }),
    mimeType: 'image/jpeg',
    size: 1234,
  }
  const start = Date.now() - 30 * 86_400_000
  const out: TestRecord[] = []
  for (let i = 0; i < n; i++) {
    const at = start + i * 3_600_000
    const createdAt = new Date(at).toISOString()
    const rkey = tidFromMs(at, i)
    const kind = i % 10
    let collection = LIKE
    let record: Record<string, unknown> = { $type: LIKE, subject: ref(i), createdAt }
    if (kind === 1) {
      collection = REPOST
      record = { $type: REPOST, subject: ref(i), createdAt }
    } else if (kind === 2) {
      collection = POST
      record = {
        $type: POST,
        text: `a reply ${i}`,
        reply: { root: ref(i), parent: ref(i) },
        createdAt,
      }
    } else if (kind === 3) {
      collection = POST
      const embed = { $type: 'app.bsky.embed.record', record: ref(i + 1) }
      record = { $type: POST, text: 'café ✨ 日本語 quote', embed, createdAt, langs: ['fr', 'ja'] }
    } else if (kind === 4) {
      collection = POST
      const images = { $type: 'app.bsky.embed.images', images: [{ alt: '', image: blob }] }
      record = { $type: POST, text: 'an image', embed: images, createdAt }
    } else if (kind === 5) {
      collection = 'app.bsky.graph.follow'
      record = { $type: collection, subject: ref(i).uri.split('/')[2], createdAt }
    }
    out.push({ collection, rkey, record })
  }
  out.push({
    collection: 'app.bsky.actor.profile',
    rkey: 'self',
    record: { $type: 'app.bsky.actor.profile', displayName: 'Alice', avatar: blob },
  })
  return out
}

/** The CAR in pieces of `size` bytes, as a network stream would deliver it. */
export async function* chunked(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size)
}

/** The same blocks under the same root, rewritten by `edit` (drop, reorder, replace). */
export async function rewriteCar(
  car: Uint8Array,
  edit: (blocks: BlockMap) => BlockMap,
): Promise<Uint8Array> {
  const { root, blocks } = await readCarWithRoot(car)
  return blocksToCarFile(root, edit(blocks))
}

/** An MST node: `{l, e}` as @atproto/repo's node data. */
export function isMstNode(value: unknown): boolean {
  return typeof value === 'object' && value !== null && 'e' in value && 'l' in value
}

/**
 * A repo built by hand: one MST node holding `keys` in the order given (a real MST sorts them), each
 * pointing at a like, and a commit signed by `key`. For the checks @atproto/repo never lets one build.
 */
export async function handmadeRepo(keys: string[], key: Secp256k1Keypair): Promise<Uint8Array> {
  const blocks = new BlockMap()
  const entries = []
  let previous = ''
  for (const k of keys) {
    const record = { $type: LIKE, subject: { uri: `at://${BOB}/${POST}/x`, cid: 'bafy' }, k }
    const cid = await blocks.add(record)
    let p = 0
    while (p < previous.length && p < k.length && previous[p] === k[p]) p++
    entries.push({ p, k: new TextEncoder().encode(k.slice(p)), v: cid, t: null })
    previous = k
  }
  const data = await blocks.add({ l: null, e: entries })
  const commit = await signCommit(
    { did: ALICE, version: 3, data, rev: tidFromMs(Date.now()), prev: null },
    key,
  )
  return blocksToCarFile(await blocks.add(commit), blocks)
}
