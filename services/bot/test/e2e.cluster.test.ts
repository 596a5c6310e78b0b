import {
  CROSS_SLOT_ERROR,
  haveRedisCli,
  type PrivateRedisCluster,
  pollUntil,
  startRedisCluster,
} from '@circles/testkit'
import type { PdsAccount } from '@circles/testkit/pds'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OPTED_OUT_TEXT } from '../src/command.js'
import { mentionDigest } from '../src/reply.js'
import { ADMIN_TOKEN, type Child, mention, startWorld, stopChild, type World } from './world.js'

// The bot on a Redis Cluster: the built firehose (two stream shards), indexer, API and bot as processes
// with REDIS_CLUSTER_NODES on a 3-primary cluster, a local PDS as relay. Mentions are answered once, with
// the circle the cluster's index holds, across a kill -9 of the bot, and no process meets a cross-slot error.

interface Reply {
  value: {
    text: string
    reply: { parent: { uri: string } }
    embed?: { images: { alt: string; image: { mimeType: string } }[] }
  }
}

describe.runIf(haveRedisCli('the bot cluster test'))('the circles bot on a Redis Cluster', () => {
  let cluster: PrivateRedisCluster
  let w: World
  /** A bot process, once it reads the stream (its group starts at the stream's end: nothing before). */
  async function spawnBot(): Promise<Child> {
    const child = w.spawn(
      'bot',
      w.botEnv({ BOT_CONSUMER: 'cluster-bot', LOG_LEVEL: 'info', METRICS_PORT: '0' }),
    )
    const ready = await pollUntil(
      async () => child.output.join(''),
      (out) => out.includes('"bot started"'),
      { timeoutMs: 30_000 },
    )
    if (!ready.includes('"bot started"')) throw new Error(`the bot did not start:\n${ready}`)
    return child
  }

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicas: 0 })
    w = await startWorld({ cluster })
  }, 240_000)

  afterAll(async () => {
    await w?.close()
    await cluster?.stop()
  })

  async function repliesTo(uri: string): Promise<Reply[]> {
    const res = await w.pds.agent().com.atproto.repo.listRecords({
      repo: w.bot.did,
      collection: 'app.bsky.feed.post',
      limit: 100,
    })
    return (res.data.records as unknown as Reply[]).filter((r) => r.value.reply.parent.uri === uri)
  }

  /** The mention's reply once its state is `done`, and that it is the only one. */
  async function answered(uri: string, child: Child): Promise<Reply> {
    const key = w.t.schema.botReply(mentionDigest(uri))
    const s = await pollUntil(
      () => w.t.redis.hgetall(key),
      (v) => v.state === 'done',
      { timeoutMs: 60_000 },
    )
    expect(s.state, `bot output:\n${child.output.join('')}`).toBe('done')
    await new Promise((r) => setTimeout(r, 500))
    const replies = await repliesTo(uri)
    expect(replies).toHaveLength(1)
    return replies[0] as Reply
  }

  it('answers with the circle the cluster holds, once, across a kill -9; no cross-slot error', async () => {
    let bot = await spawnBot()
    const m = await mention(w.alice, w.bot, 'circle')
    const reply = await answered(m.uri, bot)
    const image = reply.value.embed?.images[0]
    expect(image?.image.mimeType).toBe('image/png')
    const alt = image?.alt ?? ''
    const at = (a: PdsAccount) => alt.indexOf(`@${a.handle}`)
    expect(at(w.bob)).toBeGreaterThan(0)
    expect(at(w.bob)).toBeLessThan(at(w.carol))
    expect(at(w.carol)).toBeLessThan(at(w.dave))

    // An opted-out author, asked while the bot is down: answered by the next bot process, once.
    await stopChild(bot, 'SIGKILL')
    const res = await fetch(`${w.apiUrl}/admin/opt-outs/${w.dave.did}`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    })
    expect(res.status).toBeLessThan(300)
    const m2 = await mention(w.dave, w.bot, 'circle 7d')
    bot = await spawnBot()
    expect((await answered(m2.uri, bot)).value.text).toBe(OPTED_OUT_TEXT)
    expect((await repliesTo(m.uri)).length).toBe(1)

    const output = w.children().flatMap((c) => c.output)
    expect(output.filter((line) => CROSS_SLOT_ERROR.test(line))).toEqual([])
  }, 180_000)
})
