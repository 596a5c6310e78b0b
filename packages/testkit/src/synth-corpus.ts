import { rename, stat } from 'node:fs/promises'
import { CidLinkWrapper, encode, toBytes } from '@atcute/cbor'
import { Secp256k1Keypair } from '@atproto/crypto'
import {
  BlockMap,
  type CommitData,
  cidForRecord,
  MemoryBlockstore,
  type RecordWriteOp,
  Repo,
  WriteOpAction,
} from '@atproto/repo'
import { tidFromMs } from '@circles/core'
import { type CorpusFrame, CorpusWriter, readCorpus } from './corpus.js'
import { prng } from './prng.js'

export interface SynthOptions {
  /** Commits to generate after the repos' initial commits. */
  commits: number
  /** @default 300 */
  repos?: number
  /** Seed of the deterministic choices (keys and signatures still differ run to run). @default 1 */
  seed?: number
  /** Time of the first commit in ms. @default two hours ago */
  startMs?: number
  /** Simulated time between commits in ms. @default 1 */
  stepMs?: number
  /** Called once per repo with its DID and the did:key its commits are signed with. */
  onRepo?: (did: string, signingKey: string) => void
  /** Called every 5,000 commits. */
  onProgress?: (done: number, total: number) => void
}

/** What the generator produced, for checks: counts by kind of commit. */
export interface SynthStats {
  frames: number
  commits: number
  likes: number
  reposts: number
  replies: number
  quotes: number
  replyQuotes: number
  deletes: number
  relikes: number
  identities: number
}

const LIKE = 'app.bsky.feed.like'
const REPOST = 'app.bsky.feed.repost'
const POST = 'app.bsky.feed.post'

interface Rec {
  collection: string
  rkey: string
  cid: CidLinkWrapper
  /** For posts: a strong ref others can point at. */
  ref?: { uri: string; cid: string }
}

interface SynthRepo {
  did: string
  key: Secp256k1Keypair
  storage: MemoryBlockstore
  repo: Repo
  posts: Rec[]
  /** Likes and reposts this repo may later delete. */
  undoable: Rec[]
}

/** Zipf(s=1) sampler over n ranks by inverse CDF. */
function zipf(n: number, random: () => number): () => number {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1)
    cdf[i] = sum
  }
  return () => {
    const x = random() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((cdf[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

const B32 = 'abcdefghijklmnopqrstuvwxyz234567'

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}

const COMMIT_HEADER = encode({ op: 1, t: '#commit' })
const IDENTITY_HEADER = encode({ op: 1, t: '#identity' })

/**
 * Generates real, signed repo commits with `@atproto/repo` (a few hundred in-memory repos) and
 * encodes each as the `#commit` frame a PDS would send: header `{op: 1, t: '#commit'}`, body with
 * seq, repo, commit, rev, since, blocks (a CAR of the new MST nodes, the record and the covering
 * proof, as `formatSeqCommit` builds it), ops, prevData, time, and the deprecated rebase/tooBig/blobs.
 *
 * Authors and subjects are Zipf-distributed; the mix is about 72% likes, 14% reposts, 11% replies
 * and 3% quotes (some of them replies too), plus ~3% deletes (unlike, unrepost, delete post) and a
 * few re-likes (delete + create in one commit). Each repo starts with an `#identity` frame and an
 * initial commit holding a few posts.
 */
export async function* synthesizeFrames(
  opts: SynthOptions,
  stats?: SynthStats,
): AsyncGenerator<CorpusFrame> {
  const random = prng(opts.seed ?? 1)
  const nRepos = opts.repos ?? 300
  const step = opts.stepMs ?? 1
  let now = opts.startMs ?? Date.now() - 2 * 3600_000
  let seq = 0
  let clock = 0
  const s: SynthStats = stats ?? emptyStats()
  const tid = () => tidFromMs(now, clock++ & 1023)

  const repos: SynthRepo[] = []
  for (let i = 0; i < nRepos; i++) {
    let id = ''
    for (let j = 0; j < 24; j++) id += B32[Math.floor(random() * 32)]
    const did = `did:plc:${id}`
    const key = await Secp256k1Keypair.create()
    opts.onRepo?.(did, key.did())
    const storage = new MemoryBlockstore()
    const posts: Rec[] = []
    const writes: RecordWriteOp[] = []
    for (let p = 0; p < 3; p++) {
      const rkey = tid()
      const record = {
        $type: POST,
        text: `post ${p} by ${i}`,
        createdAt: new Date(now).toISOString(),
      }
      writes.push({ action: WriteOpAction.Create, collection: POST, rkey, record } as RecordWriteOp)
      const cid = await cidForRecord(record)
      posts.push({
        collection: POST,
        rkey,
        cid: new CidLinkWrapper(cid.bytes),
        ref: { uri: `at://${did}/${POST}/${rkey}`, cid: cid.toString() },
      })
    }
    const init = await Repo.formatInitCommit(storage, did, key, writes as never)
    await storage.applyCommit(init)
    const repo = await Repo.load(storage, init.cid)
    repos.push({ did, key, storage, repo, posts, undoable: [] })
    s.identities++
    s.frames++
    yield { seq: ++seq, data: concat(IDENTITY_HEADER, encode({ seq, did, time: iso(now) })) }
    s.frames++
    yield { seq: ++seq, data: commitFrame(seq, did, init, posts.map(createOp), undefined, now) }
  }

  const author = zipf(nRepos, random)
  const subject = zipf(nRepos, random)
  const pickPost = (): Rec => {
    const r = repos[subject()] as SynthRepo
    // recent posts get the attention
    const back = Math.min(r.posts.length, 50)
    return r.posts[r.posts.length - 1 - Math.floor(random() * back)] as Rec
  }

  for (let i = 0; i < opts.commits; i++) {
    now += step
    const r = repos[author()] as SynthRepo
    const x = random()
    const writes: RecordWriteOp[] = []
    const ops: CommitOp[] = []
    const createdAt = iso(now)
    const create = async (collection: string, record: Record<string, unknown>): Promise<Rec> => {
      const rkey = tid()
      writes.push({ action: WriteOpAction.Create, collection, rkey, record } as RecordWriteOp)
      const cid = await cidForRecord(record as never)
      const rec: Rec = { collection, rkey, cid: new CidLinkWrapper(cid.bytes) }
      if (collection === POST)
        rec.ref = { uri: `at://${r.did}/${POST}/${rkey}`, cid: cid.toString() }
      ops.push(createOp(rec))
      return rec
    }
    const remove = (rec: Rec) => {
      writes.push({
        action: WriteOpAction.Delete,
        collection: rec.collection,
        rkey: rec.rkey,
      } as RecordWriteOp)
      ops.push({
        action: 'delete',
        path: `${rec.collection}/${rec.rkey}`,
        cid: null,
        prev: rec.cid,
      })
    }

    if (x < 0.03 && (r.undoable.length > 0 || r.posts.length > 3)) {
      // deletes: mostly unlikes and unreposts, sometimes a post
      const undo = r.undoable.length > 0 && (r.posts.length <= 3 || random() < 0.8)
      const rec = undo
        ? (r.undoable.splice(Math.floor(random() * r.undoable.length), 1)[0] as Rec)
        : (r.posts.splice(3 + Math.floor(random() * (r.posts.length - 3)), 1)[0] as Rec)
      remove(rec)
      s.deletes++
    } else if (x < 0.035 && r.undoable.some((u) => u.collection === LIKE)) {
      // re-like: the old like goes and a new one comes in the same commit
      const idx = r.undoable.findIndex((u) => u.collection === LIKE)
      const old = r.undoable.splice(idx, 1)[0] as Rec
      remove(old)
      const target = pickPost().ref as { uri: string; cid: string }
      r.undoable.push(await create(LIKE, { $type: LIKE, subject: target, createdAt }))
      s.relikes++
    } else if (x < 0.035 + 0.695) {
      const target = pickPost().ref as { uri: string; cid: string }
      r.undoable.push(await create(LIKE, { $type: LIKE, subject: target, createdAt }))
      s.likes++
    } else if (x < 0.035 + 0.695 + 0.135) {
      const target = pickPost().ref as { uri: string; cid: string }
      r.undoable.push(await create(REPOST, { $type: REPOST, subject: target, createdAt }))
      s.reposts++
    } else if (x < 0.035 + 0.695 + 0.135 + 0.105) {
      const parent = pickPost().ref as { uri: string; cid: string }
      const record: Record<string, unknown> = {
        $type: POST,
        text: `a reply at ${i}`,
        reply: { root: parent, parent },
        createdAt,
      }
      if (random() < 0.05) {
        record.embed = { $type: 'app.bsky.embed.record', record: pickPost().ref }
        s.replyQuotes++
      }
      r.posts.push(await create(POST, record))
      s.replies++
    } else {
      const quoted = pickPost().ref
      const embed =
        random() < 0.3
          ? {
              $type: 'app.bsky.embed.recordWithMedia',
              record: { $type: 'app.bsky.embed.record', record: quoted },
              media: {
                $type: 'app.bsky.embed.external',
                external: { uri: 'https://example.com/', title: 'a link', description: '' },
              },
            }
          : { $type: 'app.bsky.embed.record', record: quoted }
      r.posts.push(
        await create(POST, { $type: POST, text: `a quote at ${i} ✨`, embed, createdAt }),
      )
      s.quotes++
    }

    const prevData = new CidLinkWrapper(r.repo.commit.data.bytes)
    const commit = await r.repo.formatCommit(writes, r.key)
    await r.storage.applyCommit(commit)
    r.repo = await Repo.load(r.storage, commit.cid)
    s.commits++
    s.frames++
    yield { seq: ++seq, data: commitFrame(seq, r.did, commit, ops, prevData, now) }
    if (opts.onProgress && (i + 1) % 5000 === 0) opts.onProgress(i + 1, opts.commits)
  }
}

interface CommitOp {
  action: 'create' | 'delete'
  path: string
  cid: CidLinkWrapper | null
  prev?: CidLinkWrapper
}

function createOp(rec: Rec): CommitOp {
  return { action: 'create', path: `${rec.collection}/${rec.rkey}`, cid: rec.cid }
}

function iso(ms: number): string {
  return new Date(ms).toISOString()
}

function emptyStats(): SynthStats {
  return {
    frames: 0,
    commits: 0,
    likes: 0,
    reposts: 0,
    replies: 0,
    quotes: 0,
    replyQuotes: 0,
    deletes: 0,
    relikes: 0,
    identities: 0,
  }
}

function commitFrame(
  seq: number,
  did: string,
  commit: CommitData,
  ops: CommitOp[],
  prevData: CidLinkWrapper | undefined,
  now: number,
): Uint8Array {
  const blocks = new BlockMap()
  blocks.addMap(commit.newBlocks)
  blocks.addMap(commit.relevantBlocks)
  const body: Record<string, unknown> = {
    seq,
    rebase: false,
    tooBig: false,
    repo: did,
    commit: new CidLinkWrapper(commit.cid.bytes),
    rev: commit.rev,
    since: commit.since,
    blocks: toBytes(carBytes(commit, blocks)),
    ops,
    blobs: [],
    time: iso(now),
  }
  if (prevData) body.prevData = prevData
  return concat(COMMIT_HEADER, encode(body))
}

/** CARv1, as `blocksToCarFile` writes it but synchronously: varint(header length) header{version:1, roots:[commit]}, then varint(len) cid bytes, block bytes. */
function carBytes(commit: CommitData, blocks: BlockMap): Uint8Array {
  const parts: Uint8Array[] = []
  const header = encode({ version: 1, roots: [new CidLinkWrapper(commit.cid.bytes)] })
  parts.push(varint(header.length), header)
  for (const [cid, bytes] of blocks) {
    const c = cid.bytes
    parts.push(varint(c.length + bytes.length), c, bytes)
  }
  let len = 0
  for (const p of parts) len += p.length
  const out = new Uint8Array(len)
  let pos = 0
  for (const p of parts) {
    out.set(p, pos)
    pos += p.length
  }
  return out
}

function varint(n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80)
    n >>>= 7
  }
  out.push(n)
  return Uint8Array.from(out)
}

/**
 * Returns the frames of the large benchmark corpus at `path`, generating and caching it first when
 * the file is missing or holds fewer than `opts.commits` commits' worth of frames.
 */
export async function ensureLargeCorpus(
  path: string,
  opts: SynthOptions & { log?: (line: string) => void },
): Promise<CorpusFrame[]> {
  const log = opts.log ?? (() => undefined)
  const exists = await stat(path).then(
    () => true,
    () => false,
  )
  if (exists) {
    const frames = await readCorpus(path)
    if (frames.length >= opts.commits) {
      log(`corpus: using cached ${path} (${frames.length} frames)`)
      return frames
    }
    log(`corpus: ${path} holds ${frames.length} frames, fewer than ${opts.commits}: regenerating`)
  }
  const started = Date.now()
  log(
    `corpus: generating ${opts.commits} signed commits over ${opts.repos ?? 300} repos into ${path}`,
  )
  const tmp = `${path}.partial`
  const writer = await CorpusWriter.open(tmp)
  const stats = emptyStats()
  for await (const frame of synthesizeFrames(
    {
      ...opts,
      onProgress: (done, total) => {
        const secs = (Date.now() - started) / 1000
        log(
          `corpus: ${done}/${total} commits, ${(done / secs).toFixed(0)}/s, ${(writer.bytes / 1e6).toFixed(0)} MB`,
        )
      },
    },
    stats,
  )) {
    await writer.write(frame)
  }
  await writer.close()
  await rename(tmp, path)
  log(`corpus: done in ${((Date.now() - started) / 1000).toFixed(0)} s: ${JSON.stringify(stats)}`)
  return readCorpus(path)
}
