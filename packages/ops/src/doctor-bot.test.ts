import { createTestRedis, type TestRedis } from '@circles/testkit'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { checkBot } from './doctor-bot.js'

const BOT = 'did:plc:ewvi7nxzyoun6zhxrhs64oiz'

describe('doctor: bot', () => {
  let t: TestRedis
  beforeEach(async () => {
    t = await createTestRedis('doctor-bot')
  })
  afterEach(() => t.cleanup())

  it('fails without a session, warns without a group, passes with both', async () => {
    expect(await checkBot(t.redis, t.schema, BOT)).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/has not logged in/),
    })
    await t.redis.set(t.schema.botSession(BOT), 'sealed', 'PX', 3 * 86_400_000)
    await t.redis.hset(t.schema.botMetrics, { mentionsSeen: 4, repliesPosted: 2 })
    expect(await checkBot(t.redis, t.schema, BOT)).toMatchObject({ status: 'warn' })
    await t.redis.xgroup('CREATE', t.schema.eventStream, t.schema.botGroup, '$', 'MKSTREAM')
    const ok = await checkBot(t.redis, t.schema, BOT)
    expect(ok.status).toBe('ok')
    expect(ok.message).toMatch(
      /session kept 2 d\); 0 mention entries pending; 4 mentions seen, 2 replies/,
    )
  })
})
