import { tidFromMs } from '@circles/core'
import type { LocalPds, PdsAccount } from './local-pds.js'

/** An interaction the firehose service must publish, as `@circles/core` would derive it. */
export type ExpectedEvent =
  | {
      type: 'create'
      kind: 'like' | 'repost' | 'reply' | 'quote'
      author: string
      subject: string
      rkey: string
    }
  | { type: 'delete'; record: 'like' | 'repost' | 'post'; author: string; rkey: string }
  | { type: 'identity'; did: string; handle: string }
  | { type: 'account'; did: string; active: boolean; status: string | null }

interface Ref {
  uri: string
  cid: string
  author: string
}

const LIKE = 'app.bsky.feed.like'

function rkeyOf(uri: string): string {
  return uri.slice(uri.lastIndexOf('/') + 1)
}

/**
 * Drives accounts on a local PDS through every interaction the firehose must understand and
 * records what the service should publish for each: like, repost, reply, quote (record and
 * recordWithMedia), reply-and-quote, unlike, unrepost, delete of a post, re-like (one commit with
 * the delete of the old like and the create of the new one), a self-like (dropped) and plain posts
 * (no interaction).
 */
export class ActivitySimulator {
  readonly expected: ExpectedEvent[] = []
  /** Commits (writes) performed, for progress reports. */
  commits = 0
  readonly #accounts: PdsAccount[]
  #round = 0

  private constructor(accounts: PdsAccount[]) {
    this.#accounts = accounts
  }

  /** Creates `accounts` accounts (at least 4) on the PDS. */
  static async create(pds: LocalPds, accounts = 4): Promise<ActivitySimulator> {
    if (accounts < 4) throw new RangeError('the scripted round needs at least 4 accounts')
    const made: PdsAccount[] = []
    for (let i = 0; i < accounts; i++) made.push(await pds.createAccount(`sim${i}x`))
    return new ActivitySimulator(made)
  }

  get accounts(): readonly PdsAccount[] {
    return this.#accounts
  }

  /** One scripted round; each round rotates which account plays which role. */
  async round(): Promise<void> {
    const n = this.#accounts.length
    const r = this.#round++
    const pick = (i: number) => this.#accounts[(r + i) % n] as PdsAccount
    const [a, b, c, d] = [pick(0), pick(1), pick(2), pick(3)]

    const pa = await this.#post(a, { text: `round ${r}: hello from ${a.handle}` })
    const pb = await this.#post(b, { text: `round ${r}: bob here` })
    const pc = await this.#post(c, { text: `round ${r}: carol ✨ here` })

    const like = await this.#like(b, pa)
    const repost = await this.#repost(c, pa)
    const reply = await this.#post(
      b,
      { text: 'a reply', reply: { root: strong(pa), parent: strong(pa) } },
      [{ kind: 'reply', subject: pa.author }],
    )
    await this.#post(
      c,
      { text: 'a quote', embed: { $type: 'app.bsky.embed.record', record: strong(pb) } },
      [{ kind: 'quote', subject: pb.author }],
    )
    // reply to c's post that quotes a's post: two interactions from one record
    await this.#post(
      d,
      {
        text: 'reply and quote',
        reply: { root: strong(pc), parent: strong(pc) },
        embed: { $type: 'app.bsky.embed.record', record: strong(pa) },
      },
      [
        { kind: 'reply', subject: pc.author },
        { kind: 'quote', subject: pa.author },
      ],
    )
    await this.#post(
      a,
      {
        text: 'quote with media',
        embed: {
          $type: 'app.bsky.embed.recordWithMedia',
          record: { $type: 'app.bsky.embed.record', record: strong(pc) },
          media: {
            $type: 'app.bsky.embed.external',
            external: { uri: 'https://example.com/', title: 'example', description: 'a link' },
          },
        },
      },
      [{ kind: 'quote', subject: pc.author }],
    )
    // a self-like and a reply to oneself: both dropped as self-interactions
    await this.#like(a, pa, false)
    await this.#post(a, {
      text: 'talking to myself',
      reply: { root: strong(pa), parent: strong(pa) },
    })

    // unlike, unrepost, delete a post
    await b.agent.deleteLike(like.uri)
    this.#deleted(b, 'like', like.uri)
    await c.agent.deleteRepost(repost.uri)
    this.#deleted(c, 'repost', repost.uri)
    await b.agent.deletePost(reply.uri)
    this.#deleted(b, 'post', reply.uri)

    // re-like: the second like replaces the first in ONE commit (delete + create)
    const first = await this.#like(d, pb)
    // A fresh TID, later than the first like's (a few ms have passed), from a different clock id.
    const rkey = tidFromMs(Date.now() + 1, 7)
    await d.agent.com.atproto.repo.applyWrites({
      repo: d.did,
      writes: [
        { $type: 'com.atproto.repo.applyWrites#delete', collection: LIKE, rkey: rkeyOf(first.uri) },
        {
          $type: 'com.atproto.repo.applyWrites#create',
          collection: LIKE,
          rkey,
          value: { $type: LIKE, subject: strong(pb), createdAt: new Date().toISOString() },
        },
      ],
    })
    this.#deleted(d, 'like', first.uri)
    this.expected.push({ type: 'create', kind: 'like', author: d.did, subject: pb.author, rkey })
  }

  /** Changes an account's handle: the firehose sees an `#identity` frame. */
  async changeHandle(index: number, handle: string): Promise<void> {
    const acct = this.#accounts[index] as PdsAccount
    await acct.agent.com.atproto.identity.updateHandle({ handle })
    this.commits++
    this.expected.push({ type: 'identity', did: acct.did, handle })
  }

  /** Deactivates then reactivates an account: the firehose sees two `#account` frames. */
  async deactivateAndReactivate(index: number): Promise<void> {
    const acct = this.#accounts[index] as PdsAccount
    await acct.agent.com.atproto.server.deactivateAccount({})
    this.expected.push({ type: 'account', did: acct.did, active: false, status: 'deactivated' })
    await acct.agent.com.atproto.server.activateAccount()
    this.expected.push({ type: 'account', did: acct.did, active: true, status: null })
  }

  async #post(
    author: PdsAccount,
    record: { text: string; reply?: unknown; embed?: unknown },
    events: { kind: 'reply' | 'quote'; subject: string }[] = [],
  ): Promise<Ref> {
    const res = await author.agent.post({ ...record, createdAt: new Date().toISOString() } as never)
    this.commits++
    for (const e of events) {
      this.expected.push({
        type: 'create',
        kind: e.kind,
        author: author.did,
        subject: e.subject,
        rkey: rkeyOf(res.uri),
      })
    }
    return { uri: res.uri, cid: res.cid, author: author.did }
  }

  async #like(author: PdsAccount, subject: Ref, expect = true): Promise<Ref> {
    const res = await author.agent.like(subject.uri, subject.cid)
    this.commits++
    if (expect) {
      this.expected.push({
        type: 'create',
        kind: 'like',
        author: author.did,
        subject: subject.author,
        rkey: rkeyOf(res.uri),
      })
    }
    return { uri: res.uri, cid: res.cid, author: author.did }
  }

  async #repost(author: PdsAccount, subject: Ref): Promise<Ref> {
    const res = await author.agent.repost(subject.uri, subject.cid)
    this.commits++
    this.expected.push({
      type: 'create',
      kind: 'repost',
      author: author.did,
      subject: subject.author,
      rkey: rkeyOf(res.uri),
    })
    return { uri: res.uri, cid: res.cid, author: author.did }
  }

  #deleted(author: PdsAccount, record: 'like' | 'repost' | 'post', uri: string): void {
    this.commits++
    this.expected.push({ type: 'delete', record, author: author.did, rkey: rkeyOf(uri) })
  }
}

function strong(ref: Ref): { uri: string; cid: string } {
  return { uri: ref.uri, cid: ref.cid }
}
