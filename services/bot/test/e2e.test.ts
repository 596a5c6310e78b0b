import { decodeMention, type MentionEvent } from '@circles/core'
import { createLogger } from '@circles/logging'
import { repoRoot } from '@circles/ops'
import { documentedMetrics, freePort, namesOf, pollUntil, scrape } from '@circles/testkit'
import type { PdsAccount, RecordRef } from '@circles/testkit/pds'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { HELP_TEXT, OPTED_OUT_TEXT } from '../src/command.js'
import { readEnv, toConfig } from '../src/config.js'
import { emptyCounters } from '../src/metrics.js'
import { PdsClient } from '../src/pds-client.js'
import { mentionUri } from '../src/replier.js'
import { mentionDigest, replyRkey } from '../src/reply.js'
import { type BotService, createBotService } from '../src/service.js'
import { createSession } from '../src/session.js'
import {
  ADMIN_TOKEN,
  type Child,
  mention,
  SESSION_KEY,
  startWorld,
  stopChild,
  type World,
} from './world.js'

// The bot against the real pipeline (world.ts): mentions posted on a local PDS reach it through the built
// firehose, the circle comes from the built API, and the replies are read back from the bot's repo.

interface Reply {
  uri: string
  value: {
    text: string
    reply: { root: { uri: string; cid: string }; parent: { uri: string; cid: string } }
    facets?: unknown
    embed?: {
      $type: string
      images: {
        alt: string
        aspectRatio?: { width: number; height: number }
        /** A CID object as @atproto/api decodes it (its text by toString) */
        image: { mimeType: string; ref: object }
      }[]
    }
  }
}

let w: World
let service: BotService
let metricsPort: number

async function replies(): Promise<Reply[]> {
  const out: Reply[] = []
  let cursor: string | undefined
  do {
    const res = await w.pds.agent().com.atproto.repo.listRecords({
      repo: w.bot.did,
      collection: 'app.bsky.feed.post',
      limit: 100,
      cursor,
    })
    out.push(...(res.data.records as unknown as Reply[]))
    cursor = res.data.records.length === 100 ? res.data.cursor : undefined
  } while (cursor)
  return out
}

const repliesTo = async (uri: string) =>
  (await replies()).filter((r) => r.value.reply.parent.uri === uri)

function state(uri: string): Promise<Record<string, string>> {
  return w.t.redis.hgetall(w.t.schema.botReply(mentionDigest(uri)))
}

/** Waits for the mention's reply state to reach `want`, then for any stray second reply to show. */
async function settledReplies(
  uri: string,
  want: string,
  child?: Child,
  timeoutMs = 30_000,
): Promise<Reply[]> {
  const s = await pollUntil(
    () => state(uri),
    (v) => v.state === want,
    { timeoutMs },
  )
  expect(s.state, child ? `bot output:\n${child.output.join('')}` : undefined).toBe(want)
  await new Promise((r) => setTimeout(r, 500))
  return repliesTo(uri)
}

/** The mention line of `post` once the firehose has put it on the stream. */
async function onStream(post: RecordRef): Promise<MentionEvent> {
  const rkey = post.uri.slice(post.uri.lastIndexOf('/') + 1)
  const found = await pollUntil(
    async () => {
      const entries = await w.t.redis.xrange(w.t.schema.eventStream, '-', '+')
      for (const [, fields] of entries) {
        if (fields[0] !== 'm') continue
        for (const line of (fields[1] as string).split('\n')) {
          const m = decodeMention(line)
          if (m?.rkey === rkey && m.author === post.author) return m
        }
      }
      return null
    },
    (m) => m !== null,
  )
  if (!found) throw new Error(`mention ${post.uri} never reached the stream`)
  return found
}

beforeAll(async () => {
  w = await startWorld()
  metricsPort = await freePort()
  const config = toConfig(
    readEnv(w.botEnv({ BOT_CONSUMER: 'in-process', METRICS_PORT: String(metricsPort) })),
  )
  service = createBotService(config, { retryMs: 200 })
  await service.start()
}, 180_000)

afterAll(async () => {
  await service?.close()
  await w?.close()
})

describe('the circles bot on a real PDS and pipeline', () => {
  it('answers "circle" with exactly one reply: refs, a PNG blob, alt text naming the top partners', async () => {
    const m = await mention(w.alice, w.bot, 'circle')
    const [reply, ...more] = await settledReplies(m.uri, 'done', undefined, 60_000)
    expect(more).toEqual([])
    if (!reply) throw new Error('no reply')
    const ref = { uri: m.uri, cid: m.cid }
    expect(reply.value.reply).toEqual({ root: ref, parent: ref })
    expect(reply.value.facets).toBeUndefined()
    expect(reply.value.text).not.toContain('@')
    const image = reply.value.embed?.images[0]
    expect(reply.value.embed?.$type).toBe('app.bsky.embed.images')
    expect(image?.image.mimeType).toBe('image/png')
    const blob = await fetch(
      `${w.pds.url}/xrpc/com.atproto.sync.getBlob?did=${w.bot.did}&cid=${String(image?.image.ref)}`,
    )
    const png = Buffer.from(await blob.arrayBuffer())
    if (!blob.ok) throw new Error(png.toString())
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG')
    expect(png.readUInt32BE(16)).toBe(image?.aspectRatio?.width)
    expect(png.readUInt32BE(20)).toBe(image?.aspectRatio?.height)
    expect(png.readUInt32BE(16)).toBeGreaterThan(100)
    // best first: bob (replies), carol, dave
    const alt = image?.alt ?? ''
    const at = (a: PdsAccount) => alt.indexOf(`@${a.handle}`)
    expect(at(w.bob)).toBeGreaterThan(0)
    expect(at(w.bob)).toBeLessThan(at(w.carol))
    expect(at(w.carol)).toBeLessThan(at(w.dave))
    expect(service.counters()).toMatchObject({ repliesPosted: 1, repliesConfirmed: 1 })
    // Its /metrics serves every name docs/metrics.md gives the bot, and no other of ours; the counts move.
    const page = await scrape(`http://127.0.0.1:${metricsPort}/metrics`)
    const names = namesOf(documentedMetrics(repoRoot()), 'bot')
    expect(names.filter((n) => !page.declared.has(n))).toEqual([])
    const ours = [...page.declared.keys()].filter((n) => n.startsWith('circles_'))
    expect(ours.filter((n) => !names.includes(n))).toEqual([])
    expect(page.value('circles_bot_replies_posted_total')).toBeGreaterThanOrEqual(1)
    expect(page.value('circles_bot_mentions_total')).toBeGreaterThanOrEqual(1)
  })

  it('answers other words and other languages with the help text; a quote of a mention is no mention', async () => {
    const m = await mention(w.bob, w.bot, '円を描いてください')
    const [reply, ...more] = await settledReplies(m.uri, 'done')
    expect(more).toEqual([])
    expect(reply?.value.text).toBe(HELP_TEXT)
    expect(reply?.value.embed).toBeUndefined()
    // carol quotes bob's mention: her post has no mention facet of its own
    const quote = await w.writer.post(w.carol, { quote: m, text: `look at @${w.bot.handle}` })
    await new Promise((r) => setTimeout(r, 1500))
    expect(await repliesTo(quote.uri)).toEqual([])
  })

  it('tells an opted-out author so, with no image', async () => {
    const res = await fetch(`${w.apiUrl}/admin/opt-outs/${w.dave.did}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    })
    expect(res.status).toBeLessThan(300)
    const m = await mention(w.dave, w.bot, 'circle 7d')
    const [reply, ...more] = await settledReplies(m.uri, 'done')
    expect(more).toEqual([])
    expect(reply?.value.text).toBe(OPTED_OUT_TEXT)
    expect(reply?.value.embed).toBeUndefined()
  })

  it('holds the per-author limit, also against 10k mentions from one account', async () => {
    const m = await mention(w.alice, w.bot, 'circle 30d')
    expect(
      (
        await pollUntil(
          () => state(m.uri),
          (s) => s.state === 'refused',
        )
      ).reason,
    ).toBe('author_rate')
    expect(await repliesTo(m.uri)).toEqual([])
    // 10k mention lines from carol, written as the firehose writes them (her one real post's CID).
    const real = await mention(w.carol, w.bot, 'circle')
    const first = await onStream(real)
    const lines = Array.from({ length: 10_000 }, (_, i) => {
      const rkey = `3${(1e12 + i).toString(32).padStart(12, 'a')}`.slice(0, 13)
      return [w.carol.did, rkey, first.cid, '-', '-', '-', Date.now(), '"circle"'].join('\t')
    })
    const before = service.counters().refused.author_rate
    for (let i = 0; i < lines.length; i += 500) {
      await w.t.redis.xadd(w.t.schema.eventStream, '*', 'm', lines.slice(i, i + 500).join('\n'))
    }
    await pollUntil(
      async () => service.counters().refused.author_rate,
      (n) => n >= before + 10_000,
      { timeoutMs: 120_000, pollMs: 500 },
    )
    expect(service.counters().refused.author_rate).toBe(before + 10_000)
    // her real mention got its one reply; none of the 10k did
    const all = await replies()
    const toCarol = all.filter((r) => r.value.reply.parent.uri.includes(w.carol.did))
    expect(toCarol.map((r) => r.value.reply.parent.uri)).toEqual([real.uri])
  }, 180_000)
})

describe('exactly one reply across kill -9', () => {
  let next = 0

  async function account(): Promise<PdsAccount> {
    const a = await w.pds.createAccount(`k${next++}`)
    return a
  }

  /** A mention taken by consumer `consumer` (pending there), as by a bot that then died. */
  async function takenBy(consumer: string, post: RecordRef): Promise<MentionEvent> {
    const m = await onStream(post)
    await w.t.redis.xreadgroup(
      'GROUP',
      w.t.schema.botGroup,
      consumer,
      'COUNT',
      100_000,
      'STREAMS',
      w.t.schema.eventStream,
      '>',
    )
    return m
  }

  function botChild(consumer: string): Child {
    return w.spawn('bot', w.botEnv({ BOT_CONSUMER: consumer, LOG_LEVEL: 'info' }))
  }

  beforeAll(async () => {
    // From here on only the child processes answer.
    await service.close()
  })

  /**
   * A mention a bot took (pending for consumer k1) and recorded its intent for, then died; `dead` does
   * what else it did before dying. Restarts k1 and returns the replies once it is done, and the rkey.
   */
  async function restartAfter(
    dead: (m: MentionEvent, rkey: string) => Promise<void>,
  ): Promise<{ got: Reply[]; rkey: string }> {
    const post = await mention(await account(), w.bot, 'hello')
    const m = await takenBy('k1', post)
    const uri = mentionUri(m)
    const rkey = replyRkey(uri, m.time)
    await w.t.redis.hset(w.t.schema.botReply(mentionDigest(uri)), { state: 'intent', rkey })
    await dead(m, rkey)
    const child = botChild('k1')
    try {
      return { got: await settledReplies(uri, 'done', child), rkey }
    } finally {
      await stopChild(child, 'SIGTERM')
    }
  }

  it('died after recording the intent, before the write: the restart writes it once', async () => {
    const { got, rkey } = await restartAfter(async () => {})
    expect(got.map((r) => r.uri)).toEqual([`at://${w.bot.did}/app.bsky.feed.post/${rkey}`])
  }, 120_000)

  it('died between the write and its confirmation: the restart finds it and writes nothing', async () => {
    const { got, rkey } = await restartAfter(async (m, rkey) => {
      // what the dead bot wrote
      const ref = { uri: mentionUri(m), cid: m.cid }
      const write = {
        repo: w.bot.did,
        collection: 'app.bsky.feed.post',
        rkey,
        record: {
          $type: 'app.bsky.feed.post',
          text: HELP_TEXT,
          createdAt: new Date().toISOString(),
          reply: { root: ref, parent: ref },
        },
      }
      await w.bot.agent.com.atproto.repo.createRecord(write)
      // A second write with the same rkey fails (the replier then finds the record).
      const pds = new PdsClient(w.pds.url)
      const session = await pds.createSession(w.bot.handle, w.appPassword)
      await expect(pds.createRecord(session.accessJwt, write)).rejects.toThrow(/createRecord/)
    })
    expect(got.map((r) => r.uri)).toEqual([`at://${w.bot.did}/app.bsky.feed.post/${rkey}`])
  }, 120_000)

  it('kill -9 as soon as the intent is recorded, then a restart: one reply each time', async () => {
    for (let round = 0; round < 3; round++) {
      const a = await account()
      let child = botChild('k2')
      const post = await mention(a, w.bot, 'hello')
      const uri = post.uri
      await pollUntil(
        () => state(uri),
        (s) => s.state !== undefined,
        { pollMs: 1 },
      )
      await stopChild(child, 'SIGKILL')
      child = botChild('k2')
      try {
        const got = await settledReplies(uri, 'done', child)
        expect(got).toHaveLength(1)
      } finally {
        await stopChild(child, 'SIGTERM')
      }
    }
  }, 180_000)

  it('wrong credentials: the process stops at start with a clear message and exit code 78', async () => {
    // Under a prefix of its own: the session the others keep in Redis would spare it the login.
    const prefix = `${w.t.prefix}wrong:`
    const child = w.spawn(
      'bot',
      w.botEnv({ BOT_APP_PASSWORD: 'wrong-password-1234', REDIS_PREFIX: prefix }),
    )
    const code = await new Promise<number | null>((r) => child.proc.once('exit', (c) => r(c)))
    expect(code).toBe(78)
    const out = child.output.join('')
    expect(out).toMatch(/refused BOT_IDENTIFIER\/BOT_APP_PASSWORD/)
    expect(out).not.toContain('wrong-password-1234')
  })

  // Last: it revokes the bot's app password.
  it('an app password revoked while running: the bot stops with exit code 78, no retries', async () => {
    const child = botChild('k3')
    await pollUntil(
      async () => child.output.join(''),
      (out) => out.includes('bot started'),
    )
    await w.bot.agent.com.atproto.server.revokeAppPassword({ name: 'circles-bot' })
    // The stored access token is stale (as after its expiry): the next write must refresh, and cannot.
    const session = createSession({
      redis: w.t.redis,
      schema: w.t.schema,
      pds: new PdsClient(w.pds.url),
      account: {
        did: w.bot.did,
        identifier: w.bot.handle,
        password: w.appPassword,
        sessionKey: Buffer.from(SESSION_KEY, 'hex'),
      },
      counters: emptyCounters(),
      log: createLogger('bot:test'),
    })
    const stored = await session.read()
    await session.refused(stored?.accessJwt ?? '')
    await mention(await account(), w.bot, 'hello')
    const code = await new Promise<number | null>((r) => child.proc.once('exit', (c) => r(c)))
    expect(code).toBe(78)
    const out = child.output.join('')
    expect(out).toMatch(/login refused: the bot stops/)
    // one failed mention, no retry of it (each retry would be another refused login)
    expect(out.match(/answering a mention failed/g)?.length).toBe(1)
  })
})
