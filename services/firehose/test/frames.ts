import { createHash } from 'node:crypto'
import { CidLinkWrapper, encode, toBytes } from '@atcute/cbor'
import { tidFromMs } from '@circles/core'
import { clockAnchor, didOf, prng } from '@circles/testkit'

// Builds firehose frames byte for byte as a relay sends them: a DAG-CBOR header and body, the body's
// `blocks` a CARv1 holding the commit block, MST-node-like blocks and the records, every block under
// the SHA-256 CID of its bytes. Signatures are fake (nothing here checks them).

export interface OpSpec {
  action: 'create' | 'update' | 'delete'
  /** `collection/rkey` */
  path: string
  record?: unknown
}

export interface CommitOptions {
  /** ISO time of the commit. @default now */
  time?: string
  /** MST node blocks to add (the stock client decodes them, the fast path skips them). @default 3 */
  mstNodes?: number
  /** Indexes of ops whose record block is left out of the CAR. */
  omitBlocks?: number[]
  /** Send a commit whose `blocks` is empty. */
  emptyBlocks?: boolean
  /** Cut this many bytes off the end of the CAR (its last block, a record, is then truncated). */
  truncateCar?: number
}

function cidOf(bytes: Uint8Array): CidLinkWrapper {
  const digest = createHash('sha256').update(bytes).digest()
  const cid = new Uint8Array(36)
  cid.set([1, 0x71, 0x12, 32])
  cid.set(digest, 4)
  return new CidLinkWrapper(cid)
}

/** A well-formed CID that points at nothing (MST entry values): no hashing, so corpora build fast. */
function fakeCid(n: number): CidLinkWrapper {
  const cid = new Uint8Array(36)
  cid.set([1, 0x71, 0x12, 32])
  let x = (n * 2654435761) >>> 0
  for (let i = 4; i < 36; i++) {
    x = (x * 1103515245 + 12345) >>> 0
    cid[i] = x >>> 24
  }
  return new CidLinkWrapper(cid)
}

function varint(n: number): number[] {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n = Math.floor(n / 128)
  }
  out.push(n)
  return out
}

export function buildCar(
  root: CidLinkWrapper,
  blocks: { cid: CidLinkWrapper; bytes: Uint8Array }[],
) {
  const header = encode({ version: 1, roots: [root] })
  const parts: Uint8Array[] = [Uint8Array.from(varint(header.length)), header]
  for (const b of blocks) {
    parts.push(Uint8Array.from(varint(b.cid.bytes.length + b.bytes.length)), b.cid.bytes, b.bytes)
  }
  return Buffer.concat(parts)
}

function frame(header: unknown, body: unknown): Uint8Array {
  return Buffer.concat([encode(header), encode(body)])
}

let revCounter = 0

export function commitFrame(
  seq: number,
  repo: string,
  ops: OpSpec[],
  opts: CommitOptions = {},
): Uint8Array {
  const time = opts.time ?? new Date().toISOString()
  const blocks: { cid: CidLinkWrapper; bytes: Uint8Array }[] = []
  const frameOps = ops.map((op, i) => {
    if (op.action === 'delete' || op.record === undefined) {
      return { action: op.action, path: op.path, cid: null }
    }
    const bytes = encode(op.record)
    const cid = cidOf(bytes)
    if (!opts.omitBlocks?.includes(i)) blocks.push({ cid, bytes })
    return { action: op.action, path: op.path, cid }
  })
  // MST nodes: entries with key suffixes, values and subtree links, like the real thing.
  const mst: { cid: CidLinkWrapper; bytes: Uint8Array }[] = []
  for (let n = 0; n < (opts.mstNodes ?? 3); n++) {
    const bytes = encode({
      e: Array.from({ length: 8 }, (_, k) => ({
        k: toBytes(new TextEncoder().encode(`app.bsky.feed.like/${seq}${n}${k}`)),
        p: k === 0 ? 0 : 12,
        t: null,
        v: fakeCid(seq * 64 + n * 8 + k),
      })),
      l: null,
    })
    mst.push({ cid: cidOf(bytes), bytes })
  }
  const rev = tidFromMs(Date.now() + revCounter++)
  const commitBytes = encode({
    did: repo,
    rev,
    sig: toBytes(new Uint8Array(64)),
    data: (mst[0] ?? { cid: cidOf(new Uint8Array([seq & 0xff])) }).cid,
    prev: null,
    version: 3,
  })
  const commitCid = cidOf(commitBytes)
  let car = opts.emptyBlocks
    ? new Uint8Array(0)
    : buildCar(commitCid, [{ cid: commitCid, bytes: commitBytes }, ...mst, ...blocks])
  if (opts.truncateCar) car = car.subarray(0, car.length - opts.truncateCar)
  return frame(
    { op: 1, t: '#commit' },
    {
      seq,
      rebase: false,
      tooBig: false,
      repo,
      commit: commitCid,
      rev,
      since: null,
      blocks: toBytes(car),
      ops: frameOps,
      blobs: [],
      time,
    },
  )
}

export function identityFrame(seq: number, did: string, handle?: string, time?: string) {
  return frame(
    { op: 1, t: '#identity' },
    { seq, did, time: time ?? new Date().toISOString(), ...(handle ? { handle } : {}) },
  )
}

export function accountFrame(seq: number, did: string, active: boolean, status?: string) {
  return frame(
    { op: 1, t: '#account' },
    { seq, did, time: new Date().toISOString(), active, ...(status ? { status } : {}) },
  )
}

export function errorFrame(error: string, message: string) {
  return frame({ op: -1 }, { error, message })
}

export function infoFrame(name: string, message?: string) {
  return frame({ op: 1, t: '#info' }, { name, ...(message ? { message } : {}) })
}

// --- records -----------------------------------------------------------------------------------------

const FAKE_CID = 'bafyreie5737gdxlw5i64vzichcalba3z2v5n6icifvx5xytvske7mr3hpm'

export function postUri(did: string, rkey: string): string {
  return `at://${did}/app.bsky.feed.post/${rkey}`
}

export function like(subjectDid: string, subjectRkey = '3l2aaaaaaaa22'): unknown {
  return {
    $type: 'app.bsky.feed.like',
    subject: { uri: postUri(subjectDid, subjectRkey), cid: FAKE_CID },
    createdAt: new Date().toISOString(),
  }
}

export function repost(subjectDid: string): unknown {
  return { ...(like(subjectDid) as object), $type: 'app.bsky.feed.repost' }
}

export function post(opts: { text?: string; replyTo?: string; quote?: string; media?: boolean }) {
  const record: Record<string, unknown> = {
    $type: 'app.bsky.feed.post',
    text: opts.text ?? 'hello',
    createdAt: new Date().toISOString(),
  }
  if (opts.replyTo) {
    const ref = { uri: postUri(opts.replyTo, '3l2aaaaaaaa22'), cid: FAKE_CID }
    record.reply = { root: ref, parent: ref }
  }
  if (opts.quote) {
    const ref = { uri: postUri(opts.quote, '3l2bbbbbbbb22'), cid: FAKE_CID }
    record.embed = opts.media
      ? {
          $type: 'app.bsky.embed.recordWithMedia',
          record: { $type: 'app.bsky.embed.record', record: ref },
          media: { $type: 'app.bsky.embed.images', images: [] },
        }
      : { $type: 'app.bsky.embed.record', record: ref }
  }
  return record
}

// --- a synthetic corpus ----------------------------------------------------------------------------

export { didOf }

/**
 * `count` frames with seqs `firstSeq..`, in the proportions of the live network (likes the bulk, then
 * posts, reposts, follows, deletes, re-likes), with identity/account frames and some malformed ops.
 */
export function syntheticCorpus(count: number, seed = 1, firstSeq = 1): Uint8Array[] {
  const rand = prng(seed)
  const pick = (n: number) => Math.floor(rand() * n)
  // Real time, not a calendar date: the stream these frames reach is read by writers that expire by it.
  const base = clockAnchor(0)
  const frames: Uint8Array[] = []
  for (let i = 0; i < count; i++) {
    const seq = firstSeq + i
    const ms = base + i * 10
    const time = new Date(ms).toISOString()
    const repo = didOf(pick(5000))
    const other = didOf(pick(5000))
    const rkey = tidFromMs(ms)
    const r = rand()
    let ops: OpSpec[]
    if (r < 0.01) {
      frames.push(identityFrame(seq, repo, `user${pick(1000)}.bsky.social`, time))
      continue
    } else if (r < 0.015) {
      frames.push(accountFrame(seq, repo, rand() < 0.5, 'deleted'))
      continue
    } else if (r < 0.6)
      ops = [{ action: 'create', path: `app.bsky.feed.like/${rkey}`, record: like(other) }]
    else if (r < 0.68)
      ops = [{ action: 'create', path: `app.bsky.feed.repost/${rkey}`, record: repost(other) }]
    else if (r < 0.76)
      ops = [{ action: 'create', path: `app.bsky.feed.post/${rkey}`, record: post({}) }]
    else if (r < 0.82)
      ops = [
        {
          action: 'create',
          path: `app.bsky.feed.post/${rkey}`,
          record: post({ replyTo: other, text: 'a reply 🙂' }),
        },
      ]
    else if (r < 0.85)
      ops = [
        {
          action: 'create',
          path: `app.bsky.feed.post/${rkey}`,
          record: post({
            quote: other,
            replyTo: rand() < 0.3 ? didOf(pick(5000)) : undefined,
            media: rand() < 0.5,
          }),
        },
      ]
    else if (r < 0.93)
      ops = [
        {
          action: 'create',
          path: `app.bsky.graph.follow/${rkey}`,
          record: { $type: 'app.bsky.graph.follow', subject: other, createdAt: time },
        },
      ]
    else if (r < 0.96)
      ops = [
        {
          action: 'delete',
          path: `${['app.bsky.feed.like', 'app.bsky.feed.repost', 'app.bsky.feed.post'][pick(3)]}/${rkey}`,
        },
      ]
    else if (r < 0.98)
      ops = [
        { action: 'delete', path: `app.bsky.feed.like/${tidFromMs(ms - 5000)}` },
        { action: 'create', path: `app.bsky.feed.like/${rkey}`, record: like(other) },
      ]
    else if (r < 0.99)
      ops = [
        { action: 'create', path: `app.bsky.feed.like/${rkey}`, record: like(repo) }, // self
        { action: 'update', path: 'app.bsky.actor.profile/self', record: { displayName: 'x' } },
      ]
    else
      ops = [
        // malformed shapes a real firehose carries now and then
        { action: 'create', path: `app.bsky.feed.like/${rkey}`, record: { subject: 'nope' } },
        { action: 'create', path: 'app.bsky.feed.repost/bad key!', record: repost(other) },
        { action: 'create', path: `app.bsky.feed.post/${rkey}`, record: { text: 5, reply: {} } },
      ]
    frames.push(commitFrame(seq, repo, ops, { time, mstNodes: 2 + pick(4) }))
  }
  return frames
}
