import type { MentionEvent } from '@circles/core'
import type { Logger } from '@circles/logging'
import type { RedisSchema } from '@circles/redis-schema'
import type { Redis } from 'ioredis'
import { fetchCircle } from './circle-api.js'
import { HELP_TEXT, NO_CIRCLE_TEXT, OPTED_OUT_TEXT, parseCommand } from './command.js'
import type { BotConfig } from './config.js'
import type { BotCounters, Refusal } from './metrics.js'
import { type PdsClient, type StrongRef, XrpcError } from './pds-client.js'
import {
  altText,
  circleText,
  mentionDigest,
  POST,
  pngSize,
  type ReplyParts,
  replyRecord,
  replyRkey,
} from './reply.js'
import type { Session } from './session.js'

// Exactly one reply per mention, across crashes: the state of each mention's reply lives in Redis under
// its URI's digest. `intent` (with the reply's rkey) is written BEFORE the PDS write; the write uses that
// rkey, so after a crash anywhere the retry either finds the record (written, not yet marked) or writes it
// with the same rkey; a createRecord that collides with one already there fails, and the record found
// then is taken as the reply.
// `posted` after the write; `done` when the bot's own post comes back on the firehose (confirm()).

/** Reply states are kept this long: a mention replayed later than this is too old to answer anyway. */
const STATE_TTL_MS = 7 * 86_400_000

export interface ReplierDeps {
  redis: Redis
  schema: RedisSchema
  config: BotConfig
  botDid: string
  pds: PdsClient
  session: Session
  counters: BotCounters
  log: Logger
  now?: () => number
}

export type Outcome = 'replied' | 'found' | 'skipped' | Refusal

export interface Replier {
  /** Answers one mention (at most once, whatever happened before). */
  handle(m: MentionEvent): Promise<Outcome>
  /** The bot's own post came back on the firehose: the reply to `parent` is confirmed. */
  confirm(parent: string, rkey: string): Promise<boolean>
}

export function mentionUri(m: Pick<MentionEvent, 'author' | 'rkey'>): string {
  return `at://${m.author}/${POST}/${m.rkey}`
}

export function createReplier(deps: ReplierDeps): Replier {
  const { redis, schema, config, botDid, pds, session, counters, log } = deps
  const now = deps.now ?? Date.now

  /** INCR of a fixed-window counter; true while within `limit`. */
  async function withinLimit(key: string, windowMs: number, limit: number): Promise<boolean> {
    const [[, n]] = (await redis
      .multi()
      .incr(key)
      .pexpire(key, windowMs * 2)
      .exec()) as [[Error | null, number]]
    return n <= limit
  }

  async function refuse(key: string, reason: Refusal): Promise<Refusal> {
    counters.refused[reason]++
    await redis
      .multi()
      .hset(key, { state: 'refused', reason, at: now() })
      .pexpire(key, STATE_TTL_MS)
      .exec()
    return reason
  }

  /** What the reply says (and shows): decided once, before the intent is written. */
  async function compose(
    m: MentionEvent,
  ): Promise<{ text: string; png?: Uint8Array; alt?: string; refusal?: Refusal }> {
    const cmd = parseCommand(m.text)
    if (cmd.kind === 'help') return { text: HELP_TEXT, refusal: 'help' }
    const answer = await fetchCircle(config.apiUrl, m.author, cmd)
    if (answer.kind === 'opted_out') return { text: OPTED_OUT_TEXT, refusal: 'opted_out' }
    if (answer.kind === 'no_circle') return { text: NO_CIRCLE_TEXT, refusal: 'no_circle' }
    return { text: circleText(cmd), png: answer.png, alt: altText(cmd, answer.members) }
  }

  async function write(
    rkey: string,
    parts: Omit<ReplyParts, 'image'>,
    png?: Uint8Array,
    alt?: string,
  ): Promise<StrongRef | null> {
    for (let attempt = 0; ; attempt++) {
      const token = await session.accessToken()
      try {
        let image: ReplyParts['image']
        if (png !== undefined) {
          const blob = await pds.uploadBlob(token, png, 'image/png')
          image = { blob, alt: alt ?? '', size: pngSize(png) }
        }
        const record = replyRecord({ ...parts, image }, new Date(now()))
        return await pds.createRecord(token, { repo: botDid, collection: POST, rkey, record })
      } catch (err) {
        // A record with this rkey may be there already (a retry): the PDS refuses the second create
        // (0.4.x with a 500, its unique constraint), so ask it rather than read the error.
        if (await pds.getRecord(botDid, POST, rkey).catch(() => null)) return null
        const expired =
          err instanceof XrpcError && (err.status === 401 || err.error === 'ExpiredToken')
        if (!expired || attempt > 0) throw err
        await session.refused(token)
      }
    }
  }

  async function handle(m: MentionEvent): Promise<Outcome> {
    if (m.author === botDid) return 'skipped'
    counters.mentionsSeen++
    const uri = mentionUri(m)
    const key = schema.botReply(mentionDigest(uri))
    const state = await redis.hgetall(key)
    if (state.state === 'posted' || state.state === 'done' || state.state === 'refused')
      return 'skipped'
    let rkey = state.rkey
    if (state.state === 'intent' && rkey !== undefined) {
      // A crash after the intent: was the reply written before it?
      const found = await pds.getRecord(botDid, POST, rkey)
      if (found) {
        counters.repliesFound++
        await redis.hset(key, { state: 'posted', uri: found.uri, cid: found.cid })
        return 'found'
      }
    } else {
      if (now() - m.time > config.maxAgeMs) return refuse(key, 'too_old')
      const window = (ms: number) => Math.floor(now() / ms)
      const author = schema.botAuthorRate(m.author, window(config.authorWindowMs))
      if (!(await withinLimit(author, config.authorWindowMs, config.authorLimit)))
        return refuse(key, 'author_rate')
      const global = schema.botGlobalRate(window(config.globalWindowMs))
      if (!(await withinLimit(global, config.globalWindowMs, config.globalLimit)))
        return refuse(key, 'global_rate')
      rkey = replyRkey(uri, m.time)
      await redis
        .multi()
        .hset(key, { state: 'intent', rkey, at: now() })
        .pexpire(key, STATE_TTL_MS)
        .exec()
    }
    const content = await compose(m)
    const parent = { uri, cid: m.cid }
    const written = await write(
      rkey,
      { text: content.text, parent, root: m.root ?? parent },
      content.png,
      content.alt,
    )
    const ref = written ?? (await pds.getRecord(botDid, POST, rkey))
    if (ref === null) throw new Error(`reply ${rkey} was refused as existing but cannot be read`)
    await redis.hset(key, { state: 'posted', uri: ref.uri, cid: ref.cid })
    if (content.refusal) counters.refused[content.refusal]++
    if (written) counters.repliesPosted++
    else counters.repliesFound++
    log.info({ mention: uri, reply: ref.uri, refusal: content.refusal }, 'replied')
    return written ? 'replied' : 'found'
  }

  async function confirm(parent: string, rkey: string): Promise<boolean> {
    const key = schema.botReply(mentionDigest(parent))
    const state = await redis.hget(key, 'rkey')
    if (state !== rkey) return false
    await redis.hset(key, { state: 'done' })
    counters.repliesConfirmed++
    return true
  }

  return { handle, confirm }
}
