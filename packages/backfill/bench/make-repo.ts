// pnpm bench:backfill, the repo: `node make-repo.js <records> <car path>` makes a repo with
// @atproto/repo, writes its CAR as a PDS's getRepo sends it, and prints {did, signingKey} as JSON. A
// process of its own: building 100k records takes ~1 GB, which the measured runs must not inherit
// (on Linux a child's maxRSS starts from its parent's).
import { createWriteStream } from 'node:fs'
import { rename } from 'node:fs/promises'
import { Secp256k1Keypair } from '@atproto/crypto'
import {
  cidForRecord,
  getFullRepo,
  MemoryBlockstore,
  type RecordCreateOp,
  Repo,
  WriteOpAction,
} from '@atproto/repo'
import { DAY_MS, tidFromMs } from '@circles/core'
import { prng } from '@circles/testkit'

/** Accounts the repo's likes, reposts, replies and quotes point at. */
const PARTNERS = 3000

const [records, car] = process.argv.slice(2) as [string, string]
const key = await Secp256k1Keypair.create()
const did = 'did:plc:benchbackfillaaaaaaaaaaa'
const storage = new MemoryBlockstore()
const repo = await Repo.create(storage, did, key, await history(Number(records)))
const out = createWriteStream(`${car}.tmp`)
for await (const chunk of getFullRepo(storage, repo.cid)) {
  if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()))
}
await new Promise<void>((done, fail) => out.end((err?: Error | null) => (err ? fail(err) : done())))
await rename(`${car}.tmp`, car)
process.stdout.write(`${JSON.stringify({ did, signingKey: key.did() })}\n`)

/** The repo's writes: ~55% likes, 10% reposts, 25% posts (replies, quotes, images), 10% follows. */
async function history(n: number): Promise<RecordCreateOp[]> {
  const random = prng(16)
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)] as T
  const partners = Array.from({ length: PARTNERS }, (_, i) => `did:plc:${base32(i, 24)}`)
  const cids = await Promise.all(
    Array.from({ length: 64 }, async (_, i) => (await cidForRecord({ post: i })).toString()),
  )
  const blob = {
    $type: 'blob',
    ref: await cidForRecord({ image: 1 }),
    mimeType: 'image/jpeg',
    size: 1,
  }
  const ref = () => ({
    uri: `at://${pick(partners)}/app.bsky.feed.post/${tidFromMs(Date.now() - random() * 90 * DAY_MS)}`,
    cid: pick(cids),
  })
  const now = Date.now()
  const rkeys = new Set<string>()
  const writes: RecordCreateOp[] = []
  while (writes.length < n) {
    const at = now - random() * 90 * DAY_MS
    const rkey = tidFromMs(at, Math.floor(random() * 1024))
    if (rkeys.has(rkey)) continue
    rkeys.add(rkey)
    const createdAt = new Date(at).toISOString()
    const x = random()
    const [collection, record] =
      x < 0.55
        ? ['app.bsky.feed.like', { subject: ref(), createdAt }]
        : x < 0.65
          ? ['app.bsky.feed.repost', { subject: ref(), createdAt }]
          : x < 0.9
            ? ['app.bsky.feed.post', post(random, ref, blob, createdAt)]
            : ['app.bsky.graph.follow', { subject: `did:plc:${base32(x * 1e9, 24)}`, createdAt }]
    writes.push({
      action: WriteOpAction.Create,
      collection,
      rkey,
      record: { $type: collection, ...record },
    } as RecordCreateOp)
  }
  return writes
}

function post(
  random: () => number,
  ref: () => { uri: string; cid: string },
  blob: object,
  createdAt: string,
): Record<string, unknown> {
  const words = ['circle', 'backfill', 'repo', 'morning', 'café', 'merci', 'good', 'the', 'a', '✨']
  let text = ''
  const length = 3 + Math.floor(random() * 30)
  for (let i = 0; i < length; i++) text += `${words[Math.floor(random() * words.length)]} `
  const record: Record<string, unknown> = { text: text.trim(), createdAt, langs: ['en'] }
  const x = random()
  if (x < 0.4) {
    const parent = ref()
    record.reply = { root: random() < 0.5 ? parent : ref(), parent }
  } else if (x < 0.52) {
    record.embed = { $type: 'app.bsky.embed.record', record: ref() }
  } else if (x < 0.55) {
    record.embed = {
      $type: 'app.bsky.embed.recordWithMedia',
      record: { $type: 'app.bsky.embed.record', record: ref() },
      media: { $type: 'app.bsky.embed.images', images: [{ alt: '', image: blob }] },
    }
  } else if (x < 0.65) {
    record.embed = { $type: 'app.bsky.embed.images', images: [{ alt: 'a photo', image: blob }] }
  }
  return record
}

function base32(n: number, length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567'
  let out = ''
  let v = Math.floor(n)
  for (let i = 0; i < length; i++) {
    out = alphabet[v % 32] + out
    v = Math.floor(v / 32)
  }
  return out
}
