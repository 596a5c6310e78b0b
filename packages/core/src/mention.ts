import { isValidDid, isValidRkey, parseAtUri } from './syntax.js'

// Posts that mention one account (the circles bot, BOT_DID), and the posts of that account itself (its
// replies, which confirm that a reply was written): the firehose finds them (mentionOf) and writes them to
// the event stream as entries of their own, field `m`, one line each (encodeMention); the indexer skips
// such entries and the bot's consumer group reads only them.
//   <author> <rkey> <cid> <root uri|-> <root cid|-> <parent uri|-> <timeMs> <text as a JSON string>
// JSON escapes tabs and newlines, so the text cannot break the line.

export interface MentionEvent {
  author: string
  rkey: string
  /** CID of the mentioning post (a reply's `parent`). */
  cid: string
  /** The thread's root when the post is itself a reply; null when it starts its thread. */
  root: { uri: string; cid: string } | null
  /** The post it answers (`reply.parent.uri`) when it is a reply: for the bot's own posts, the mention. */
  parent: string | null
  time: number
  /** The post's text, cut to `MAX_MENTION_TEXT` characters. */
  text: string
}

export const MAX_MENTION_TEXT = 1000

const MENTION_FEATURE = 'app.bsky.richtext.facet#mention'

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Does one of the post's own facets mention `did`? Malformed facets mention nobody. */
function mentions(record: Record<string, unknown>, did: string): boolean {
  const facets = record.facets
  if (!Array.isArray(facets)) return false
  for (const facet of facets.slice(0, 100)) {
    if (!isRecord(facet) || !Array.isArray(facet.features)) continue
    for (const f of facet.features) {
      if (isRecord(f) && f.$type === MENTION_FEATURE && f.did === did) return true
    }
  }
  return false
}

function strongRef(v: unknown): { uri: string; cid: string } | null {
  if (!isRecord(v) || typeof v.cid !== 'string' || v.cid.length > 200) return null
  return parseAtUri(v.uri) ? { uri: v.uri as string, cid: v.cid } : null
}

/**
 * The mention of `did` in a post just created, or the post of `did` itself; null for any other post, or a
 * malformed one. A reply whose `reply.root` or `reply.parent` is malformed is not answered: a reply to it
 * could not name its thread.
 */
export function mentionOf(
  post: { author: string; rkey: string; cid: string; record: unknown; time: number },
  did: string,
): MentionEvent | null {
  const { record } = post
  if (!isRecord(record) || !(post.author === did || mentions(record, did))) return null
  if (!isValidDid(post.author) || !isValidRkey(post.rkey)) return null
  let root: MentionEvent['root'] = null
  let parent: string | null = null
  if (record.reply !== undefined) {
    root = isRecord(record.reply) ? strongRef(record.reply.root) : null
    parent = isRecord(record.reply) ? (strongRef(record.reply.parent)?.uri ?? null) : null
    if (root === null || parent === null) return null
  }
  const text = typeof record.text === 'string' ? record.text.slice(0, MAX_MENTION_TEXT) : ''
  const { author, rkey, cid, time } = post
  return { author, rkey, cid, root, parent, time, text }
}

export function encodeMention(m: MentionEvent): string {
  return [
    m.author,
    m.rkey,
    m.cid,
    m.root?.uri ?? '-',
    m.root?.cid ?? '-',
    m.parent ?? '-',
    m.time,
    JSON.stringify(m.text),
  ].join('\t')
}

/** The mention of one line, or null when the line is not one (counted and skipped by the reader). */
export function decodeMention(line: string): MentionEvent | null {
  const f = line.split('\t')
  if (f.length !== 8) return null
  const [author, rkey, cid, rootUri, rootCid, parent, time, text] = f as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ]
  const ms = Number(time)
  if (!isValidDid(author) || !isValidRkey(rkey) || cid === '' || !Number.isSafeInteger(ms))
    return null
  let root: MentionEvent['root'] = null
  if (rootUri !== '-') {
    if (!parseAtUri(rootUri) || rootCid === '-' || rootCid === '') return null
    root = { uri: rootUri, cid: rootCid }
  }
  if (parent !== '-' && !parseAtUri(parent)) return null
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    return null
  }
  if (typeof parsed !== 'string') return null
  return { author, rkey, cid, root, parent: parent === '-' ? null : parent, time: ms, text: parsed }
}
