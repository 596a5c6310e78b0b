import type { InteractionLedger } from './ledger.js'
import type { LocalPds, PdsAccount } from './local-pds.js'

// Writes records on a local PDS as its accounts and notes in an InteractionLedger what each one means, by
// the project's documented reading of the records (not by its code): a like or repost is an interaction
// with the author of the post it names; a reply, with the author of the post it answers (`reply.parent`),
// not of the thread's root (packages/core's interaction table: "reply: subject is the parent author, not
// the root author"); a quote, with the author of the quoted post (`embed.record`, or the record inside
// `recordWithMedia`); a post that replies and quotes is both. Self-interactions never count.

const LIKE = 'app.bsky.feed.like'

/** A record on the PDS: its AT-URI, CID and author's DID. */
export interface RecordRef {
  uri: string
  cid: string
  author: string
}

export interface PostOptions {
  text?: string
  /** Makes the post a reply in `root`'s thread, answering `parent`. */
  reply?: { root: RecordRef; parent: RecordRef }
  /** Quotes this post. */
  quote?: RecordRef
  /** Quotes through `app.bsky.embed.recordWithMedia` (with a link card) instead of `app.bsky.embed.record`. */
  withMedia?: boolean
}

function strong(ref: RecordRef): { uri: string; cid: string } {
  return { uri: ref.uri, cid: ref.cid }
}

function rkeyOf(uri: string): string {
  return uri.slice(uri.lastIndexOf('/') + 1)
}

function collectionOf(uri: string): string {
  const parts = uri.split('/')
  return parts[parts.length - 2] as string
}

function quoteEmbed(quoted: RecordRef, withMedia: boolean): Record<string, unknown> {
  const record = { $type: 'app.bsky.embed.record', record: strong(quoted) }
  if (!withMedia) return record
  return {
    $type: 'app.bsky.embed.recordWithMedia',
    record,
    media: {
      $type: 'app.bsky.embed.external',
      external: {
        uri: 'https://example.com/',
        title: 'a link',
        description: 'media beside the quote',
      },
    },
  }
}

export class LedgerWriter {
  constructor(
    readonly pds: LocalPds,
    readonly ledger: InteractionLedger,
  ) {}

  async post(author: PdsAccount, opts: PostOptions = {}): Promise<RecordRef> {
    const record: Record<string, unknown> = {
      text: opts.text ?? `a post by ${author.handle}`,
      createdAt: new Date().toISOString(),
    }
    if (opts.reply)
      record.reply = { root: strong(opts.reply.root), parent: strong(opts.reply.parent) }
    if (opts.quote) record.embed = quoteEmbed(opts.quote, opts.withMedia ?? false)
    const res = await author.agent.post(record as never)
    if (opts.reply) this.ledger.record(author.did, opts.reply.parent.author, 'reply', res.uri)
    if (opts.quote) this.ledger.record(author.did, opts.quote.author, 'quote', res.uri)
    if (!opts.reply && !opts.quote) this.ledger.plain(res.uri)
    return { uri: res.uri, cid: res.cid, author: author.did }
  }

  async like(author: PdsAccount, post: RecordRef): Promise<RecordRef> {
    const res = await author.agent.like(post.uri, post.cid)
    this.ledger.record(author.did, post.author, 'like', res.uri)
    return { uri: res.uri, cid: res.cid, author: author.did }
  }

  async repost(author: PdsAccount, post: RecordRef): Promise<RecordRef> {
    const res = await author.agent.repost(post.uri, post.cid)
    this.ledger.record(author.did, post.author, 'repost', res.uri)
    return { uri: res.uri, cid: res.cid, author: author.did }
  }

  /** Deletes one of the author's records: an unlike, an unrepost, or a post (with all it meant). */
  async remove(author: PdsAccount, ref: RecordRef): Promise<void> {
    await author.agent.com.atproto.repo.deleteRecord({
      repo: author.did,
      collection: collectionOf(ref.uri),
      rkey: rkeyOf(ref.uri),
    })
    this.ledger.undo(ref.uri)
  }

  /**
   * Likes `post` again in ONE commit that deletes the old like and creates a new one (what a client does
   * on a re-like): the firehose sees both ops in one frame. The PDS picks the new record key.
   */
  async relike(author: PdsAccount, old: RecordRef, post: RecordRef): Promise<RecordRef> {
    const res = await author.agent.com.atproto.repo.applyWrites({
      repo: author.did,
      writes: [
        { $type: 'com.atproto.repo.applyWrites#delete', collection: LIKE, rkey: rkeyOf(old.uri) },
        {
          $type: 'com.atproto.repo.applyWrites#create',
          collection: LIKE,
          value: { $type: LIKE, subject: strong(post), createdAt: new Date().toISOString() },
        },
      ],
    })
    const created = res.data.results?.find(
      (r) => r.$type === 'com.atproto.repo.applyWrites#createResult',
    )
    if (!created || !('uri' in created))
      throw new Error('applyWrites answered without the created like')
    this.ledger.undo(old.uri)
    this.ledger.record(author.did, post.author, 'like', created.uri)
    return { uri: created.uri, cid: created.cid, author: author.did }
  }

  /** Deletes the account on the PDS (its owner's way); from then on nothing it did or received counts. */
  async deleteAccount(account: PdsAccount): Promise<void> {
    await this.pds.deleteAccount(account)
    this.ledger.deleteAccount(account.did)
  }
}
